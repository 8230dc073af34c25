//! The hyper floor for the proxy bench (`scripts/bench.sh`); not a user
//! feature. A reverse proxy with nothing but the stack sluice's proxy is built
//! on, so that the bench can say how much of sluice's CPU per proxied event
//! is hyper and tokio, and how much is sluice:
//! - one thread per worker, each a single-threaded tokio runtime with its own
//!   upstream connection pool, as sluice's shards are
//!   (docs/performance.md, "Connections on per-core shards");
//! - hyper's HTTP/1.1 server (set as sluice sets it: no `writev`) and
//!   hyper-util's pooled client;
//! - each request sent on with its path, headers and body, and the upstream's
//!   response streamed back as it arrives; nothing read, parsed or counted.
//!
//!   cargo run --release --example bare_proxy -- --upstream http://127.0.0.1:3456 --listen 127.0.0.1:0
//!
//! It prints `listening on http://ADDR` and serves until it is killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool; it panics on setup failure"
)]

use std::net::TcpListener as StdListener;
use std::time::Duration;

use clap::Parser;
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

#[derive(Parser, Debug)]
struct Args {
    /// The upstream, e.g. http://127.0.0.1:3456.
    #[arg(long)]
    upstream: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Worker threads, each with its own runtime and pool.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

type Pool = Client<HttpConnector, Incoming>;

/// Sends `request` to `upstream` and returns its response, body unread. An
/// upstream failure closes the client's connection (hyper's answer to a
/// service error): the bench counts it as a failed stream.
async fn forward(
    pool: Pool,
    upstream: Uri,
    mut request: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut parts = upstream.into_parts();
    parts.path_and_query = Some(path.parse().unwrap());
    *request.uri_mut() = Uri::from_parts(parts).unwrap();
    request.headers_mut().remove(HOST);
    pool.request(request).await
}

fn worker(listener: StdListener, upstream: Uri) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool: Pool = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            tcp.set_nodelay(true).unwrap();
            let (pool, upstream) = (pool.clone(), upstream.clone());
            tokio::spawn(async move {
                let service =
                    service_fn(move |request| forward(pool.clone(), upstream.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .writev(false)
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

fn main() {
    let args = Args::parse();
    let upstream: Uri = args.upstream.parse().unwrap();
    let listener = StdListener::bind(&args.listen).unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    // Each worker accepts from the same socket, on its own runtime: a
    // connection stays on the thread that accepted it, as on sluice's shards.
    let workers: Vec<_> = (0..args.workers.max(1))
        .map(|_| {
            let (listener, upstream) = (listener.try_clone().unwrap(), upstream.clone());
            std::thread::spawn(move || worker(listener, upstream))
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}
