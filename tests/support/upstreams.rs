//! Fake upstreams for proxy tests, each named for how it behaves. All listen
//! on 127.0.0.1, port 0, and run on the calling runtime, so paused-clock tests
//! see their sleeps too.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "fixtures panic on setup failure")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A running fake: its address, how many requests it got, and (for those
/// that stall) a signal when a client connection closed.
pub struct Fake {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub closed: mpsc::UnboundedReceiver<()>,
}

impl Fake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

type Chunks = Vec<(Duration, Bytes)>;

/// Serves every request with `head` headers, then `chunks`, each after its
/// delay (measured from the previous chunk), then ends the body.
async fn serve(
    content_type: &'static str,
    status: u16,
    chunks: Chunks,
    head_delay: Duration,
) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let (closed_tx, closed) = mpsc::unbounded_channel();
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let chunks = chunks.clone();
            let counter = Arc::clone(&counter);
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let chunks = chunks.clone();
                    async move {
                        tokio::time::sleep(head_delay).await;
                        let frames = stream::iter(chunks).then(|(delay, bytes)| async move {
                            tokio::time::sleep(delay).await;
                            Ok::<_, Infallible>(Frame::data(bytes))
                        });
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", content_type)
                            .header("x-upstream-header", "kept")
                            // As the real API sends them on every response.
                            .header("anthropic-ratelimit-requests-limit", "4000")
                            .header("anthropic-ratelimit-tokens-limit", "400000")
                            .header("keep-alive", "timeout=5")
                            .body(StreamBody::new(frames))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                let _ = closed_tx.send(());
            });
        }
    });
    Fake { addr, requests, closed }
}

/// SSE: each record `gap` after the previous one, then the end.
pub async fn steady_sse_upstream(records: &[&str], gap: Duration) -> Fake {
    let chunks = records.iter().map(|r| (gap, Bytes::from(r.to_string()))).collect();
    serve("text/event-stream", 200, chunks, Duration::ZERO).await
}

/// SSE given as (delay since the previous chunk, bytes): any chunking.
pub async fn scripted_sse_upstream(chunks: Vec<(Duration, Vec<u8>)>) -> Fake {
    let chunks = chunks.into_iter().map(|(d, b)| (d, Bytes::from(b))).collect();
    serve("text/event-stream; charset=utf-8", 200, chunks, Duration::ZERO).await
}

/// SSE sent one byte per chunk.
pub async fn byte_per_chunk_upstream(stream: &[u8]) -> Fake {
    let chunks = stream.iter().map(|b| (Duration::ZERO, Bytes::from(vec![*b]))).collect();
    serve("text/event-stream", 200, chunks, Duration::ZERO).await
}

/// A streamed JSON array (Gemini without `alt=sse`), `size` bytes a chunk.
pub async fn json_array_upstream(stream: &[u8], size: usize) -> Fake {
    let chunks = stream.chunks(size).map(|c| (Duration::ZERO, Bytes::copy_from_slice(c))).collect();
    serve("application/json; charset=UTF-8", 200, chunks, Duration::ZERO).await
}

/// An AWS event stream (Bedrock), `size` bytes a chunk, cut anywhere in
/// its frames.
pub async fn event_stream_upstream(stream: &[u8], size: usize) -> Fake {
    let chunks = stream.chunks(size).map(|c| (Duration::ZERO, Bytes::copy_from_slice(c))).collect();
    serve("application/vnd.amazon.eventstream", 200, chunks, Duration::ZERO).await
}

/// Sends `first` records, then stalls forever with the connection open;
/// `closed` fires when the proxy closes the connection.
pub async fn stalling_upstream(first: &[&str]) -> Fake {
    let mut chunks: Chunks =
        first.iter().map(|r| (Duration::ZERO, Bytes::from(r.to_string()))).collect();
    chunks.push((Duration::from_secs(1_000_000), Bytes::new()));
    serve("text/event-stream", 200, chunks, Duration::ZERO).await
}

/// Waits `delay` before sending its head, then an empty SSE body.
pub async fn slow_head_upstream(delay: Duration) -> Fake {
    serve("text/event-stream", 200, Vec::new(), delay).await
}

/// A non-SSE response with this status and body.
pub async fn json_upstream(status: u16, body: &'static str) -> Fake {
    serve(
        "application/json",
        status,
        vec![(Duration::ZERO, Bytes::from_static(body.as_bytes()))],
        Duration::ZERO,
    )
    .await
}

/// Answers with a JSON object describing the request it got: method, path
/// and query, headers, and body.
pub async fn echo_upstream() -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = service_fn(|request: Request<Incoming>| async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let headers: serde_json::Map<String, serde_json::Value> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().into()))
                    .collect();
                let echo = serde_json::json!({
                    "method": parts.method.as_str(),
                    "uri": parts.uri.to_string(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                });
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(echo.to_string()))))
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
        }
    });
    Fake { addr, requests: Arc::new(AtomicUsize::new(0)), closed: mpsc::unbounded_channel().1 }
}

/// An SSE upstream that compresses as real servers do: a request that accepts
/// gzip gets the whole stream gzipped, once it has ended (`records` one
/// `gap` apart); any other gets the records as they come.
pub async fn compressing_sse_upstream(records: &'static [&'static str], gap: Duration) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            let service = service_fn(move |request: Request<Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                let gzip = request
                    .headers()
                    .get("accept-encoding")
                    .is_some_and(|v| v.to_str().unwrap().contains("gzip"));
                async move {
                    let response = Response::builder().header("content-type", "text/event-stream");
                    if gzip {
                        tokio::time::sleep(gap * u32::try_from(records.len()).unwrap()).await;
                        let mut encoder = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        std::io::Write::write_all(&mut encoder, records.concat().as_bytes())
                            .unwrap();
                        let body = Full::new(Bytes::from(encoder.finish().unwrap()))
                            .map_err(|never| match never {})
                            .boxed();
                        return Ok::<_, Infallible>(
                            response.header("content-encoding", "gzip").body(body).unwrap(),
                        );
                    }
                    let frames = stream::iter(records.iter()).then(move |record| async move {
                        tokio::time::sleep(gap).await;
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(record.as_bytes())))
                    });
                    Ok(response.body(BodyExt::boxed(StreamBody::new(frames))).unwrap())
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
        }
    });
    Fake { addr, requests, closed: mpsc::unbounded_channel().1 }
}

/// Accepts connections, reads (the start of) each request, then hands the
/// raw socket to `answer`: for upstreams that misbehave below HTTP.
async fn raw_upstream<F, Fut>(answer: F) -> Fake
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut request).await;
                answer(tcp).await;
            });
        }
    });
    Fake { addr, requests: Arc::new(AtomicUsize::new(0)), closed: mpsc::unbounded_channel().1 }
}

/// Sends an SSE head and `prefix` as one chunk, then resets the connection
/// (TCP RST: linger 0), mid-body.
pub async fn resetting_upstream(prefix: &'static str) -> Fake {
    raw_upstream(move |mut tcp| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{prefix}\r\n", prefix.len());
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(chunk.as_bytes()).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    })
    .await
}

/// Answers every request with `101 Switching Protocols` and its upgrade headers.
pub async fn upgrading_upstream() -> Fake {
    raw_upstream(|mut tcp| async move {
        let head =
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
        let _ = tcp.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
}

/// A port with nothing listening on it.
pub async fn refused_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
