//! Test fixtures: sluice started in-process on a free port, and a plain HTTP/1
//! client that records when each part of a response arrived.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "fixtures panic on setup failure")]
#![allow(dead_code, reason = "each test file uses a different subset")]

pub mod tls;
pub mod upstreams;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use sluice::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A running sluice; stops when dropped.
pub struct Sluice {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Starts sluice with `toml` on 127.0.0.1, port 0, on the current runtime.
pub async fn start(toml: &str) -> Sluice {
    let mut config = Config::from_toml_str(toml, "test.toml").unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let listener = TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        sluice::run(config, listener, stop, Duration::from_secs(1)).await.unwrap();
    });
    Sluice { addr, _stop: stop }
}

/// A sluice with its admin listener, serving a fixed config; stops when dropped.
pub struct WithAdmin {
    pub api: SocketAddr,
    pub admin: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Starts sluice with `toml` and an admin listener, both on free ports.
pub async fn start_with_admin(toml: &str) -> WithAdmin {
    start_config_with_admin(Config::from_toml_str(toml, "test.toml").unwrap()).await
}

/// Starts sluice with `config` and an admin listener, both on free ports.
pub async fn start_config_with_admin(config: Config) -> WithAdmin {
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (api_addr, admin_addr) = (api.local_addr().unwrap(), admin.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let source = sluice::Source::Fixed(Box::new(config));
        sluice::serve(source, api, Some(admin), shutdown, Duration::from_secs(1)).await.unwrap();
    });
    WithAdmin { api: api_addr, admin: admin_addr, _stop: stop }
}

/// A response as received: head, the time it arrived, and each body chunk
/// with the time it arrived (all measured from when the request was sent).
#[derive(Debug)]
pub struct Received {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub head_at: Duration,
    pub chunks: Vec<(Bytes, Duration)>,
}

impl Received {
    pub fn body(&self) -> Bytes {
        self.chunks.iter().flat_map(|(b, _)| b.iter().copied()).collect::<Vec<u8>>().into()
    }

    /// A header's value, `""` when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).unwrap()
    }

    /// SSE events as (name, data, arrival). An event counts as arrived when
    /// the chunk holding its last byte did.
    pub fn events(&self) -> Vec<(String, serde_json::Value, Duration)> {
        let mut events = Vec::new();
        let mut pending = String::new();
        for (chunk, at) in &self.chunks {
            pending.push_str(std::str::from_utf8(chunk).unwrap());
            while let Some(end) = pending.find("\n\n") {
                let block: String = pending.drain(..end + 2).collect();
                let mut lines = block.trim_end().lines();
                let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_string();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                events.push((name, serde_json::from_str(data).unwrap(), *at));
            }
        }
        assert!(pending.is_empty(), "stream ended inside an event: {pending:?}");
        events
    }
}

/// Sends one request on a new connection and reads the whole response.
pub async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Received {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let sent = Instant::now();
    let response = sender.send_request(request).await.unwrap();
    let head_at = sent.elapsed();
    let (parts, mut body) = response.into_parts();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            chunks.push((data, sent.elapsed()));
        }
    }
    Received { status: parts.status, headers: parts.headers, head_at, chunks }
}

/// `POST /v1/messages` with `body`, as the new SDKs send it.
pub fn messages(body: &serde_json::Value) -> Request<Full<Bytes>> {
    Request::post("/v1/messages")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .header("anthropic-version", "2026-10-21")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A request with any method, path and raw body.
pub fn raw(method: &str, path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Opens a connection and sends `request`: the response's head, and its body
/// to be read frame by frame.
pub async fn open(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> hyper::Response<hyper::body::Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

/// Reads a body to its end: the bytes that arrived, and whether it ended
/// cleanly (`Ok`) or broke (`Err`, as a reset or an upstream break shows).
pub async fn drain(mut body: hyper::body::Incoming) -> (Vec<u8>, Result<(), hyper::Error>) {
    let mut received = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    received.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => return (received, Err(error)),
            None => return (received, Ok(())),
        }
    }
}

/// A request to an admin endpoint.
pub fn admin_request(method: &str, path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The value of the series `name{labels}` (labels as written) on an admin
/// listener's `/metrics`, 0 when absent.
pub async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let text = send(admin, admin_request("GET", "/metrics", "")).await.body();
    String::from_utf8(text.to_vec())
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls `probe` until it returns `Some`, for at most 10 s.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child process that is killed when dropped, so a failing test leaves no
/// sluice running behind it.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A sluice process started by a test, its ports read from the file
/// `--ready-file` names (docs/testing.md, "Starting sluice from a script");
/// killed when dropped.
pub struct Spawned {
    pub child: KillOnDrop,
    pub api: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs `command` (the binary, or a wrapper that execs it; stdout and stderr
/// as the caller set them) with `SLUICE_READY_FILE` in its environment, and
/// waits at most 10 s for sluice to write the file. The command must bind
/// both ports (`--listen 127.0.0.1:0 --admin-listen 127.0.0.1:0`).
pub fn spawn_ready(mut command: std::process::Command) -> Spawned {
    let ready_dir = tempfile::tempdir().unwrap();
    let ready = ready_dir.path().join("ready.json");
    let mut child = KillOnDrop(command.env("SLUICE_READY_FILE", &ready).spawn().unwrap());
    let written = wait_ready(&mut child, &ready);
    let addr = |key: &str| -> SocketAddr {
        written[key].as_str().unwrap().strip_prefix("http://").unwrap().parse().unwrap()
    };
    assert_eq!(written["pid"], child.id(), "the ready file names the process");
    Spawned { api: addr("api"), admin: addr("admin"), child }
}

/// Waits at most 10 s for `child` to write its ready file at `ready`; its JSON.
pub fn wait_ready(child: &mut KillOnDrop, ready: &std::path::Path) -> serde_json::Value {
    let deadline = std::time::SystemTime::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(ready) {
            return serde_json::from_str(&text).unwrap();
        }
        let exited = child.try_wait().unwrap();
        assert!(exited.is_none(), "sluice exited ({exited:?}) before it was ready");
        assert!(std::time::SystemTime::now() < deadline, "sluice was not ready within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// No random faults, and a fixed seed: the same text and ids every run.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub const NO_ERRORS: &str = "error_rate = 0\nseed = 1\n";

/// Every delay zero (the knobs only; add `error_rate` as needed).
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub const NO_DELAYS: &str =
    "first_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntool_call_delay = \"0ms\"\n";

/// A proxy config: `knobs` at the top level, then `[upstream]` at `url`
/// with `upstream_extra`.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn proxy_config(url: &str, knobs: &str, upstream_extra: &str) -> String {
    format!("{knobs}\n[upstream]\nurl = \"{url}\"\n{upstream_extra}\n")
}

/// A streamed Messages request for a short text reply.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn text_request() -> serde_json::Value {
    serde_json::json!({"model": "m", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
}

/// An admin call's status and JSON body.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub async fn admin_json(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let received = send(admin, admin_request(method, path, body)).await;
    (received.status.as_u16(), received.json())
}
