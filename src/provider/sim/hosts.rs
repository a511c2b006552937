//! Django's `ALLOWED_HOSTS` check, which the backend runs before anything else (facts §2).
//!
//! `CommonMiddleware` calls `request.get_host()` on every request, so a Host header that no
//! pattern allows answers 400 on every path, `/info/` included. The backend's list is
//! `["127.0.0.1", "::1", "localhost"]`, then the JSON list in `ALLOWED_HOSTS`, then the node IP.

use std::net::Ipv4Addr;

/// The patterns the backend settings always allow.
pub const BUILT_IN_HOSTS: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// The full allowed list of a backend: built-ins, the configured list, then `HOST_IP`.
pub fn allowed_hosts(configured: &[String], host_ip: Ipv4Addr) -> Vec<String> {
    BUILT_IN_HOSTS
        .iter()
        .map(|host| (*host).to_owned())
        .chain(configured.iter().cloned())
        .chain(std::iter::once(host_ip.to_string()))
        .collect()
}

/// Splits a raw Host header value into its lower-cased domain, as Django's
/// `split_domain_port` does; `None` when the header is not a valid host at all.
pub fn domain_of(raw_host: &str) -> Option<String> {
    let host = raw_host.to_ascii_lowercase();
    let (domain, port) = if host.starts_with('[') {
        // An IPv6 literal keeps its brackets, as in Django.
        let end = host.find(']')?;
        let (domain, rest) = host.split_at(end + 1);
        (domain.to_owned(), rest.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((domain, port)) => (domain.to_owned(), Some(port)),
            None => (host.clone(), None),
        }
    };
    if port.is_some_and(|port| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let is_valid = if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    };
    if !is_valid {
        return None;
    }
    // Django drops one trailing dot before matching.
    Some(domain.strip_suffix('.').unwrap_or(&domain).to_owned())
}

/// Django's `validate_host`: `*` matches anything, `.example.com` matches `example.com` and
/// every subdomain, anything else must be equal (case-insensitive).
pub fn is_host_allowed(domain: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        pattern == "*"
            || (pattern.starts_with('.')
                && (domain.ends_with(pattern.as_str()) || domain == &pattern[1..]))
            || pattern == domain
    })
}

/// Whether a request with this Host header passes the check.
pub fn is_raw_host_allowed(raw_host: Option<&str>, patterns: &[String]) -> bool {
    raw_host
        .and_then(domain_of)
        .is_some_and(|domain| is_host_allowed(&domain, patterns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("127.0.3.1:8000", Some("127.0.3.1"))]
    #[case("API.Cluster-1.Example", Some("api.cluster-1.example"))]
    #[case("example.com.:80", Some("example.com"))]
    #[case("[::1]:8000", Some("[::1]"))]
    #[case("bad host", None)]
    #[case("host:port", None)]
    #[case("", None)]
    fn hosts_split_like_django(#[case] raw: &str, #[case] domain: Option<&str>) {
        assert_eq!(domain_of(raw).as_deref(), domain);
    }

    #[rstest]
    #[case("api.cluster-1.example", true)]
    #[case("cluster-1.example", true)]
    #[case("evilcluster-1.example", false)]
    #[case("127.0.3.1", true)]
    #[case("localhost", true)]
    #[case("127.0.9.1", false)]
    fn patterns_match_like_django(#[case] domain: &str, #[case] is_allowed: bool) {
        let patterns = allowed_hosts(
            &[".cluster-1.example".to_owned()],
            Ipv4Addr::new(127, 0, 3, 1),
        );
        assert_eq!(is_host_allowed(domain, &patterns), is_allowed);
    }

    #[test]
    fn a_star_allows_everything_and_a_missing_header_nothing() {
        assert!(is_raw_host_allowed(
            Some("anything.example:1"),
            &["*".to_owned()]
        ));
        assert!(!is_raw_host_allowed(None, &["*".to_owned()]));
    }
}
