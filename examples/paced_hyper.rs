//! The hyper floor for the paced mock bench (`scripts/bench.sh`); not a user
//! feature. It paces sluice's own response with nothing but the stack
//! sluice's mock is built on, so that the bench can say how much of sluice's
//! CPU per paced event is hyper, tokio and the timer, and how much is
//! sluice's own work (the shaper, the encoder, admission, metrics):
//! - one thread per worker, each a single-threaded tokio runtime with its own
//!   precise timer, and connections handed to the workers in turn, as
//!   sluice's shards are (docs/performance.md, "Connections on per-core
//!   shards");
//! - hyper's HTTP/1.1 server, set as sluice sets it (no `writev`);
//! - each request's body read whole; then the response, captured once from a
//!   running sluice mock and cut into the groups sluice releases together,
//!   released by sluice's timing rule (the head and first group at +100 ms,
//!   each further group 20 ms after the previous deadline) on sluice's own
//!   gate (`sluice::bench_hooks::PacedGate`), with `--timer tokio` on
//!   tokio's timer instead.
//!
//! It does what the floor (`examples/floor.rs`) does, on hyper and tokio.
//!
//!   cargo run --release --example paced_hyper -- --capture http://127.0.0.1:3456 --listen 127.0.0.1:0
//!
//! It prints `listening on http://ADDR` and serves until it is killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool; it panics on setup failure"
)]

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sluice::bench_hooks::PacedGate;
use tokio::time::Instant;

#[path = "common/capture.rs"]
mod common;
use common::{AnchorArgs, capture};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    anchor: AnchorArgs,
    /// Worker threads, each with its own runtime and timer.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Whose timer paces the groups.
    #[arg(long, value_enum, default_value_t = Timer::Precise)]
    timer: Timer,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Timer {
    /// sluice's precise timer, one per worker, as on sluice's shards.
    Precise,
    /// tokio's timer (1 ms ticks).
    Tokio,
}

const FIRST_TOKEN: Duration = Duration::from_millis(100);
const INTERVAL: Duration = Duration::from_millis(20);

/// The captured response: its headers and its due groups.
struct Reply {
    headers: Vec<(HeaderName, HeaderValue)>,
    groups: Vec<Bytes>,
}

/// The groups after the first, each released at its deadline.
struct PacedBody {
    reply: Arc<Reply>,
    next: usize,
    deadline: Instant,
    gate: PacedGate,
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let Some(group) = this.reply.groups.get(this.next).cloned() else {
            return Poll::Ready(None);
        };
        ready!(this.gate.poll(cx));
        this.next += 1;
        this.deadline += INTERVAL;
        this.gate.reset(this.deadline);
        Poll::Ready(Some(Ok(Frame::data(group))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.reply.groups.len()
    }
}

async fn respond(
    reply: Arc<Reply>,
    request: Request<Incoming>,
) -> Result<Response<PacedBody>, hyper::Error> {
    let arrived = Instant::now();
    request.into_body().collect().await?;
    // The head goes with the first group, as sluice holds it.
    let first = arrived + FIRST_TOKEN;
    let mut gate = PacedGate::new(first);
    std::future::poll_fn(|cx| gate.poll(cx)).await;
    gate.reset(first);
    let mut response =
        Response::new(PacedBody { reply: Arc::clone(&reply), next: 0, deadline: first, gate });
    for (name, value) in &reply.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    Ok(response)
}

/// Starts a worker thread: a single-threaded runtime with its own timer,
/// serving the connections handed to it.
fn worker(timer: Timer) -> tokio::runtime::Handle {
    let (ready, started) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            if let Timer::Precise = timer {
                sluice::shape::PreciseTimer::start().unwrap().install_on_this_thread();
            }
            ready.send(tokio::runtime::Handle::current()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    started.recv().unwrap()
}

async fn serve(tcp: std::net::TcpStream, reply: Arc<Reply>) {
    let tcp = tokio::net::TcpStream::from_std(tcp).unwrap();
    let service = service_fn(move |request| respond(Arc::clone(&reply), request));
    let _ = hyper::server::conn::http1::Builder::new()
        .writev(false)
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

/// The captured head's headers but those hyper writes itself.
fn headers(head: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            !matches!(name.as_str(), "transfer-encoding" | "content-length" | "date" | "connection")
        })
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            )
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let captured = capture(&args.anchor.capture);
    let reply = Arc::new(Reply {
        headers: headers(&captured.head),
        groups: captured.groups.into_iter().map(Bytes::from).collect(),
    });
    let listener = StdListener::bind(&args.anchor.listen).unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    // Connections are handed to the workers in turn, as sluice's listener
    // hands them to its shards, so each worker has its share.
    let workers: Vec<_> = (0..args.workers.max(1)).map(|_| worker(args.timer)).collect();
    for (tcp, turn) in listener.incoming().zip((0..workers.len()).cycle()) {
        let Ok(tcp) = tcp else { continue };
        tcp.set_nodelay(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        workers[turn].spawn(serve(tcp, Arc::clone(&reply)));
    }
}
