//! The floor pacer for the bench (`scripts/bench.sh`); not a user feature.
//! It does only the work a paced mock cannot avoid, so that sluice's CPU per
//! event can be reported as a ratio to what this machine allows:
//! - accept HTTP/1.1 keep-alive connections;
//! - read each request;
//! - write sluice's own response, captured once from a running sluice, at
//!   its scheduled instants.
//!
//! The schedule is the mock's: the head and the events up to the first token
//! at +100 ms, each further token 20 ms after the previous deadline (absolute
//! deadlines), and the events after a token go with it. Each due group goes
//! out in one write, with the same chunked encoding. Timer wake-ups are
//! batched by sluice's own rule: the timer fires at the earliest deadline
//! plus 0.5 µs per waiting stream, at most 250 µs.
//!
//! It uses one thread, one epoll and one timerfd, and nothing else: no tokio,
//! no hyper.
//!
//!   cargo run --release --example floor -- --capture http://127.0.0.1:3456 --listen 127.0.0.1:0
//!
//! `--capture` names a sluice mock (any timing), which is asked once for a
//! 50-token stream. The floor prints `listening on http://ADDR` and serves
//! until it is killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool; it panics on setup failure"
)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

#[path = "common/capture.rs"]
mod common;
use common::{AnchorArgs, Captured, capture};

use clap::Parser;
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use rustix::time::{
    ClockId, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, clock_gettime,
    timerfd_create, timerfd_settime,
};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    anchor: AnchorArgs,
}

const FIRST_TOKEN_NS: u64 = 100_000_000;
const INTERVAL_NS: u64 = 20_000_000;

/// sluice's response: its head and its due groups, each group already
/// chunk-encoded (the last with the body's end).
struct Reply {
    head: Vec<u8>,
    groups: Vec<Vec<u8>>,
}

fn chunked(captured: Captured) -> Reply {
    let count = captured.groups.len();
    let groups = captured
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let mut chunk = format!("{:x}\r\n", group.len()).into_bytes();
            chunk.extend_from_slice(&group);
            chunk.extend_from_slice(b"\r\n");
            if i + 1 == count {
                chunk.extend_from_slice(b"0\r\n\r\n");
            }
            chunk
        })
        .collect();
    Reply { head: captured.head, groups }
}

fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap()
}

struct Conn {
    stream: TcpStream,
    /// Tells this connection from an earlier one in the same slot.
    generation: u64,
    read: Vec<u8>,
    /// The next group to write, while a response is in flight.
    next: Option<usize>,
}

/// Whether `buf` holds a whole request (head and its content-length body).
fn whole_request(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

fn main() {
    let args = Args::parse();
    let reply = chunked(capture(&args.anchor.capture));
    let listener = TcpListener::bind(&args.anchor.listen).unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    const LISTENER: u64 = u64::MAX;
    const TIMER: u64 = u64::MAX - 1;
    epoll::add(&poll, &listener, epoll::EventData::new_u64(LISTENER), epoll::EventFlags::IN)
        .unwrap();
    let timer =
        timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)
            .unwrap();
    epoll::add(&poll, &timer, epoll::EventData::new_u64(TIMER), epoll::EventFlags::IN).unwrap();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // (deadline, slot, generation); a connection has at most one deadline.
    let mut due: BinaryHeap<Reverse<(u64, usize, u64)>> = BinaryHeap::new();
    let mut generation: u64 = 0;
    let mut armed: u64 = 0;
    let mut events = Vec::with_capacity(1024);
    let mut scratch = [0u8; 16 * 1024];
    loop {
        events.clear();
        epoll::wait(&poll, spare_capacity(&mut events), None).unwrap();
        for event in &events {
            match event.data.u64() {
                LISTENER => {
                    while let Ok((stream, _)) = listener.accept() {
                        stream.set_nonblocking(true).unwrap();
                        stream.set_nodelay(true).unwrap();
                        let id = free.pop().unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        epoll::add(
                            &poll,
                            &stream,
                            epoll::EventData::new_u64(id as u64),
                            epoll::EventFlags::IN,
                        )
                        .unwrap();
                        generation += 1;
                        conns[id] = Some(Conn { stream, generation, read: Vec::new(), next: None });
                    }
                }
                TIMER => {
                    let _ = rustix::io::read(&timer, &mut scratch[..8]);
                    armed = 0;
                    let now = now_ns();
                    while let Some(&Reverse((at, id, born))) = due.peek() {
                        if at > now {
                            break;
                        }
                        due.pop();
                        let Some(conn) = conns[id].as_mut().filter(|c| c.generation == born) else {
                            continue;
                        };
                        let Some(k) = conn.next else { continue };
                        let mut out = Vec::new();
                        if k == 0 {
                            out.extend_from_slice(&reply.head);
                        }
                        out.extend_from_slice(&reply.groups[k]);
                        // One write per due group; the reader keeps up.
                        if conn.stream.write_all(&out).is_err() {
                            conns[id] = None;
                            free.push(id);
                            continue;
                        }
                        if k + 1 < reply.groups.len() {
                            conn.next = Some(k + 1);
                            due.push(Reverse((at + INTERVAL_NS, id, born)));
                        } else {
                            conn.next = None;
                        }
                    }
                }
                id => {
                    let id = id as usize;
                    let Some(conn) = conns[id].as_mut() else { continue };
                    let mut closed = false;
                    loop {
                        match conn.stream.read(&mut scratch) {
                            Ok(0) => {
                                closed = true;
                                break;
                            }
                            Ok(n) => conn.read.extend_from_slice(&scratch[..n]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if closed {
                        conns[id] = None;
                        free.push(id);
                        continue;
                    }
                    if conn.next.is_none() && whole_request(&conn.read) {
                        conn.read.clear();
                        conn.next = Some(0);
                        due.push(Reverse((now_ns() + FIRST_TOKEN_NS, id, conn.generation)));
                    }
                }
            }
        }
        // Arm the timer: the earliest deadline, plus sluice's batching slack.
        if let Some(&Reverse((at, _, _))) = due.peek() {
            let slack = (due.len() as u64 * 500).min(250_000);
            let target = at + slack;
            if armed == 0 || target < armed {
                armed = target;
                let value = Timespec {
                    tv_sec: i64::try_from(target / 1_000_000_000).unwrap(),
                    tv_nsec: i64::try_from(target % 1_000_000_000).unwrap(),
                };
                let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
                timerfd_settime(
                    &timer,
                    TimerfdTimerFlags::ABSTIME,
                    &Itimerspec { it_interval: zero, it_value: value },
                )
                .unwrap();
            }
        }
    }
}
