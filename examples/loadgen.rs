//! Load generator for sluice's benchmarks (`scripts/bench.sh`); not a user
//! feature. Holds N concurrent streaming requests against a URL for a bounded
//! time on one thread (the other core is the target's), parses each SSE
//! stream, and reports percentiles of time to head, to first token, every
//! gap between tokens, the tool-call start, total time, and how streams
//! ended; plus the error against the configured figures, throughput, and the
//! CPU time and peak RSS of the target (from /proc) and of itself, how busy
//! the whole machine was (softirq included: loopback TCP's receive work is
//! charged to no process), and, given `--metrics`, how late sluice itself
//! released tokens.
//!
//!   cargo run --release --example loadgen -- --url http://127.0.0.1:3456 \
//!       --concurrency 2000 --duration 10s --expect-first-token 100ms --expect-gap 20ms --pid <sluice pid>
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool; it panics on setup failure"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of the target, e.g. http://127.0.0.1:3456.
    #[arg(long)]
    url: String,
    /// Concurrent streams held open (each a keep-alive connection looping requests).
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// How long to send; streams in flight then finish.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Connections are opened over this long, evenly, so they do not all start at once.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    /// Ask for a tool call (the request carries a tool).
    #[arg(long)]
    tools: bool,
    /// Which API to ask: `anthropic` (`POST /v1/messages`), `openai`
    /// (`POST /v1/chat/completions`), `gemini`
    /// (`POST /v1beta/models/bench:streamGenerateContent?alt=sse`) or `bedrock`
    /// (`POST /model/bench/converse-stream`).
    #[arg(long, value_enum, default_value_t = Api::Anthropic)]
    api: Api,
    /// Distinct API keys to spread the requests over (`sk-load-0`, ...), as
    /// that many clients would: 1 sends every request with the same key.
    #[arg(long, default_value_t = 1)]
    keys: usize,
    /// Configured first-token delay, to report actual − configured.
    #[arg(long, value_parser = humantime::parse_duration)]
    expect_first_token: Option<Duration>,
    /// Configured token interval.
    #[arg(long, value_parser = humantime::parse_duration)]
    expect_gap: Option<Duration>,
    /// Configured first-token + tool-call delay.
    #[arg(long, value_parser = humantime::parse_duration)]
    expect_tool: Option<Duration>,
    /// Target process(es) whose CPU time and peak RSS to read from /proc.
    #[arg(long)]
    pid: Vec<u32>,
    /// A name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// Write the JSON report here too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// sluice's admin URL: its `sluice_release_lateness_seconds` histogram is
    /// read before and after the run, so the report shows how late sluice
    /// itself released tokens, apart from the loadgen's and the kernel's share.
    #[arg(long)]
    metrics: Option<String>,
    /// Instead of load: open `concurrency` streams, wait until each has its
    /// first token, and report the target's memory per open stream. Point it
    /// at a sluice whose streams stall (an idle stream holds its memory).
    #[arg(long)]
    idle: bool,
    /// Share of streams the client abandons on purpose, at a random moment in
    /// their first 300 ms (before or after the head), as impatient users do
    /// (`scripts/soak.sh`). Reported as `Left`.
    #[arg(long, default_value_t = 0.0)]
    leave_rate: f64,
    /// Speak TLS (HTTP/1.1 by ALPN) to an `https://` URL, trusting only this
    /// CA (verification on).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// With `--tls-ca`: speak HTTP/2 (ALPN h2), one connection per virtual
    /// user, its requests one after another, as the HTTP/1.1 users do. With
    /// `--idle`: HTTP/2 over plain TCP (h2c, prior knowledge), the streams
    /// `--streams-per-connection` to a connection.
    #[arg(long)]
    h2: bool,
    /// With `--idle`: how long to wait, once every stream has its first
    /// token, before reading the target's memory. sluice's allocator returns
    /// freed pages after 10 s, so a shorter wait still counts what opening
    /// the streams used and freed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    settle: Duration,
    /// With `--idle --h2`: how many of the streams share one connection.
    #[arg(long, default_value_t = 100)]
    streams_per_connection: usize,
    /// Instead of load: TLS handshakes back to back on `concurrency`
    /// connections (each closed after its handshake), `full` ones or
    /// `resumed` ones (session resumption), and sluice's CPU per handshake.
    #[arg(long, value_enum)]
    handshakes: Option<Handshakes>,
}

/// Which TLS handshakes `--handshakes` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Handshakes {
    /// A full handshake each time (resumption off).
    Full,
    /// Resumed from the session of an earlier one.
    Resumed,
}

/// The TLS client of `--tls-ca`, if any: set once in `main`.
static TLS: std::sync::OnceLock<Option<tokio_rustls::TlsConnector>> = std::sync::OnceLock::new();

/// A TLS client trusting only `ca`, offering HTTP/1.1; with session
/// resumption or without.
fn tls_connector(ca: &std::path::Path, resumption: bool) -> tokio_rustls::TlsConnector {
    tls_connector_for(ca, resumption, b"http/1.1")
}

/// A TLS client trusting only `ca`, offering `alpn`.
fn tls_connector_for(
    ca: &std::path::Path,
    resumption: bool,
    alpn: &[u8],
) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("--tls-ca must be a PEM file")
    {
        roots.add(cert.expect("--tls-ca must hold certificates")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A connection's bytes: plain TCP or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => std::pin::Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => std::pin::Pin::new(tls).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => std::pin::Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => std::pin::Pin::new(tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => std::pin::Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => std::pin::Pin::new(tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => std::pin::Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => std::pin::Pin::new(tls).poll_shutdown(cx),
        }
    }
}

/// The API the load speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Api {
    /// The Messages API.
    Anthropic,
    /// Chat Completions.
    Openai,
    /// Gemini's `streamGenerateContent`, in SSE.
    Gemini,
    /// Bedrock's `ConverseStream`, in AWS's binary event stream.
    Bedrock,
}

/// What an SSE event is, for the timing figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Token,
    ToolStart,
    Other,
}

impl Api {
    /// The streaming request, with a tool when `tools`, as it goes on the wire.
    fn request(self, max_tokens: u32, tools: bool, key: &str) -> Bytes {
        let messages = json!([{"role": "user", "content": "Benchmark request"}]);
        match self {
            Api::Anthropic => {
                let mut body = json!({"model": "bench", "max_tokens": max_tokens, "stream": true, "messages": messages});
                if tools {
                    body["tools"] = json!([{"name": "lookup", "input_schema": {"type": "object",
                        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query", "limit"]}}]);
                }
                request_bytes("/v1/messages", &body, key)
            }
            Api::Openai => {
                let mut body = json!({"model": "bench", "max_completion_tokens": max_tokens, "stream": true, "messages": messages});
                if tools {
                    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object",
                        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query", "limit"]}}}]);
                }
                request_bytes("/v1/chat/completions", &body, key)
            }
            Api::Gemini => {
                let mut body = json!({"contents": [{"role": "user", "parts": [{"text": "Benchmark request"}]}],
                    "generationConfig": {"maxOutputTokens": max_tokens}});
                if tools {
                    body["tools"] = json!([{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object",
                        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query", "limit"]}}]}]);
                }
                request_bytes("/v1beta/models/bench:streamGenerateContent?alt=sse", &body, key)
            }
            Api::Bedrock => {
                let mut body = json!({"messages": [{"role": "user", "content": [{"text": "Benchmark request"}]}],
                    "inferenceConfig": {"maxTokens": max_tokens}});
                if tools {
                    body["toolConfig"] = json!({"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object",
                        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query", "limit"]}}}}]});
                }
                request_bytes("/model/bench/converse-stream", &body, key)
            }
        }
    }

    /// The length of the first whole event in `pending`, and the bytes it
    /// takes with its separator: an SSE event to its blank line, or an
    /// event-stream frame by its prelude's length.
    fn next_event(self, pending: &[u8]) -> Option<(usize, usize)> {
        if self == Api::Bedrock {
            let total = u32::from_be_bytes(pending.get(..4)?.try_into().ok()?) as usize;
            return (total >= 16 && pending.len() >= total).then_some((total, total));
        }
        let separator = self.event_end();
        let end = memchr::memmem::find(pending, separator)?;
        Some((end, end + separator.len()))
    }

    /// What ends an SSE event: a blank line, which Google writes with CRLFs.
    fn event_end(self) -> &'static [u8] {
        match self {
            Api::Gemini => b"\r\n\r\n",
            Api::Anthropic | Api::Openai | Api::Bedrock => b"\n\n",
        }
    }

    /// What `event` (one SSE event, without its blank line) is.
    fn classify(self, event: &[u8]) -> Seen {
        let has = |needle: &[u8]| memchr::memmem::find(event, needle).is_some();
        match self {
            Api::Anthropic => {
                if event.starts_with(b"event: content_block_delta") {
                    Seen::Token
                } else if event.starts_with(b"event: content_block_start") && has(b"\"tool_use\"") {
                    Seen::ToolStart
                } else {
                    Seen::Other
                }
            }
            Api::Openai => {
                if has(b"\"tool_calls\":[{") && has(b"\"id\":\"call_") {
                    Seen::ToolStart
                } else if (has(b"\"delta\":{\"content\":\"") && !has(b"\"content\":\"\""))
                    || has(b"\"function\":{\"arguments\":\"")
                {
                    Seen::Token
                } else {
                    Seen::Other
                }
            }
            Api::Bedrock => {
                if has(b"contentBlockStart") {
                    Seen::ToolStart
                } else if has(b"contentBlockDelta") {
                    Seen::Token
                } else {
                    Seen::Other
                }
            }
            Api::Gemini => {
                if has(b"\"functionCall\"") {
                    Seen::ToolStart
                } else if has(b"\"text\":\"") && !has(b"\"text\":\"\"") && !has(b"\"thought\":true")
                {
                    Seen::Token
                } else {
                    Seen::Other
                }
            }
        }
    }

    /// Whether `event` is the stream's last: `message_stop`, `[DONE]`, or
    /// Gemini's chunk with `finishReason` (which may carry a token too).
    fn ends(self, event: &[u8]) -> bool {
        match self {
            Api::Anthropic => event.starts_with(b"event: message_stop"),
            Api::Openai => event.starts_with(b"data: [DONE]"),
            Api::Gemini => memchr::memmem::find(event, b"\"finishReason\"").is_some(),
            Api::Bedrock => memchr::memmem::find(event, b"messageStop").is_some(),
        }
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Complete,
    NoFinalEvent,
    HttpError,
    TransportError,
    Left,
}

#[derive(Debug, Default)]
struct Samples {
    head: Vec<u32>,
    first_token: Vec<u32>,
    gaps: Vec<u32>,
    tool: Vec<u32>,
    total: Vec<u32>,
    ends: BTreeMap<String, u64>,
    events: u64,
    streams: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// CPU nanoseconds of a process, all its threads: the first field of each
/// /proc/<pid>/task/<tid>/schedstat. (Threads that already exited are not
/// counted; sluice's worker threads live as long as it does.)
fn cpu_ns(pid: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total)
}

/// The machine's CPU time so far from /proc/stat, in ticks: (busy, softirq,
/// total). Busy counts everything but idle and iowait, including the
/// softirq time that loopback TCP spends, which no process is charged for.
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, fields.get(6).copied().unwrap_or(0), total)
}

/// User and system CPU time of a process so far, in clock ticks
/// (/proc/<pid>/stat, fields 14 and 15).
fn user_system_ticks(pid: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count from its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (the state): utime (field 14) is its 12th.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
    (field(11), field(12))
}

/// Peak resident memory in KiB (VmHWM) and current (VmRSS).
fn memory_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tls = args.tls_ca.as_deref().map(|ca| tls_connector(ca, true));
    let _ = TLS.set(tls);
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    if args.idle {
        return idle(&args).await;
    }
    if let Some(mode) = args.handshakes {
        return handshakes(&args, mode).await;
    }
    let addr = target(&args.url);
    let requests: Arc<Vec<Bytes>> = Arc::new(if args.keys <= 1 {
        vec![args.api.request(4096, args.tools, "bench")]
    } else {
        (0..args.keys)
            .map(|k| args.api.request(4096, args.tools, &format!("sk-load-{k}")))
            .collect()
    });
    let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
    let cpu_before: Vec<u64> = pids.iter().map(|p| cpu_ns(p).unwrap_or(0)).collect();
    let split_before: Vec<(u64, u64)> = pids.iter().map(|p| user_system_ticks(p)).collect();
    let own_before = cpu_ns("self").unwrap_or(0);
    let machine_before = machine_ticks();
    let lateness_before = match &args.metrics {
        Some(url) => lateness_buckets(url).await,
        None => Vec::new(),
    };
    let started = Instant::now();
    let stop_at = started + args.duration;
    let mut tasks = Vec::with_capacity(args.concurrency);
    let h2_connector = match (&args.tls_ca, args.h2) {
        (Some(ca), true) => Some(tls_connector_for(ca, true, b"h2")),
        (None, true) => {
            eprintln!("--h2 needs --tls-ca: sluice speaks HTTP/2 over TLS by ALPN");
            std::process::exit(2);
        }
        _ => None,
    };
    for i in 0..args.concurrency {
        let delay = args.ramp.mul_f64(i as f64 / args.concurrency.max(1) as f64);
        let requests = Arc::clone(&requests);
        let leave_rate = args.leave_rate;
        let api = args.api;
        let (first, step) = (i, args.concurrency.max(1));
        let h2 = h2_connector.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let requests = Requests { all: requests, next: first, step };
            match h2 {
                Some(connector) => user_h2(api, addr, requests, stop_at, connector).await,
                None => user(api, addr, requests, stop_at, leave_rate).await,
            }
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        let s = task.await.unwrap();
        all.head.extend(s.head);
        all.first_token.extend(s.first_token);
        all.gaps.extend(s.gaps);
        all.tool.extend(s.tool);
        all.total.extend(s.total);
        for (k, v) in s.ends {
            *all.ends.entry(k).or_default() += v;
        }
        all.events += s.events;
        all.streams += s.streams;
    }
    let wall = started.elapsed();
    let own_cpu = cpu_ns("self").unwrap_or(0).saturating_sub(own_before);
    let machine_after = machine_ticks();
    let machine = (
        machine_after.0.saturating_sub(machine_before.0),
        machine_after.1.saturating_sub(machine_before.1),
        machine_after.2.saturating_sub(machine_before.2).max(1),
    );
    let target_cpu: u64 =
        pids.iter().zip(&cpu_before).map(|(p, b)| cpu_ns(p).unwrap_or(0).saturating_sub(*b)).sum();
    let memory: Vec<(u64, u64)> = pids.iter().map(|p| memory_kib(p)).collect();
    let split = pids.iter().zip(&split_before).fold((0, 0), |(u, s), (p, before)| {
        let after = user_system_ticks(p);
        (u + after.0.saturating_sub(before.0), s + after.1.saturating_sub(before.1))
    });
    let lateness = match &args.metrics {
        Some(url) => bucket_percentiles(&lateness_buckets(url).await, &lateness_before),
        None => json!(null),
    };
    report(&args, all, Figures { wall, target_cpu, split, own_cpu, memory, lateness, machine });
}

/// Memory per idle open stream: RSS with `concurrency` streams open and idle,
/// minus RSS before, divided by the count.
/// `--handshakes`: connections opened, TLS handshakes made and closed,
/// back to back on `concurrency` tasks for `duration`.
async fn handshakes(args: &Args, mode: Handshakes) {
    let ca = args.tls_ca.as_deref().expect("--handshakes needs --tls-ca");
    let connector = tls_connector(ca, mode == Handshakes::Resumed);
    let addr = target(&args.url);
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    // One handshake first, so that every timed one can resume from it.
    let warm = TcpStream::connect(addr).await.unwrap();
    drop(connector.connect(name.clone(), warm).await.expect("the first handshake"));
    let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
    let cpu_before: Vec<u64> = pids.iter().map(|p| cpu_ns(p).unwrap_or(0)).collect();
    let started = Instant::now();
    let stop_at = started + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (connector, name) = (connector.clone(), name.clone());
            tokio::spawn(async move {
                let (mut done, mut resumed, mut failed) = (0u64, 0u64, 0u64);
                while Instant::now() < stop_at {
                    let Ok(tcp) = TcpStream::connect(addr).await else {
                        failed += 1;
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    match connector.connect(name.clone(), tcp).await {
                        Ok(mut tls) => {
                            done += 1;
                            let kind = tls.get_ref().1.handshake_kind();
                            resumed += u64::from(kind == Some(rustls::HandshakeKind::Resumed));
                            // Read to the server's close: TLS 1.3 session
                            // tickets come after the handshake.
                            let _ = tls.shutdown().await;
                            let mut rest = [0u8; 256];
                            let read = tls.read(&mut rest);
                            let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
                        }
                        Err(_) => failed += 1,
                    }
                }
                (done, resumed, failed)
            })
        })
        .collect();
    let (mut done, mut resumed, mut failed) = (0, 0, 0);
    for task in tasks {
        let (d, r, f) = task.await.unwrap();
        (done, resumed, failed) = (done + d, resumed + r, failed + f);
    }
    let secs = started.elapsed().as_secs_f64();
    let target_cpu: u64 =
        pids.iter().zip(&cpu_before).map(|(p, b)| cpu_ns(p).unwrap_or(0).saturating_sub(*b)).sum();
    let report = json!({
        "label": args.label,
        "mode": format!("{mode:?}").to_lowercase(),
        "concurrency": args.concurrency,
        "handshakes": done,
        "resumed": resumed,
        "failed": failed,
        "handshakes_per_s": done as f64 / secs,
        "target_cpu_cores": target_cpu as f64 / 1e9 / secs,
        "target_cpu_us_per_handshake": if done > 0 { target_cpu as f64 / 1e3 / done as f64 } else { 0.0 },
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    if let Some(path) = &args.json {
        std::fs::write(path, &text).unwrap();
    }
    println!("{text}");
}

async fn idle(args: &Args) {
    let addr = target(&args.url);
    let pid = args.pid.first().expect("--idle needs --pid").to_string();
    let request = args.api.request(64, false, "bench");
    let before = memory_kib(&pid).1;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.concurrency.max(1));
    let mut held = Vec::new();
    if args.h2 {
        // Connections of `streams_per_connection` streams each, h2c.
        let per = args.streams_per_connection.max(1);
        let mut left = args.concurrency;
        while left > 0 {
            let streams = left.min(per);
            left -= streams;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let io = hyper_util::rt::TokioIo::new(tcp);
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .max_concurrent_reset_streams(0)
                    .handshake(io)
                    .await
                    .unwrap();
            held.push(tokio::spawn(async move {
                let _ = connection.await;
            }));
            for _ in 0..streams {
                // `--ramp` spreads the streams' starts over that time.
                tokio::time::sleep(args.ramp.div_f64(args.concurrency.max(1) as f64)).await;
                let mut sender = sender.clone();
                let request = h2_request(&request);
                let ready_tx = ready_tx.clone();
                held.push(tokio::spawn(async move {
                    use http_body_util::BodyExt;
                    sender.ready().await.unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    let mut body = response.into_body();
                    // The first data frame holds the head's first token.
                    let _ = body.frame().await;
                    let _ = ready_tx.try_send(());
                    // Held open: the stream is idle from here.
                    while body.frame().await.is_some() {}
                }));
            }
        }
    }
    for _ in 0..if args.h2 { 0 } else { args.concurrency } {
        tokio::time::sleep(args.ramp.div_f64(args.concurrency.max(1) as f64)).await;
        let request = request.clone();
        let ready_tx = ready_tx.clone();
        held.push(tokio::spawn(async move {
            let mut wire = Wire::connect(addr).await.unwrap();
            wire.tcp.write_all(&request).await.unwrap();
            let (_status, framing, _) = wire.head().await.unwrap();
            // Head and first token: from here the stream is idle.
            let mut first = true;
            let _ = wire
                .body(framing, |_, _| {
                    if std::mem::take(&mut first) {
                        let _ = ready_tx.try_send(());
                    }
                })
                .await;
        }));
    }
    for _ in 0..args.concurrency {
        ready_rx.recv().await;
    }
    tokio::time::sleep(args.settle).await;
    let (peak, open) = memory_kib(&pid);
    let per_stream = (open.saturating_sub(before)) as f64 * 1024.0 / args.concurrency.max(1) as f64;
    let report = json!({"label": args.label, "open_streams": args.concurrency, "rss_before_kib": before,
        "rss_open_kib": open, "peak_rss_kib": peak, "bytes_per_idle_stream": per_stream});
    let text = serde_json::to_string_pretty(&report).unwrap();
    if let Some(path) = &args.json {
        std::fs::write(path, &text).unwrap();
    }
    println!("{text}");
    eprintln!(
        "{}: {} idle streams, {:.1} KiB each",
        args.label,
        args.concurrency,
        per_stream / 1024.0
    );
    for task in held {
        task.abort();
    }
}

fn target(url: &str) -> SocketAddr {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("--url must be http://IP:PORT")
}

/// The whole request, head and body, as it goes on the wire.
fn request_bytes(path: &str, body: &serde_json::Value, key: &str) -> Bytes {
    let body = body.to_string();
    Bytes::from(format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
         x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\nauthorization: Bearer {key}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// A minimal HTTP/1.1 client on a raw socket. One task per virtual user and
/// no connection task or channel, so the load generator spends as little of
/// the machine as it can, and an event is stamped when its bytes are read.
struct Wire {
    tcp: Io,
    buf: Vec<u8>,
    /// Unread bytes of `buf` start here.
    start: usize,
    /// When the last read returned.
    read_at: Instant,
    /// The last head carried `x-sluice-fault`.
    faulted: bool,
    /// The current exchange got its head.
    head_seen: bool,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

impl Wire {
    /// A connection to `addr`, over TLS when `--tls-ca` is given.
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        Self::connect_with(addr, TLS.get().and_then(Option::as_ref)).await
    }

    async fn connect_with(
        addr: SocketAddr,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tcp = match tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                Io::Tls(Box::new(tls.connect(name, tcp).await?))
            }
            None => Io::Plain(tcp),
        };
        Ok(Self {
            tcp,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            read_at: Instant::now(),
            faulted: false,
            head_seen: false,
        })
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more bytes; `Ok(false)` at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let read = self.tcp.read(&mut self.buf[len..]).await;
        self.read_at = Instant::now();
        let read = read.unwrap_or(0);
        self.buf.truncate(len + read);
        Ok(read > 0)
    }

    async fn fill_or_eof(&mut self) -> std::io::Result<()> {
        if self.fill().await? { Ok(()) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) }
    }

    /// Reads a response head: the status, how the body is delimited, and
    /// whether the server closes the connection after it.
    async fn head(&mut self) -> std::io::Result<(u16, Framing, bool)> {
        loop {
            if let Some(end) = memchr::memmem::find(self.pending(), b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending()[..end]).to_ascii_lowercase();
                self.start += end + 4;
                let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let header =
                    |name: &str| head.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
                let framing = if header("transfer-encoding:").is_some_and(|v| v.contains("chunked"))
                {
                    Framing::Chunked
                } else if let Some(length) = header("content-length:").and_then(|v| v.parse().ok())
                {
                    Framing::Length(length)
                } else {
                    Framing::UntilClose
                };
                let closes = header("connection:").is_some_and(|v| v.contains("close"));
                self.faulted = header("x-sluice-fault:").is_some();
                self.head_seen = true;
                return Ok((status, framing, closes));
            }
            self.fill_or_eof().await?;
        }
    }

    /// Hands the next `length` bytes to `data`, reading as needed.
    async fn exactly(
        &mut self,
        mut left: usize,
        data: &mut impl FnMut(&[u8], Instant),
    ) -> std::io::Result<()> {
        while left > 0 {
            if self.pending().is_empty() {
                self.fill_or_eof().await?;
            }
            let take = left.min(self.pending().len());
            data(&self.pending()[..take], self.read_at);
            self.start += take;
            left -= take;
        }
        Ok(())
    }

    /// Reads a body to its end, handing each piece of it to `data` with the
    /// time it was read.
    async fn body(
        &mut self,
        framing: Framing,
        mut data: impl FnMut(&[u8], Instant),
    ) -> std::io::Result<()> {
        match framing {
            Framing::Length(length) => self.exactly(length, &mut data).await?,
            Framing::UntilClose => loop {
                if !self.pending().is_empty() {
                    data(self.pending(), self.read_at);
                    self.start = self.buf.len();
                }
                if !self.fill().await? {
                    return Ok(());
                }
            },
            Framing::Chunked => loop {
                let line = loop {
                    if let Some(end) = memchr::memmem::find(self.pending(), b"\r\n") {
                        break end;
                    }
                    self.fill_or_eof().await?;
                };
                let size = std::str::from_utf8(&self.pending()[..line])
                    .ok()
                    .and_then(|s| {
                        usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok()
                    })
                    .ok_or(std::io::ErrorKind::InvalidData)?;
                self.start += line + 2;
                self.exactly(size, &mut data).await?;
                // The CRLF after the chunk (after the last chunk, no trailers).
                while self.pending().len() < 2 {
                    self.fill_or_eof().await?;
                }
                self.start += 2;
                if size == 0 {
                    return Ok(());
                }
            },
        }
        Ok(())
    }
}

/// A user's requests: it sends `all[next]`, then steps on by the number of
/// users, so together they spread the requests over every key.
struct Requests {
    all: Arc<Vec<Bytes>>,
    next: usize,
    step: usize,
}

impl Requests {
    fn next(&mut self) -> Bytes {
        let request = self.all[self.next % self.all.len()].clone();
        self.next = self.next.wrapping_add(self.step);
        request
    }
}

/// One virtual user: a keep-alive connection, requests back to back until `stop_at`.
async fn user(
    api: Api,
    addr: SocketAddr,
    mut requests: Requests,
    stop_at: Instant,
    leave_rate: f64,
) -> Samples {
    let mut samples = Samples::default();
    let mut wire: Option<Wire> = None;
    while Instant::now() < stop_at {
        let request = requests.next();
        let Some(w) = wire.as_mut() else {
            match Wire::connect(addr).await {
                Ok(w) => wire = Some(w),
                Err(_) => {
                    *samples.ends.entry("connect_error".into()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        };
        let sent = Instant::now();
        if leave_rate > 0.0 && rand::random::<f64>() < leave_rate {
            // An impatient client: asks, then hangs up at a random moment.
            let _ = w.tcp.write_all(&request).await;
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..300))).await;
            wire = None;
            samples.streams += 1;
            *samples.ends.entry(format!("{:?}", End::Left)).or_default() += 1;
            continue;
        }
        let mut faulted = false;
        let (end, closes) = match exchange(api, w, &request, sent, &mut samples, &mut faulted).await
        {
            Ok(ended) => ended,
            Err(error) => {
                if !faulted {
                    // Unexplained: say what happened, for the soak's report.
                    eprintln!(
                        "transport error without x-sluice-fault after {:?}: {error} (head received: {})",
                        sent.elapsed(),
                        w.head_seen
                    );
                }
                (End::TransportError, true)
            }
        };
        if closes {
            wire = None; // nginx closes a keep-alive connection after 1,000 requests
        }
        samples.total.push(micros(sent.elapsed()));
        samples.streams += 1;
        // A stream that ended badly with `x-sluice-fault` in its head is explained.
        let key = if faulted { format!("{end:?}+fault") } else { format!("{end:?}") };
        *samples.ends.entry(key).or_default() += 1;
    }
    samples
}

/// Sends one request and reads its response, timing every token
/// (content_block_delta) and the tool-call start.
async fn exchange(
    api: Api,
    wire: &mut Wire,
    request: &[u8],
    sent: Instant,
    samples: &mut Samples,
    faulted: &mut bool,
) -> std::io::Result<(End, bool)> {
    wire.head_seen = false;
    wire.tcp.write_all(request).await?;
    let (status, framing, closes) = wire.head().await?;
    *faulted = wire.faulted;
    samples.head.push(micros(wire.read_at - sent));
    if !(200..300).contains(&status) {
        wire.body(framing, |_, _| {}).await?;
        return Ok((End::HttpError, closes));
    }
    let mut timer = SseTimer::new(api, sent);
    wire.body(framing, |data, now| timer.feed(data, now, samples)).await?;
    Ok((timer.end(), closes))
}

/// Times a response's SSE events as their bytes arrive: the first token,
/// each gap, the tool call, and whether the final event came.
struct SseTimer {
    api: Api,
    sent: Instant,
    pending: Vec<u8>,
    last_token: Option<Instant>,
    complete: bool,
}

impl SseTimer {
    fn new(api: Api, sent: Instant) -> Self {
        Self { api, sent, pending: Vec::new(), last_token: None, complete: false }
    }

    /// `data` arrived at `now`.
    fn feed(&mut self, data: &[u8], now: Instant, samples: &mut Samples) {
        self.pending.extend_from_slice(data);
        let mut consumed = 0;
        while let Some((end, taken)) = self.api.next_event(&self.pending[consumed..]) {
            let event = &self.pending[consumed..consumed + end];
            samples.events += 1;
            match self.api.classify(event) {
                Seen::Token => {
                    match self.last_token {
                        None => samples.first_token.push(micros(now - self.sent)),
                        Some(previous) => samples.gaps.push(micros(now - previous)),
                    }
                    self.last_token = Some(now);
                }
                Seen::ToolStart => {
                    samples.tool.push(micros(now - self.sent));
                    self.last_token = Some(now);
                }
                Seen::Other => {}
            }
            self.complete |= self.api.ends(event);
            consumed += taken;
        }
        self.pending.drain(..consumed);
    }

    fn end(&self) -> End {
        if self.complete { End::Complete } else { End::NoFinalEvent }
    }
}

/// An HTTP/1.1 request as the loadgen writes it, made into an HTTP/2 one:
/// its method, path, headers (but `host` and `content-length`) and body.
fn h2_request(raw: &[u8]) -> hyper::Request<http_body_util::Full<Bytes>> {
    let split = memchr::memmem::find(raw, b"\r\n\r\n").expect("a request head");
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or("POST"), first.next().unwrap_or("/"));
    let mut request = hyper::Request::builder().method(method).uri(format!("https://sluice{path}"));
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name != "host" && name != "content-length" {
                request = request.header(name, value.trim());
            }
        }
    }
    request.body(http_body_util::Full::new(Bytes::copy_from_slice(&raw[split + 4..]))).unwrap()
}

/// One virtual user over HTTP/2 and TLS: one connection, its requests one
/// after another until `stop_at`.
async fn user_h2(
    api: Api,
    addr: SocketAddr,
    mut requests: Requests,
    stop_at: Instant,
    connector: tokio_rustls::TlsConnector,
) -> Samples {
    use http_body_util::BodyExt;
    let mut samples = Samples::default();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let connected = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = connector.connect(name, tcp).await?;
        let io = hyper_util::rt::TokioIo::new(tls);
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .map_err(std::io::Error::other)
    };
    let (mut sender, connection) = match connected.await {
        Ok(pair) => pair,
        Err(_) => {
            *samples.ends.entry("connect_error".into()).or_default() += 1;
            return samples;
        }
    };
    tokio::spawn(connection);
    while Instant::now() < stop_at {
        let request = h2_request(&requests.next());
        let sent = Instant::now();
        let end = match sender.send_request(request).await {
            Err(_) => End::TransportError,
            Ok(response) => {
                samples.head.push(micros(sent.elapsed()));
                let faulted = response.headers().contains_key("x-sluice-fault");
                let ok = response.status().is_success();
                let mut body = response.into_body();
                let mut timer = SseTimer::new(api, sent);
                let mut broke = false;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(frame) => {
                            if let Ok(data) = frame.into_data() {
                                timer.feed(&data, Instant::now(), &mut samples);
                            }
                        }
                        Err(_) => {
                            broke = true;
                            break;
                        }
                    }
                }
                let end = match (ok, broke) {
                    (false, _) => End::HttpError,
                    (true, true) => End::TransportError,
                    (true, false) => timer.end(),
                };
                if faulted {
                    *samples.ends.entry(format!("{end:?}+fault")).or_default() += 1;
                    samples.total.push(micros(sent.elapsed()));
                    samples.streams += 1;
                    continue;
                }
                end
            }
        };
        samples.total.push(micros(sent.elapsed()));
        samples.streams += 1;
        *samples.ends.entry(format!("{end:?}")).or_default() += 1;
    }
    samples
}

fn percentiles(values: &mut [u32]) -> serde_json::Value {
    if values.is_empty() {
        return json!(null);
    }
    values.sort_unstable();
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    json!({"n": values.len(), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)})
}

/// Percentiles (ms) of `values` minus `expected`, so 0 is exact.
fn errors(values: &[u32], expected: Option<Duration>) -> serde_json::Value {
    let Some(expected) = expected else { return json!(null) };
    let expected = micros(expected) as i64;
    let mut diffs: Vec<i64> = values.iter().map(|v| *v as i64 - expected).collect();
    if diffs.is_empty() {
        return json!(null);
    }
    diffs.sort_unstable();
    let at = |p: f64| diffs[((diffs.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    json!({"min": at(0.0), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)})
}

/// `(upper bound in seconds, cumulative count)` of sluice's
/// `sluice_release_lateness_seconds` histogram, read from its admin URL.
async fn lateness_buckets(url: &str) -> Vec<(f64, u64)> {
    let mut wire =
        Wire::connect_with(target(url), None).await.expect("--metrics must be sluice's admin URL");
    wire.tcp
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, framing, _) = wire.head().await.unwrap();
    let mut text = Vec::new();
    wire.body(framing, |data, _| text.extend_from_slice(data)).await.unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| line.strip_prefix("sluice_release_lateness_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// Percentiles (ms) of the tokens released during the run, as bucket upper
/// bounds: "p99 0.5" means 99 % were released at most 0.5 ms late.
fn bucket_percentiles(after: &[(f64, u64)], before: &[(f64, u64)]) -> serde_json::Value {
    let counts: Vec<(f64, u64)> = after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before.iter().find(|b| b.0 == bound).map_or(0, |b| b.1);
            (bound, count.saturating_sub(earlier))
        })
        .collect();
    let Some(&(_, total)) = counts.last() else { return json!(null) };
    if total == 0 {
        return json!(null);
    }
    let at = |p: f64| {
        let wanted = (total as f64 * p).ceil() as u64;
        counts.iter().find(|c| c.1 >= wanted).map(|c| c.0 * 1000.0)
    };
    json!({"n": total, "p50_at_most": at(0.5), "p90_at_most": at(0.9), "p99_at_most": at(0.99)})
}

/// What was measured around the run, besides the samples.
struct Figures {
    wall: Duration,
    /// CPU nanoseconds of the target process(es) and of the loadgen.
    target_cpu: u64,
    /// The target's user and system clock ticks.
    split: (u64, u64),
    own_cpu: u64,
    /// (peak, current) RSS KiB of each target process.
    memory: Vec<(u64, u64)>,
    lateness: serde_json::Value,
    /// /proc/stat ticks during the run: (busy, softirq, total).
    machine: (u64, u64, u64),
}

fn report(args: &Args, mut s: Samples, figures: Figures) {
    let Figures { wall, target_cpu, split, own_cpu, memory, lateness, machine } = figures;
    let secs = wall.as_secs_f64();
    let tokens = s.first_token.len() + s.gaps.len();
    let target_cores = target_cpu as f64 / 1e9 / secs;
    let own_cores = own_cpu as f64 / 1e9 / secs;
    let busy_percent = machine.0 as f64 * 100.0 / machine.2 as f64;
    let softirq_percent = machine.1 as f64 * 100.0 / machine.2 as f64;
    // Latency climbs steeply past this: threads wait for a core.
    let saturated = busy_percent > 85.0;
    let per_1k_events =
        if tokens > 0 { target_cores * 100.0 / (s.events as f64 / secs / 1000.0) } else { 0.0 };
    let report = json!({
        "label": args.label,
        "url": args.url,
        "concurrency": args.concurrency,
        "wall_s": secs,
        "streams": s.streams,
        "streams_per_s": s.streams as f64 / secs,
        "events_per_s": s.events as f64 / secs,
        "tokens_per_s": tokens as f64 / secs,
        "ends": s.ends,
        "ms": {
            "head": percentiles(&mut s.head),
            "first_token": percentiles(&mut s.first_token),
            "gap": percentiles(&mut s.gaps),
            "tool_start": percentiles(&mut s.tool),
            "total": percentiles(&mut s.total),
        },
        "error_ms": {
            "first_token": errors(&s.first_token, args.expect_first_token),
            "gap": errors(&s.gaps, args.expect_gap),
            "tool_start": errors(&s.tool, args.expect_tool),
        },
        "target": {
            "cpu_cores": target_cores,
            "cpu_percent_per_1k_events_per_s": per_1k_events,
            // Share of its CPU time in user space (the rest is the kernel's, on its behalf).
            "user_share": if split.0 + split.1 > 0 { split.0 as f64 / (split.0 + split.1) as f64 } else { 0.0 },
            "peak_rss_kib": memory.iter().map(|m| m.0).sum::<u64>(),
            "rss_kib": memory.iter().map(|m| m.1).sum::<u64>(),
        },
        "sluice_release_lateness_ms": lateness,
        "loadgen_cpu_cores": own_cores,
        "machine_busy_percent": busy_percent,
        "machine_softirq_percent": softirq_percent,
        "machine_saturated": saturated,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    if let Some(path) = &args.json {
        std::fs::write(path, &text).unwrap();
    }
    println!("{text}");
    eprintln!(
        "{}: {} streams ({:.0}/s), {:.0} events/s; first token p99 {} ms (error p99 {}); gap p99 {} ms (error p99 {}); \
         sluice's own release lateness p99 ≤ {} ms; \
         target {:.2} cores, {:.3} % of a core per 1k events/s, peak RSS {} KiB; loadgen {:.2} cores; \
         machine {:.0} % busy ({:.0} % softirq){}",
        args.label,
        s.streams,
        s.streams as f64 / secs,
        s.events as f64 / secs,
        report["ms"]["first_token"]["p99"],
        report["error_ms"]["first_token"]["p99"],
        report["ms"]["gap"]["p99"],
        report["error_ms"]["gap"]["p99"],
        report["sluice_release_lateness_ms"]["p99_at_most"],
        target_cores,
        per_1k_events,
        report["target"]["peak_rss_kib"],
        own_cores,
        busy_percent,
        softirq_percent,
        if saturated {
            " — MACHINE SATURATED (over 85 % busy): these figures measure the machine, not sluice"
        } else {
            ""
        },
    );
}
