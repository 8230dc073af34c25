//! Internals timed on their own, outside the server, for the bench
//! (`examples/limiter_cost.rs`), or lent to its anchors
//! (`examples/paced_hyper.rs`). Not part of the API.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::header::HeaderValue;
use tokio::time::Instant;

use crate::config::{LimitKey, RateLimits};
use crate::dialect::Dialect;
use crate::ratelimit::{Charge, ClientKey, Decision, Limiter, SetId, Settlement, headers};
use crate::shape::timer::Gate;

/// What every request of a limited profile pays at admission: the client
/// key's hash, the charge to its buckets (requests, input and output
/// tokens), the Anthropic headers of their levels, and the settlement at
/// the end. `requests` admissions on each of `threads` threads, spread over
/// `keys` API keys; returns the wall time of the whole run.
pub fn rate_limit_admissions(keys: usize, requests: usize, threads: usize) -> Duration {
    let limits = RateLimits {
        requests_per_minute: Some(1_000_000_000),
        input_tokens_per_minute: Some(1_000_000_000),
        output_tokens_per_minute: Some(1_000_000_000),
        ..RateLimits::default()
    };
    let requests_by_key: Arc<Vec<HeaderMap>> = Arc::new(
        (0..keys.max(1))
            .map(|k| {
                let mut map = HeaderMap::new();
                if let Ok(key) = HeaderValue::from_str(&format!("sk-load-{k}")) {
                    map.insert("x-api-key", key);
                }
                map
            })
            .collect(),
    );
    let limiter = Arc::new(Limiter::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|thread| {
            let limiter = Arc::clone(&limiter);
            let requests_by_key = Arc::clone(&requests_by_key);
            std::thread::spawn(move || {
                let mut admitted = 0usize;
                for i in 0..requests {
                    let head = &requests_by_key[(i * 7919 + thread) % requests_by_key.len()];
                    let client = ClientKey::of(head, None);
                    let id = SetId::new(LimitKey::ApiKey, "default", Some(&client), None);
                    let charge = Charge { input_tokens: 20, output_tokens: 4096 };
                    let decision = limiter.admit(&limits, id, "default", charge, Instant::now());
                    if let Decision::Admitted(levels) = decision {
                        let out = headers::headers(Dialect::Anthropic, &levels, SystemTime::now());
                        admitted += out.len();
                        let mut settlement = Settlement::new(
                            Arc::clone(&limiter) as Arc<dyn crate::ratelimit::Settle>,
                            limits,
                            id,
                            charge.output_tokens,
                        );
                        settlement.produced(50);
                    }
                }
                admitted
            })
        })
        .collect();
    let mut answered = 0;
    for worker in workers {
        answered += worker.join().unwrap_or(0);
    }
    std::hint::black_box(answered);
    started.elapsed()
}

/// The wait sluice's shaper puts before a paced record: a gate on the
/// thread's [`crate::shape::PreciseTimer`] (installed with
/// `install_on_this_thread`), else on tokio's timer. Lent to the bench's
/// hyper-alone paced anchor, so that it waits exactly as sluice does.
#[derive(Debug)]
pub struct PacedGate(Gate);

impl PacedGate {
    /// A gate open from `at`.
    #[must_use]
    pub fn new(at: Instant) -> Self {
        Self(Gate::new(at))
    }

    /// Moves the gate to `at`.
    pub fn reset(&mut self, at: Instant) {
        self.0.reset(at);
    }

    /// Ready once the gate's instant has come.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll(cx)
    }
}
