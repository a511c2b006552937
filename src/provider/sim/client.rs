//! Requests one backend makes to a peer, and the text Python `requests` gives their failures.
//!
//! `get_outgoing_organization` and the credential probe print an exception's text in place of
//! a status code, and the harness classifies links by it, so the failures must read like
//! urllib3's. A request leaves from the caller's cluster address, so the peer's throttle sees
//! the same client IP as it would in a real cluster, and a partition between clusters fails
//! like a dropped SYN — at once, without waiting out the timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

/// The object address urllib3 prints; a real one changes every run, the sim keeps one.
const CONNECTION_OBJECT: &str = "0x7f3a2c1d9e50";

/// A URL as `requests` would use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub is_https: bool,
    pub host: String,
    pub port: u16,
    /// The path and query, as sent on the request line.
    pub path: String,
}

impl Url {
    fn pool(&self) -> &'static str {
        if self.is_https {
            "HTTPSConnectionPool"
        } else {
            "HTTPConnectionPool"
        }
    }

    fn connection(&self) -> &'static str {
        if self.is_https {
            "HTTPSConnection"
        } else {
            "HTTPConnection"
        }
    }

    /// The `Host` header: the port is left out when it is the scheme's default.
    fn host_header(&self) -> String {
        let default_port = if self.is_https { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn max_retries(&self, cause: &str) -> String {
        format!(
            "{}(host='{}', port={}): Max retries exceeded with url: {} (Caused by {cause})",
            self.pool(),
            self.host,
            self.port,
            self.path
        )
    }

    /// `ConnectTimeoutError`: what an unanswered SYN gives.
    pub fn connect_timeout_text(&self, timeout: Duration) -> String {
        self.max_retries(&format!(
            "ConnectTimeoutError(<urllib3.connection.{} object at {CONNECTION_OBJECT}>, 'Connection to {} timed out. (connect timeout={})')",
            self.connection(),
            self.host,
            python_seconds(timeout)
        ))
    }

    /// `NewConnectionError`: the connection was refused or could not be opened.
    pub fn new_connection_text(&self, error: &std::io::Error) -> String {
        self.max_retries(&format!(
            "NewConnectionError('<urllib3.connection.{} object at {CONNECTION_OBJECT}>: Failed to establish a new connection: {}')",
            self.connection(),
            python_os_error(error)
        ))
    }

    fn name_resolution_text(&self) -> String {
        self.max_retries(&format!(
            "NameResolutionError(\"<urllib3.connection.{} object at {CONNECTION_OBJECT}>: Failed to resolve '{}' ([Errno -2] Name or service not known)\")",
            self.connection(),
            self.host
        ))
    }

    /// A plain-HTTP server answering a TLS client hello.
    fn wrong_tls_version_text(&self) -> String {
        self.max_retries(
            "SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)'))",
        )
    }

    pub fn read_timeout_text(&self, timeout: Duration) -> String {
        format!(
            "{}(host='{}', port={}): Read timed out. (read timeout={})",
            self.pool(),
            self.host,
            self.port,
            python_seconds(timeout)
        )
    }
}

/// A timeout as Python prints the setting: `5` for whole seconds, `0.5` otherwise.
pub fn python_seconds(timeout: Duration) -> String {
    if timeout.subsec_nanos() == 0 {
        timeout.as_secs().to_string()
    } else {
        timeout.as_secs_f64().to_string()
    }
}

/// An OS error as Python prints it: `[Errno 111] Connection refused`.
fn python_os_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    match error.raw_os_error() {
        Some(code) => {
            let message = text
                .rsplit_once(" (os error")
                .map_or(text.as_str(), |(message, _)| message);
            format!("[Errno {code}] {message}")
        }
        None => text,
    }
}

/// Parses an `http://` or `https://` URL; the error is the text `requests` raises.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "Invalid URL '{url}': No scheme supplied. Perhaps you meant https://{url}?"
        ));
    };
    let is_https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(format!("No connection adapters were found for '{url}'")),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    let invalid = || format!("Invalid URL '{url}': No host supplied");
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid());
    }
    let port = match port {
        None | Some("") => {
            if is_https {
                443
            } else {
                80
            }
        }
        Some(port) => port
            .parse()
            .map_err(|_| format!("Failed to parse: {url}"))?,
    };
    Ok(Url {
        is_https,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// One GET a backend sends to a peer.
pub struct PeerRequest {
    /// The cluster address the request leaves from.
    pub source: Ipv4Addr,
    pub url: String,
    /// Basic credentials `(msp id, secret)`.
    pub credentials: Option<(String, String)>,
    pub channel: Option<String>,
}

/// What the caller saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutcome {
    Status(u16),
    /// The exception text.
    Error(String),
}

impl PeerOutcome {
    /// The table cell / probe status: a code, or the exception text.
    pub fn cell(&self) -> String {
        match self {
            Self::Status(code) => code.to_string(),
            Self::Error(text) => text.clone(),
        }
    }
}

async fn resolve(url: &Url) -> Option<Ipv4Addr> {
    if let Ok(address) = url.host.parse::<Ipv4Addr>() {
        return Some(address);
    }
    let addresses = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .ok()?;
    addresses
        .into_iter()
        .find_map(|address| match address.ip() {
            IpAddr::V4(address) => Some(address),
            IpAddr::V6(_) => None,
        })
}

/// Sends `request`; `is_partitioned(source, target)` says whether the network drops it.
pub async fn send(
    request: &PeerRequest,
    is_partitioned: impl Fn(Ipv4Addr, Ipv4Addr) -> bool,
    timeout: Duration,
) -> PeerOutcome {
    let url = match parse_url(&request.url) {
        Ok(url) => url,
        Err(text) => return PeerOutcome::Error(text),
    };
    let Some(target) = resolve(&url).await else {
        return PeerOutcome::Error(url.name_resolution_text());
    };
    if is_partitioned(request.source, target) {
        return PeerOutcome::Error(url.connect_timeout_text(timeout));
    }
    let socket = match TcpSocket::new_v4().and_then(|socket| {
        socket
            .bind(SocketAddr::from((request.source, 0)))
            .map(|()| socket)
    }) {
        Ok(socket) => socket,
        Err(error) => return PeerOutcome::Error(url.new_connection_text(&error)),
    };
    let stream = match tokio::time::timeout(
        timeout,
        socket.connect(SocketAddr::from((target, url.port))),
    )
    .await
    {
        Err(_elapsed) => return PeerOutcome::Error(url.connect_timeout_text(timeout)),
        Ok(Err(error)) => return PeerOutcome::Error(url.new_connection_text(&error)),
        Ok(Ok(stream)) => stream,
    };
    if url.is_https {
        // Every simulated server speaks plain HTTP.
        return PeerOutcome::Error(url.wrong_tls_version_text());
    }
    // The socket has only small requests to send: no Nagle delay.
    if stream.set_nodelay(true).is_err() {
        return PeerOutcome::Error(
            url.new_connection_text(&std::io::Error::other("setsockopt failed")),
        );
    }
    match tokio::time::timeout(timeout, exchange(stream, &url, request)).await {
        Err(_elapsed) => PeerOutcome::Error(url.read_timeout_text(timeout)),
        Ok(outcome) => outcome,
    }
}

/// Sends the request line and headers `requests` sends, and reads the whole response.
async fn exchange(stream: tokio::net::TcpStream, url: &Url, request: &PeerRequest) -> PeerOutcome {
    let aborted = || {
        PeerOutcome::Error(
            "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
                .to_owned(),
        )
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return aborted();
    };
    let mut builder = Request::get(url.path.as_str())
        .header("host", url.host_header())
        .header("user-agent", "python-requests/2.32.3")
        .header("accept-encoding", "gzip, deflate")
        .header("accept", "*/*")
        .header("connection", "keep-alive");
    if let Some((user, password)) = &request.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        builder = builder.header("authorization", format!("Basic {token}"));
    }
    if let Some(channel) = &request.channel {
        builder = builder.header("substra-channel-name", channel.as_str());
    }
    let Ok(http_request) = builder.body(Empty::new()) else {
        return PeerOutcome::Error(format!(
            "Invalid header value in request to {}",
            request.url
        ));
    };
    let response = async {
        let response = sender.send_request(http_request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    };
    tokio::pin!(response);
    tokio::pin!(connection);
    // The connection future must be polled for the response to arrive; once it ends, any
    // response it received has already been handed to the sender.
    let status = tokio::select! {
        status = &mut response => status,
        _ = &mut connection => response.await,
    };
    match status {
        Some(status) => PeerOutcome::Status(status),
        None => aborted(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("http://127.0.3.1:41234/info/", false, "127.0.3.1", 41234, "/info/")]
    #[case("http://api.example/model/", false, "api.example", 80, "/model/")]
    #[case("https://api.example:8443", true, "api.example", 8443, "/")]
    #[case("http://h:1//info/", false, "h", 1, "//info/")]
    fn urls_parse(
        #[case] text: &str,
        #[case] is_https: bool,
        #[case] host: &str,
        #[case] port: u16,
        #[case] path: &str,
    ) {
        let url = parse_url(text).unwrap();
        assert_eq!(
            (url.is_https, url.host.as_str(), url.port, url.path.as_str()),
            (is_https, host, port, path)
        );
    }

    #[test]
    fn scheme_less_urls_fail_like_requests() {
        assert_eq!(
            parse_url("localhost/info/").unwrap_err(),
            "Invalid URL 'localhost/info/': No scheme supplied. Perhaps you meant https://localhost/info/?"
        );
    }

    #[test]
    fn failure_texts_read_like_urllib3() {
        let url = parse_url("http://127.0.2.1:30800/info/").unwrap();
        assert_eq!(
            url.connect_timeout_text(Duration::from_secs(5)),
            "HTTPConnectionPool(host='127.0.2.1', port=30800): Max retries exceeded with url: /info/ (Caused by ConnectTimeoutError(<urllib3.connection.HTTPConnection object at 0x7f3a2c1d9e50>, 'Connection to 127.0.2.1 timed out. (connect timeout=5)'))"
        );
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            url.new_connection_text(&refused),
            "HTTPConnectionPool(host='127.0.2.1', port=30800): Max retries exceeded with url: /info/ (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3a2c1d9e50>: Failed to establish a new connection: [Errno 111] Connection refused'))"
        );
        assert_eq!(
            url.read_timeout_text(Duration::from_millis(500)),
            "HTTPConnectionPool(host='127.0.2.1', port=30800): Read timed out. (read timeout=0.5)"
        );
    }

    #[test]
    fn host_headers_omit_default_ports() {
        assert_eq!(parse_url("http://a:80/").unwrap().host_header(), "a");
        assert_eq!(parse_url("http://a:81/").unwrap().host_header(), "a:81");
    }
}
