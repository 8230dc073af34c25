//! The client side of proxy mode: pooled hyper clients per upstream, TLS by
//! rustls (public roots, plus a private CA file if configured), HTTP/1.1 or
//! HTTP/2 chosen by ALPN, and errors that name the upstream and the cause.
//!
//! One pool per data-plane shard (`crate::listener::shards`): a proxied
//! stream's client connection and its upstream connection then live on the
//! same thread, so neither side wakes the other across cores. A pool is made
//! on its shard's first request; requests from any other thread (the library's
//! tests, which run without shards) share one more.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::{Request, Response, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::Upstream;
use crate::response::Body;

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use upstream.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the TLS settings.
    #[error("cannot set up TLS for the upstream: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request to the upstream got no response head. The side that failed
/// picks the status: unreachable → 502, too slow → 504.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// Connecting failed: refused, DNS, TLS.
    #[error("sluice cannot connect to upstream {upstream}: {cause}")]
    Connect {
        /// The upstream's base URL.
        upstream: String,
        /// The cause chain.
        cause: String,
    },
    /// The connection or the response head took too long.
    #[error("upstream {upstream} did not answer within {timeout:?} ({what})")]
    Timeout {
        /// The upstream's base URL.
        upstream: String,
        /// The limit that ran out.
        timeout: Duration,
        /// Which limit: `upstream.connect_timeout` or `upstream.header_timeout`.
        what: &'static str,
    },
    /// The request failed after connecting (reset, protocol error).
    #[error("request to upstream {upstream} failed: {cause}")]
    Request {
        /// The upstream's base URL.
        upstream: String,
        /// The cause chain.
        cause: String,
    },
}

impl UpstreamError {
    /// 502 for an upstream that failed, 504 for one that was too slow.
    pub(crate) fn status(&self) -> hyper::StatusCode {
        match self {
            Self::Timeout { .. } => hyper::StatusCode::GATEWAY_TIMEOUT,
            Self::Connect { .. } | Self::Request { .. } => hyper::StatusCode::BAD_GATEWAY,
        }
    }

    /// The `x-sluice-error` value, so no one mistakes it for the upstream's
    /// own error or an injected fault.
    pub(crate) fn marker(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "upstream-connect",
            Self::Timeout { .. } => "upstream-timeout",
            Self::Request { .. } => "upstream-request",
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// and `upgrade`. `Connection` first ([`strip_hop_by_hop`] relies on it).
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
/// One pass over the names first notes which of them are there: most
/// requests have none, every streamed response has `transfer-encoding`, and
/// a map lookup by name (a removal of a name that is not there too) costs
/// more than comparing a few.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Bit `i` set: `HOP_BY_HOP[i]` is present.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // `HOP_BY_HOP[0]` is `Connection`.
    if present & 1 != 0 {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

type Pool = Client<HttpsConnector<HttpConnector>, Body>;

#[derive(Debug)]
struct Pools {
    /// For threads that are not shards.
    shared: OnceLock<Pool>,
    /// One per shard, in shard order.
    shards: Box<[OnceLock<Pool>]>,
}

/// The pooled clients for one upstream: one per shard, made when first used.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamClient {
    pools: Arc<Pools>,
    connector: HttpsConnector<HttpConnector>,
    /// Idle connections each pool keeps: `max_idle_per_host` shared out.
    idle_per_pool: usize,
    settings: Arc<Upstream>,
    /// The base URL without credentials: what requests are sent to (hyper
    /// logs its pool keys, which are made from it).
    base: Uri,
    /// `Authorization: Basic` from credentials in the URL, marked sensitive.
    basic_auth: Option<HeaderValue>,
    label: String,
}

/// Splits credentials (`user:password@`) off a URL: the URL without them,
/// and the `Authorization: Basic` value they make.
fn split_credentials(url: &Uri) -> (Uri, Option<HeaderValue>) {
    let Some((userinfo, host)) = url.authority().and_then(|a| a.as_str().rsplit_once('@')) else {
        return (url.clone(), None);
    };
    let mut parts = url.clone().into_parts();
    parts.authority = host.parse().ok();
    let base = Uri::from_parts(parts).unwrap_or_else(|_| url.clone());
    let decoded = |text: &str| -> String {
        // Percent-decoding of the few bytes userinfo may escape.
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let token = BASE64.encode(format!("{}:{}", decoded(user), decoded(password)));
    let header = HeaderValue::from_str(&format!("Basic {token}")).ok().map(|mut value| {
        value.set_sensitive(true);
        value
    });
    (base, header)
}

impl UpstreamClient {
    /// Builds the client: TLS roots, ALPN, pool, connect timeout.
    ///
    /// # Errors
    /// [`ClientError`] when the CA file is unusable.
    pub(crate) fn new(settings: &Upstream) -> Result<Self, ClientError> {
        Self::with_shard_pools(settings, crate::listener::shards::installed_count())
    }

    /// [`Self::new`] with a pool for each of `shards` shards.
    fn with_shard_pools(settings: &Upstream, shards: usize) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &settings.ca_file {
            let ca_error =
                |reason: String| ClientError::CaFile { path: path.display().to_string(), reason };
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("no PEM certificate in the file".to_string()));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        // A storm of clients that leave must not leave a pool of hundreds of
        // idle upstream connections behind: the limit is the process's,
        // shared out between the shards' pools.
        let idle_per_pool = settings.max_idle_per_host.div_ceil(shards.max(1));
        let (base, basic_auth) = split_credentials(&settings.url);
        Ok(Self {
            pools: Arc::new(Pools {
                shared: OnceLock::new(),
                shards: (0..shards).map(|_| OnceLock::new()).collect(),
            }),
            connector: https,
            idle_per_pool,
            base,
            basic_auth,
            // Never the credentials: the label goes into logs and 502 bodies.
            label: settings.display_url(),
            settings: Arc::new(settings.clone()),
        })
    }

    /// The upstream's settings.
    pub(crate) fn settings(&self) -> &Upstream {
        &self.settings
    }

    /// The upstream's base URL, for messages.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Sends `request` (path and query relative to the upstream's base) and
    /// waits for the response head, at most `header_timeout`.
    ///
    /// # Errors
    /// [`UpstreamError`] naming the upstream and the cause.
    pub(crate) async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, UpstreamError> {
        *request.uri_mut() = self.target(request.uri());
        *request.version_mut() = Version::HTTP_11; // the client upgrades to h2 by ALPN
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        headers.remove(HOST); // set from the upstream URL
        // A compressed SSE stream cannot be split into events as it arrives:
        // a compressing upstream holds it until it ends, and every delay and
        // fault would be lost. So sluice asks every upstream for identity
        // (the client then gets an uncompressed answer, which HTTP allows).
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some(basic) = &self.basic_auth
            && !headers.contains_key(AUTHORIZATION)
        {
            headers.insert(AUTHORIZATION, basic.clone());
        }
        let timeout = self.settings.header_timeout;
        match tokio::time::timeout(timeout, self.pool().request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(self.classify(&error)),
            Err(_) => Err(UpstreamError::Timeout {
                upstream: self.label.clone(),
                timeout,
                what: "upstream.header_timeout",
            }),
        }
    }

    /// This thread's pool: its shard's, or the one other threads share. Its
    /// connections' tasks are spawned where it is first used, so a shard's
    /// pool's connections run on that shard.
    fn pool(&self) -> &Pool {
        let shard = crate::listener::shards::current();
        let slot = shard.and_then(|index| self.pools.shards.get(index));
        slot.unwrap_or(&self.pools.shared).get_or_init(|| {
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(self.idle_per_pool)
                .build(self.connector.clone())
        })
    }

    /// The upstream URI for a client request's path and query.
    fn target(&self, client: &Uri) -> Uri {
        let base = &self.base;
        let prefix = base.path().trim_end_matches('/');
        let mut parts = base.clone().into_parts();
        parts.path_and_query = match client.path_and_query() {
            // A base without a path (the usual case): the client's, shared, not re-parsed.
            Some(pq) if prefix.is_empty() => Some(pq.clone()),
            pq => format!("{prefix}{}", pq.map_or("/", |pq| pq.as_str())).parse().ok(),
        };
        Uri::from_parts(parts).unwrap_or_else(|_| base.clone())
    }

    fn classify(&self, error: &hyper_util::client::legacy::Error) -> UpstreamError {
        let cause = cause_chain(error);
        let timed_out = chain(error).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        });
        if error.is_connect() && timed_out {
            UpstreamError::Timeout {
                upstream: self.label.clone(),
                timeout: self.settings.connect_timeout,
                what: "upstream.connect_timeout",
            }
        } else if error.is_connect() {
            UpstreamError::Connect { upstream: self.label.clone(), cause }
        } else {
            UpstreamError::Request { upstream: self.label.clone(), cause }
        }
    }
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// `a: b: c` from an error and its sources, skipping repeats.
pub(crate) fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(error) {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_the_rest_stay() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-custom-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-custom-hop", "1"),
            ("authorization", "Bearer sk-secret"),
            ("x-api-key", "sk-secret"),
            ("anthropic-version", "2023-06-01"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["anthropic-version", "authorization", "x-api-key"]);
    }

    #[test]
    fn each_hop_by_hop_header_goes_on_its_own_and_with_every_value() {
        for hop in &HOP_BY_HOP {
            let mut headers = HeaderMap::new();
            headers.append(hop.clone(), HeaderValue::from_static("x-named"));
            headers.append(hop.clone(), HeaderValue::from_static("second"));
            headers.insert("x-named", HeaderValue::from_static("1"));
            headers.insert("x-api-key", HeaderValue::from_static("k"));
            strip_hop_by_hop(&mut headers);
            let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            left.sort_unstable();
            // Only `Connection` names others.
            let expected: &[&str] =
                if hop == CONNECTION { &["x-api-key"] } else { &["x-api-key", "x-named"] };
            assert_eq!(left, expected, "after {hop}");
        }
    }

    #[test]
    fn the_client_path_and_query_go_under_the_upstream_base() {
        let client = |url: &str| UpstreamClient::new(&Upstream::new(url.parse().unwrap())).unwrap();
        let path: Uri = "/v1/messages?beta=true".parse().unwrap();
        assert_eq!(
            client("https://api.anthropic.com").target(&path),
            "https://api.anthropic.com/v1/messages?beta=true"
        );
        assert_eq!(
            client("http://127.0.0.1:9/prefix/").target(&path),
            "http://127.0.0.1:9/prefix/v1/messages?beta=true"
        );
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_url() {
        let (base, auth) =
            split_credentials(&"http://us%40er:hun%3Ater2@127.0.0.1:9/p".parse().unwrap());
        assert_eq!(base, "http://127.0.0.1:9/p");
        let auth = auth.unwrap();
        assert!(auth.is_sensitive());
        // base64("us@er:hun:ter2")
        assert_eq!(auth, "Basic dXNAZXI6aHVuOnRlcjI=");
        let (base, auth) = split_credentials(&"https://api.anthropic.com".parse().unwrap());
        assert_eq!((base, auth), ("https://api.anthropic.com".parse().unwrap(), None));
    }

    /// A request sent from a shard goes through that shard's pool, and one
    /// sent from any other thread through the shared one: each pool is made
    /// where it is first used, so its connections' tasks run there.
    #[tokio::test]
    async fn each_shard_sends_through_a_pool_of_its_own() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_| async {
                        let empty = http_body_util::Empty::<bytes::Bytes>::new();
                        Ok::<_, std::convert::Infallible>(Response::new(empty))
                    });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let http1 = hyper::server::conn::http1::Builder::new();
                    let _ = http1.serve_connection(io, service).await;
                });
            }
        });
        let shards = crate::listener::shards::Shards::start(3).unwrap();
        let upstream = Upstream::new(url.parse().unwrap());
        let client = UpstreamClient::with_shard_pools(&upstream, 3).unwrap();
        let made = |client: &UpstreamClient| {
            let shards = client.pools.shards.iter().map(|pool| pool.get().is_some());
            (client.pools.shared.get().is_some(), shards.collect::<Vec<_>>())
        };
        let send = |client: UpstreamClient| async move {
            let request =
                Request::get("/").body(crate::response::full(bytes::Bytes::new())).unwrap();
            client.send(request).await.unwrap().status()
        };
        assert_eq!(shards.run_on(0, send(client.clone())).await, 200);
        assert_eq!(shards.run_on(2, send(client.clone())).await, 200);
        assert_eq!(made(&client), (false, vec![true, false, true]));
        assert_eq!(send(client.clone()).await, 200);
        assert_eq!(made(&client), (true, vec![true, false, true]));
    }

    #[test]
    fn an_unusable_ca_file_is_named() {
        let mut settings = Upstream::new("https://x".parse().unwrap());
        settings.ca_file = Some("/nonexistent/ca.pem".into());
        let message = UpstreamClient::new(&settings).unwrap_err().to_string();
        assert!(
            message.starts_with("cannot use upstream.ca_file /nonexistent/ca.pem: "),
            "{message}"
        );
    }
}
