//! The HTTP side of a simulated backend: what uwsgi + Django + DRF answer on the paths that
//! linking uses (facts §2, §5, §6).
//!
//! [`route`] decides the answer from the request and the organization's state without any
//! I/O, in the order the real middleware and views run: host check, health paths, URL
//! resolution, authentication, permissions, throttling, then the handler. [`serve`] is the
//! hyper plumbing around it.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::accounts::AccountStore;
use super::backend::Organization;
use super::hosts::is_raw_host_allowed;
use super::throttle::{Decision, throttled_detail};

/// The header peers name the channel of a request with.
pub const CHANNEL_HEADER: &str = "substra-channel-name";

/// A response, before hyper types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: String,
}

impl Reply {
    fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn detail(status: StatusCode, detail: &str) -> Self {
        Self::json(status, &serde_json::json!({ "detail": detail }))
    }

    fn html(status: StatusCode, body: &str) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The 401 DRF sends: the first authenticator's keyword is `Token`.
    fn unauthorized(detail: &str) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, detail)
            .with_header(header::WWW_AUTHENTICATE, "Token".to_owned())
    }

    fn into_response(self, is_head: bool) -> Response<Full<Bytes>> {
        let body = if is_head {
            Bytes::new()
        } else {
            Bytes::from(self.body)
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// Who a request authenticated as on a view that accepts Basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Anonymous,
    Organization(String),
    /// Authentication failed with this DRF detail.
    Failed(&'static str),
}

/// DRF's authenticators in the backend's order, for views that add `BasicAuthentication`.
pub fn authenticate(headers: &HeaderMap, accounts: &AccountStore) -> Authentication {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Authentication::Anonymous;
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let parts: Vec<&str> = value.split_whitespace().collect();
    let Some(scheme) = parts.first() else {
        return Authentication::Anonymous;
    };
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {}
        // The token and JWT authenticators reject a token they cannot find.
        "token" | "bearer" | "jwt" => return Authentication::Failed("Invalid token."),
        _ => return Authentication::Anonymous,
    }
    let encoded = match parts.as_slice() {
        [_] => return Authentication::Failed("Invalid basic header. No credentials provided."),
        [_, encoded] => encoded,
        _ => {
            return Authentication::Failed(
                "Invalid basic header. Credentials string should not contain spaces.",
            );
        }
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return Authentication::Failed(
            "Invalid basic header. Credentials not correctly base64 encoded.",
        );
    };
    // DRF tries UTF-8, then Latin-1, which maps every byte to the code point of that value.
    let decoded = match String::from_utf8(decoded) {
        Ok(text) => text,
        Err(error) => error
            .into_bytes()
            .iter()
            .map(|byte| char::from(*byte))
            .collect(),
    };
    let (id, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    if accounts.is_incoming_valid(id, password) {
        Authentication::Organization(id.to_owned())
    } else {
        Authentication::Failed("Invalid username/password.")
    }
}

fn method_not_allowed(method: &Method) -> Reply {
    Reply::detail(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("Method \"{method}\" not allowed."),
    )
}

/// Answers one request to `organization` from `client`.
pub fn route(
    organization: &Organization,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    client: IpAddr,
    now: Instant,
) -> Reply {
    let Some(installed) = organization.installed() else {
        // No server pod behind the port yet.
        return Reply::html(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    // Production settings set USE_X_FORWARDED_HOST, so a proxy's header wins.
    let raw_host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|value| value.to_str().ok());
    if !is_raw_host_allowed(raw_host, &installed.allowed_hosts) {
        return Reply::html(StatusCode::BAD_REQUEST, "<h1>Bad Request (400)</h1>");
    }
    let is_read = method == Method::GET || method == Method::HEAD;
    match path {
        "/readiness" | "/liveness" => Reply::html(StatusCode::OK, "OK"),
        "/info/" => {
            // A Basic header is ignored here: `/info/` does not list BasicAuthentication.
            let decision =
                organization
                    .throttle()
                    .check(client, installed.config.throttle_rate, now);
            if let Decision::Throttled { wait_seconds } = decision {
                let reply = Reply::detail(
                    StatusCode::TOO_MANY_REQUESTS,
                    &throttled_detail(wait_seconds),
                );
                return match wait_seconds {
                    Some(seconds) => reply.with_header(header::RETRY_AFTER, seconds.to_string()),
                    None => reply,
                };
            }
            if !is_read {
                return method_not_allowed(method);
            }
            let config = &installed.config;
            Reply::json(
                StatusCode::OK,
                &serde_json::json!({
                    "host": config.default_domain,
                    "organization_id": config.msp_id,
                    "organization_name": config.organization_name,
                    "config": {},
                    "auth": {},
                }),
            )
        }
        "/model/" => {
            let authentication = authenticate(headers, &organization.state().accounts);
            match authentication {
                Authentication::Failed(detail) => Reply::unauthorized(detail),
                Authentication::Anonymous => {
                    Reply::unauthorized("Authentication credentials were not provided.")
                }
                // Authenticated users are not anonymously throttled.
                Authentication::Organization(_) if !is_read => method_not_allowed(method),
                Authentication::Organization(_) => {
                    if headers.get(CHANNEL_HEADER).is_none() {
                        return Reply::detail(
                            StatusCode::BAD_REQUEST,
                            "Could not determine channel name",
                        );
                    }
                    Reply::json(
                        StatusCode::OK,
                        &serde_json::json!({"count": 0, "next": null, "previous": null, "results": []}),
                    )
                }
            }
        }
        // APPEND_SLASH: CommonMiddleware redirects to the slashed URL when that one exists.
        "/info" | "/model" => Reply::html(StatusCode::MOVED_PERMANENTLY, "")
            .with_header(header::LOCATION, format!("{path}/")),
        _ => Reply::html(
            StatusCode::NOT_FOUND,
            "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>",
        ),
    }
}

/// Serves `listener` until `shutdown` turns true or its sender goes away, then aborts every
/// connection task it started.
pub async fn serve(
    listener: TcpListener,
    organization: Arc<Organization>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    if *shutdown.borrow_and_update() {
        return;
    }
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of file descriptors or similar: pause instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Small responses: do not wait for Nagle.
                if stream.set_nodelay(true).is_err() {
                    continue;
                }
                let organization = Arc::clone(&organization);
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let reply = route(
                            &organization,
                            request.method(),
                            request.uri().path(),
                            request.headers(),
                            peer.ip(),
                            Instant::now(),
                        );
                        let is_head = request.method() == Method::HEAD;
                        async move { Ok::<_, Infallible>(reply.into_response(is_head)) }
                    });
                    // A connection error only means the client went away.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::AccountSync;
    use crate::provider::sim::config::AccountEntry;
    use rstest::rstest;

    fn accounts() -> AccountStore {
        let mut store = AccountStore::default();
        let entry = AccountEntry {
            name: "AMSP".into(),
            secret: "secret".into(),
            channel: None,
        };
        store
            .apply(&[entry], &[], AccountSync::Sync, &mut || Ok([0; 16]))
            .unwrap();
        store
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    #[rstest]
    // AMSP:secret
    #[case("Basic QU1TUDpzZWNyZXQ=", Authentication::Organization("AMSP".into()))]
    #[case("basic QU1TUDpzZWNyZXQ=", Authentication::Organization("AMSP".into()))]
    // AMSP:other
    #[case(
        "Basic QU1TUDpvdGhlcg==",
        Authentication::Failed("Invalid username/password.")
    )]
    #[case(
        "Basic",
        Authentication::Failed("Invalid basic header. No credentials provided.")
    )]
    #[case(
        "Basic a b",
        Authentication::Failed(
            "Invalid basic header. Credentials string should not contain spaces."
        )
    )]
    #[case(
        "Basic !!!",
        Authentication::Failed("Invalid basic header. Credentials not correctly base64 encoded.")
    )]
    #[case("Token abc", Authentication::Failed("Invalid token."))]
    #[case("Digest abc", Authentication::Anonymous)]
    fn basic_auth_follows_drf(#[case] authorization: &str, #[case] expected: Authentication) {
        assert_eq!(authenticate(&headers(authorization), &accounts()), expected);
    }

    #[test]
    fn no_header_is_anonymous() {
        assert_eq!(
            authenticate(&HeaderMap::new(), &accounts()),
            Authentication::Anonymous
        );
    }
}
