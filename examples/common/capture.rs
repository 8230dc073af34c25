//! What the paced anchors of the bench (`examples/floor.rs`,
//! `examples/paced_hyper.rs`) send: sluice's own response, asked for once
//! from a running sluice mock, split into the groups the timing rule
//! releases together (the events up to the first token; then each token
//! with the events after it).

use std::io::{Read, Write};
use std::net::TcpStream;

/// Where an anchor gets its reply and where it serves it.
#[derive(clap::Args, Debug)]
pub struct AnchorArgs {
    /// A sluice mock to capture the response from, e.g. http://127.0.0.1:3456.
    #[arg(long)]
    pub capture: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

/// The request both anchors' responses answer: a 50-token stream.
const REQUEST: &str = "{\"model\":\"floor\",\"max_tokens\":1024,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

/// sluice's response: its head (without `connection:`, and without the
/// chunked body) and its events in due groups, each group's SSE bytes as
/// they are inside the chunked body.
pub struct Captured {
    pub head: Vec<u8>,
    pub groups: Vec<Vec<u8>>,
}

/// Asks the sluice mock at `url` (`http://HOST:PORT`) for one stream.
pub fn capture(url: &str) -> Captured {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-api-key: floor\r\nanthropic-version: 2023-06-01\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{REQUEST}",
        REQUEST.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // The capture asked to close; the anchors keep their connections alive, as sluice does.
    let head: Vec<u8> = String::from_utf8_lossy(&raw[..split])
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect::<String>()
        .into_bytes();
    // De-chunk the body.
    let mut body = Vec::new();
    let mut rest = &raw[split..];
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[line + 2..line + 2 + size]);
        rest = &rest[line + 2 + size + 2..];
    }
    // Events, grouped as the timing rule releases them.
    let text = String::from_utf8(body).unwrap();
    let mut groups: Vec<String> = Vec::new();
    let mut pending = String::new();
    for event in text.split_inclusive("\n\n") {
        let token = event.starts_with("event: content_block_delta");
        if token && groups.is_empty() {
            pending.push_str(event);
            groups.push(std::mem::take(&mut pending));
        } else if token {
            groups.push(event.to_string());
        } else if let Some(last) = groups.last_mut() {
            last.push_str(event);
        } else {
            pending.push_str(event);
        }
    }
    Captured { head, groups: groups.into_iter().map(String::into_bytes).collect() }
}
