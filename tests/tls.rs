//! The TLS listener over real sockets on the paused clock: a client that
//! trusts only the generated CA (verification on), HTTP/2 and HTTP/1.1 by
//! ALPN with the same exact timing as plain HTTP, a plain-HTTP client told
//! what is wrong, and certificate files reloaded while a stream runs.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers panic on failure")]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use support::{eventually, metric, ms, start_with_admin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use support::NO_ERRORS as TIMING;

/// A rustls client that trusts only `ca_pem`, offering `alpn`.
fn connector(ca_pem: &[u8], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

fn stream_request() -> Request<Full<Bytes>> {
    let body = json!({"model": "m", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    Request::post("/v1/messages")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-test")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// What a request over TLS got: the protocol, the head's arrival, and each
/// token's arrival (measured from the request, after the handshake).
struct Over {
    h2: bool,
    head_at: Duration,
    token_at: Vec<Duration>,
}

async fn over_tls(addr: SocketAddr, ca_pem: &[u8], alpn: &[u8]) -> Result<Over, String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector(ca_pem, &[alpn]).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let sent;
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(connection);
        sent = Instant::now();
        sender.send_request(stream_request()).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        sent = Instant::now();
        sender.send_request(stream_request()).await.unwrap()
    };
    let head_at = sent.elapsed();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut token_at = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            let text = String::from_utf8_lossy(&data).to_string();
            for _ in text.matches("event: content_block_delta") {
                token_at.push(sent.elapsed());
            }
        }
    }
    Ok(Over { h2, head_at, token_at })
}

/// The file at `path`, once sluice (starting on another task) has written it.
async fn written(path: &Path) -> Vec<u8> {
    eventually("the CA file", || async { std::fs::read(path).ok() }).await
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test(start_paused = true)]
async fn h2_and_http1_over_tls_keep_the_exact_timing_of_plain_http() {
    let dir = temp_dir();
    let ca_out = dir.path().join("ca.pem");
    let toml = format!(
        "{TIMING}[tls]\nself_signed = true\nnames = [\"api.example.test\"]\nca_out = {:?}\n",
        ca_out.display().to_string()
    );
    let sluice = start_with_admin(&toml).await;
    let ca = written(&ca_out).await;
    for (alpn, h2) in [(&b"h2"[..], true), (&b"http/1.1"[..], false)] {
        let over = over_tls(sluice.api, &ca, alpn).await.unwrap();
        assert_eq!(over.h2, h2, "ALPN {}", String::from_utf8_lossy(alpn));
        assert_eq!(over.head_at, ms(100), "the head with the first token");
        assert_eq!(over.token_at.len(), 50);
        for (k, at) in over.token_at.iter().enumerate() {
            assert_eq!(*at, ms(100 + 20 * k as u64), "token {k}");
        }
    }
    assert_eq!(metric(sluice.admin, "sluice_tls_handshakes_total{result=\"ok\"}").await, 2.0);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_trust_the_ca_or_speaks_plain_http_is_refused_alone() {
    let dir = temp_dir();
    let ca_out = dir.path().join("ca.pem");
    let toml =
        format!("{TIMING}[tls]\nself_signed = true\nca_out = {:?}\n", ca_out.display().to_string());
    let sluice = start_with_admin(&toml).await;
    let ca = written(&ca_out).await;
    // Another CA: verification fails on the client's side, and sluice counts it.
    let other = sluice::listener::tls::generate(&["localhost".to_string()]).unwrap();
    let refused = over_tls(sluice.api, other.ca_pem.as_bytes(), b"h2").await;
    let refused = refused.err().unwrap();
    assert!(refused.starts_with("invalid peer certificate"), "{refused}");
    // Plain HTTP to the TLS port: a plain answer that says why.
    let mut tcp = TcpStream::connect(sluice.api).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with("this sluice listener speaks TLS: use https://\n"), "{answer}");
    // Neither disturbed a good client.
    assert_eq!(over_tls(sluice.api, &ca, b"h2").await.unwrap().token_at.len(), 50);
    let count = |result: &'static str| {
        let admin = sluice.admin;
        async move {
            metric(admin, &format!("sluice_tls_handshakes_total{{result=\"{result}\"}}")).await
        }
    };
    assert_eq!(count("not_tls").await, 1.0);
    assert_eq!(count("refused").await, 1.0);
    assert_eq!(count("ok").await, 1.0);
}

fn write_pair(dir: &Path, generated: &sluice::listener::tls::Generated) {
    // As a Secret update or a deploy writes them: the new files renamed over the old.
    for (name, text) in [("cert.pem", &generated.cert_pem), ("key.pem", &generated.key_pem)] {
        let staged = dir.join(format!("{name}.new"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, dir.join(name)).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn new_certificate_files_take_over_new_connections_and_no_stream_drops() {
    let dir = temp_dir();
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    let first = sluice::listener::tls::generate(&names).unwrap();
    write_pair(dir.path(), &first);
    // A long stream: 50 tokens 100 ms apart.
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"100ms\"\n[tls]\ncert = {:?}\nkey = {:?}\n",
        dir.path().join("cert.pem").display().to_string(),
        dir.path().join("key.pem").display().to_string()
    );
    let sluice = start_with_admin(&toml).await;
    let addr = sluice.api;
    let old_ca = first.ca_pem.clone().into_bytes();
    let running = tokio::spawn(async move { over_tls(addr, &old_ca, b"h2").await });
    tokio::time::sleep(ms(500)).await;
    // A pair that does not load is refused; the old one stays.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(over_tls(addr, first.ca_pem.as_bytes(), b"h2").await.is_ok(), "still the first");
    let second = sluice::listener::tls::generate(&names).unwrap();
    write_pair(dir.path(), &second);
    eventually("the new certificate", || async {
        over_tls(addr, second.ca_pem.as_bytes(), b"http/1.1").await.ok()
    })
    .await;
    assert!(over_tls(addr, first.ca_pem.as_bytes(), b"h2").await.is_err(), "the old CA no longer");
    let stream = running.await.unwrap().unwrap();
    assert_eq!(stream.token_at.len(), 50, "the stream that began before the reload ran to its end");
}

#[tokio::test]
async fn a_tls_table_must_name_one_certificate_source() {
    for (bad, expected) in [
        ("[tls]\ncert = \"c.pem\"\n", "either cert and key"),
        ("[tls]\nself_signed = true\ncert = \"c.pem\"\nkey = \"k.pem\"\n", "either cert and key"),
        ("[tls]\nself_signed = true\nalpn = [\"h3\"]\n", "\"h2\" and \"http/1.1\""),
    ] {
        let error = sluice::Config::from_toml_str(bad, "t.toml").unwrap_err().to_string();
        assert!(error.contains(expected), "{bad}: {error}");
    }
    let config = sluice::Config::from_toml_str(
        "[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/k.pem\"\n",
        "t.toml",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = sluice::Source::Fixed(Box::new(config));
    let error =
        sluice::serve(source, listener, None, std::future::pending(), Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
    assert!(error.contains("/nonexistent/c.pem"), "{error}");
}

/// Reads a body to its end: the tokens that arrived, and the error that broke it.
async fn tokens_then_error(body: hyper::body::Incoming) -> (usize, Option<hyper::Error>) {
    let mut body = body;
    let mut tokens = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    tokens += String::from_utf8_lossy(&data)
                        .matches("event: content_block_delta")
                        .count();
                }
            }
            Err(error) => return (tokens, Some(error)),
        }
    }
    (tokens, None)
}

// On the real clock: on the paused one, an HTTP/2 request body (a frame of
// its own) can still be in the socket when the idle runtime jumps the clock
// past the body read timeout.
#[tokio::test]
async fn a_reset_over_tls_resets_the_stream_on_h2_and_the_connection_on_http1() {
    let dir = temp_dir();
    let ca_out = dir.path().join("ca.pem");
    let toml = format!(
        "error_rate = 0\nfirst_token_delay = \"5ms\"\ntoken_interval = \"1ms\"\n\
         [[faults]]\nkind = \"reset\"\nafter_tokens = 3\nfirst_requests = 1\n\
         [tls]\nself_signed = true\nca_out = {:?}\n",
        ca_out.display().to_string()
    );
    let sluice = start_with_admin(&toml).await;
    let ca = written(&ca_out).await;
    // HTTP/2: RST_STREAM for that stream; the connection serves the next request.
    let tcp = TcpStream::connect(sluice.api).await.unwrap();
    let tls = connector(&ca, &[b"h2"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let first = sender.send_request(stream_request()).await.unwrap();
    let (tokens, error) = tokens_then_error(first.into_body()).await;
    assert_eq!(tokens, 3);
    let error = error.expect("the stream was reset");
    let reason = std::error::Error::source(&error).map(|e| e.to_string()).unwrap_or_default();
    assert!(reason.contains("stream error"), "an h2 stream reset: {error:?}");
    let second = sender.send_request(stream_request()).await.unwrap();
    assert_eq!(second.status(), 200);
    let second = tokens_then_error(second.into_body()).await;
    assert_eq!(second.0, 50, "same connection, next stream: {:?}", second.1);
    // HTTP/1.1: the TCP connection itself is reset (a new sluice: the schedule starts over).
    let sluice =
        start_with_admin(&toml.replace(
            &ca_out.display().to_string(),
            &dir.path().join("ca1.pem").display().to_string(),
        ))
        .await;
    let ca = written(&dir.path().join("ca1.pem")).await;
    let tcp = TcpStream::connect(sluice.api).await.unwrap();
    let tls = connector(&ca, &[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    let connection = tokio::spawn(connection);
    let first = sender.send_request(stream_request()).await.unwrap();
    let (tokens, error) = tokens_then_error(first.into_body()).await;
    assert_eq!(tokens, 3);
    assert!(error.is_some(), "the body broke");
    let ended = connection.await.unwrap();
    assert!(ended.is_err() || sender.is_closed(), "the connection is gone: {ended:?}");
}

/// `sluice health` (Docker's HEALTHCHECK) on a TLS listener: the probe speaks
/// plain HTTP, and sluice's own "use https://" answer counts as healthy.
#[tokio::test]
async fn the_health_command_sees_a_tls_listener_as_healthy() {
    let dir = temp_dir();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = api.local_addr().unwrap().port();
    let file = dir.path().join("sluice.toml");
    let toml = format!("listen = \"127.0.0.1:{port}\"\n[tls]\nself_signed = true\n");
    std::fs::write(&file, &toml).unwrap();
    let config = sluice::Config::from_toml_str(&toml, "t.toml").unwrap();
    tokio::spawn(sluice::serve(
        sluice::Source::Fixed(Box::new(config)),
        api,
        None,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let health = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["health", "--config"])
            .arg(&file)
            .env_remove("PORT")
            .output()
            .unwrap()
    };
    let status = eventually("sluice health to pass", || async {
        let out = tokio::task::spawn_blocking(health.clone()).await.unwrap();
        out.status.success().then_some(out.status)
    })
    .await;
    assert!(status.success());
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_at_the_header_read_timeout_and_counted() {
    let dir = temp_dir();
    let ca_out = dir.path().join("ca.pem");
    let toml = format!(
        "{TIMING}[limits]\nheader_read_timeout = \"2s\"\n[tls]\nself_signed = true\nca_out = {:?}\n",
        ca_out.display().to_string()
    );
    let sluice = start_with_admin(&toml).await;
    let ca = written(&ca_out).await;
    let mut silent = TcpStream::connect(sluice.api).await.unwrap();
    let started = Instant::now();
    // Meanwhile a good client is served.
    assert_eq!(over_tls(sluice.api, &ca, b"h2").await.unwrap().token_at.len(), 50);
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2), "closed at the timeout");
    let timeouts = "sluice_tls_handshakes_total{result=\"timeout\"}";
    assert_eq!(metric(sluice.admin, timeouts).await, 1.0);
}

#[tokio::test(start_paused = true)]
async fn alpn_restricts_the_protocols_offered() {
    let dir = temp_dir();
    let ca_out = dir.path().join("ca.pem");
    let toml = format!(
        "{TIMING}[tls]\nself_signed = true\nalpn = [\"http/1.1\"]\nca_out = {:?}\n",
        ca_out.display().to_string()
    );
    let sluice = start_with_admin(&toml).await;
    let ca = written(&ca_out).await;
    let tcp = TcpStream::connect(sluice.api).await.unwrap();
    let both = connector(&ca, &[b"h2", b"http/1.1"]);
    let tls = both.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let refused = over_tls(sluice.api, &ca, b"h2").await;
    assert!(refused.is_err(), "an h2-only client has no protocol in common");
}

/// `sluice health` says in a sentence why a listener is not healthy: one
/// that accepts and never answers, and a port nothing listens on.
#[tokio::test]
async fn the_health_command_says_why_a_listener_is_unhealthy() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let refused_port = support::upstreams::refused_port().await.port();
    let health = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["health", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("PORT")
            .env_remove("SLUICE_CONFIG")
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(move || health(silent_port)).await.unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        said.trim(),
        format!("sluice: no healthy sluice on 127.0.0.1:{silent_port}: no answer within 2 s")
    );
    drop(silent);
    let out = tokio::task::spawn_blocking(move || health(refused_port)).await.unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        said.trim(),
        format!(
            "sluice: no healthy sluice on 127.0.0.1:{refused_port}: nothing listens there (connection refused)"
        )
    );
}
