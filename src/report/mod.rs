//! Runs and their reports (docs/report.md): what sluice did to an
//! application during a load test, and what the application did.
//!
//! A run is a named window (`POST /runs` from k6's `setup()`, `POST
//! /runs/{id}/end` from its `teardown()`); without one, the `process` run
//! spans sluice's life. Each request belongs to exactly one run: the one its
//! `x-sluice-run` header names, else the open run, else `process`. The
//! handler records into the request's [`Run`] at admission (the client, its
//! SDK, what it was told and what it did next), at its answer (the outcome,
//! the fault) and as its tokens go out (first token, gaps, sluice's own
//! lateness); the admin port renders the report as JSON ([`Run::report`])
//! or as a page (`html`).
//!
//! Everything is bounded (docs/reliability.md): at most [`MAX_RUNS`] runs
//! (the oldest ended one is dropped and counted), [`MAX_KEYS`] route, API
//! and phase rows a run, [`series::MAX_POINTS`] points of its time series
//! (buckets widen as a run grows), [`MAX_CLIENTS`] SDK versions,
//! [`MAX_EVENTS`] retry events and [`MAX_EXAMPLES`] examples a verdict.

pub(crate) mod histogram;
pub(crate) mod html;
pub(crate) mod merge;
pub(crate) mod series;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hyper::HeaderMap;
use serde_json::{Value, json};
use tokio::time::Instant;

use histogram::Histogram;
use series::Series;

/// Runs kept, the `process` run included.
pub(crate) const MAX_RUNS: usize = 32;
/// Route, API and phase rows a run keeps; the rest share one row.
pub(crate) const MAX_KEYS: usize = 256;
/// SDK name and version pairs a run counts; the rest count as `other`.
pub(crate) const MAX_CLIENTS: usize = 64;
/// Retry events a run keeps (the first ones; the rest are counted).
pub(crate) const MAX_EVENTS: usize = 1000;
/// Examples kept as evidence for each verdict.
pub(crate) const MAX_EXAMPLES: usize = 5;
/// Clients told to wait whose next request a run still waits for.
const MAX_PENDING: usize = 10_000;
/// Forms of SDK headers whose SDK a run remembers (the rest are read again).
const MAX_HEADER_FORMS: usize = 1024;

/// The headers an SDK is read from, hashed.
fn sdk_headers_hash(headers: &HeaderMap) -> u64 {
    use hyper::header::HeaderName;
    use std::hash::{Hash, Hasher};
    // Made once: a `&str` name is checked and lowercased on every lookup.
    static NAMES: [HeaderName; 4] = [
        hyper::header::USER_AGENT,
        HeaderName::from_static("x-stainless-lang"),
        HeaderName::from_static("x-stainless-package-version"),
        HeaderName::from_static("x-goog-api-client"),
    ];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in &NAMES {
        headers.get(name).map(hyper::header::HeaderValue::as_bytes).hash(&mut hasher);
    }
    hasher.finish()
}

/// A request within this long of its client's broken stream repeats it.
pub(crate) const REPEAT_WINDOW: Duration = Duration::from_secs(30);

/// Header naming the run a request belongs to.
pub(crate) const RUN_HEADER: &str = "x-sluice-run";

/// The id of the run that spans the process.
pub(crate) const PROCESS_RUN: &str = "process";

/// Every run, and which one is open.
#[derive(Debug)]
pub(crate) struct Runs {
    open: ArcSwap<Run>,
    kept: Mutex<VecDeque<Arc<Run>>>,
    dropped: AtomicU64,
    next: AtomicU64,
}

impl Default for Runs {
    fn default() -> Self {
        let process = Arc::new(Run::new(PROCESS_RUN.to_string(), None));
        Self {
            open: ArcSwap::new(Arc::clone(&process)),
            kept: Mutex::new(VecDeque::from([process])),
            dropped: AtomicU64::new(0),
            next: AtomicU64::new(1),
        }
    }
}

impl Runs {
    fn kept(&self) -> MutexGuard<'_, VecDeque<Arc<Run>>> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a run, which takes every request that names no other; the
    /// run open before it ends. The oldest ended run is dropped past
    /// [`MAX_RUNS`].
    pub(crate) fn start(&self, name: Option<String>) -> Arc<Run> {
        let id = format!("run-{}", self.next.fetch_add(1, Ordering::Relaxed));
        self.start_as(id, name)
    }

    /// The next id [`Runs::start`] would give, with `suffix` (a fleet's
    /// replica names the runs it starts alone so that they never take an id
    /// the fleet gives).
    pub(crate) fn local_id(&self, suffix: &str) -> String {
        format!("run-{}@{suffix}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Starts run `id` (a fleet's, told by the replica that started it), as
    /// [`Runs::start`]; the run itself when it is already kept.
    pub(crate) fn start_as(&self, id: String, name: Option<String>) -> Arc<Run> {
        let mut kept = self.kept();
        if let Some(run) = kept.iter().find(|run| run.id == id) {
            return Arc::clone(run);
        }
        let run = Arc::new(Run::new(id, name));
        let previous = self.open.swap(Arc::clone(&run));
        if previous.id != PROCESS_RUN {
            previous.end();
        }
        kept.push_back(Arc::clone(&run));
        while kept.len() > MAX_RUNS {
            // The process run and open runs stay; the oldest ended one goes.
            let Some(index) = kept.iter().position(|r| r.id != PROCESS_RUN && r.ended().is_some())
            else {
                break;
            };
            kept.remove(index);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        run
    }

    /// Ends run `id`; requests then go to the `process` run. `None` when
    /// there is no such run (or it is the `process` run, which never ends).
    pub(crate) fn end(&self, id: &str) -> Option<Arc<Run>> {
        let run = self.get(id).filter(|run| run.id != PROCESS_RUN)?;
        run.end();
        if self.open.load().id == run.id {
            let process = self.get(PROCESS_RUN)?;
            self.open.store(process);
        }
        Some(run)
    }

    /// Run `id`, if kept.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.kept().iter().find(|run| run.id == id).cloned()
    }

    /// The run a request with these headers belongs to: the one its
    /// `x-sluice-run` names (if kept and not ended), else the open one.
    pub(crate) fn for_request(&self, headers: &HeaderMap) -> Arc<Run> {
        let named = headers.get(RUN_HEADER).and_then(|v| v.to_str().ok());
        if let Some(run) = named.and_then(|id| self.get(id)).filter(|run| run.ended().is_none()) {
            return run;
        }
        self.open.load_full()
    }

    /// Every kept run, oldest first, and how many were dropped.
    pub(crate) fn list(&self) -> (Vec<Arc<Run>>, u64) {
        (self.kept().iter().cloned().collect(), self.dropped.load(Ordering::Relaxed))
    }
}

/// One run: its window and everything recorded in it.
#[derive(Debug)]
pub(crate) struct Run {
    id: String,
    name: Option<String>,
    started: Instant,
    started_wall: SystemTime,
    ended: Mutex<Option<(Instant, SystemTime)>>,
    in_flight: AtomicU32,
    /// Whether a stream was broken, so that clients are followed.
    repeats: std::sync::atomic::AtomicBool,
    first_token: Histogram,
    gap: Histogram,
    lateness: Histogram,
    stats: Mutex<Stats>,
}

/// A request's row: its route, API and timeline phase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    /// Its route (`none` when answered before routing).
    pub(crate) route: String,
    /// Its API (`Dialect::api_name`), `none` when answered before routing.
    pub(crate) api: &'static str,
    /// The `[timeline]` phase at its arrival.
    pub(crate) phase: Option<String>,
}

impl Key {
    /// The row of requests answered before routing.
    pub(crate) fn none() -> Self {
        Self { route: "none".to_string(), api: "none", phase: None }
    }
}

#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    outcomes: BTreeMap<&'static str, u64>,
    faults: BTreeMap<&'static str, u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Debug, Default)]
struct Stats {
    rows: BTreeMap<Key, Counts>,
    series: Series,
    clients: BTreeMap<(String, String), u64>,
    /// The SDK of each form of SDK headers seen, by their hash.
    sdk_by_headers: HashMap<u64, (String, String)>,
    /// Clients told to wait: when, with what status and wait, and the
    /// event's index in `retries`.
    pending: HashMap<String, usize>,
    retries: Vec<RetryEvent>,
    retries_dropped: u64,
    told: u64,
    verdicts: BTreeMap<&'static str, Verdict>,
    abandoned: u64,
    abandoned_after_tokens: [u64; 4],
    abandoned_after_time: [u64; 4],
    /// Clients whose stream sluice broke: when, how, and the request's size.
    broken: HashMap<String, (Duration, &'static str, u64)>,
    /// Requests asked again after a broken stream, by how it broke.
    repeated: BTreeMap<&'static str, u64>,
    repeated_examples: Vec<Value>,
}

#[derive(Debug, Clone)]
struct RetryEvent {
    client: String,
    told_at: Duration,
    status: u16,
    retry_after: Option<Duration>,
    next_at: Option<Duration>,
    verdict: Option<String>,
}

#[derive(Debug, Default)]
struct Verdict {
    count: u64,
    examples: Vec<Value>,
}

/// What a client did on arriving after it was told to wait, by kind
/// (`early_retry`, `immediate_retry`, `retry_storm`,
/// `ignored_should_retry`, `patient_retry`), with how early for an early one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Arrived {
    /// The kinds that hold.
    pub(crate) kinds: Vec<&'static str>,
    /// How long before its `retry-after` it came.
    pub(crate) early_by: Option<Duration>,
}

/// Counts a request in flight in its run until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Run>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Run {
    fn new(id: String, name: Option<String>) -> Self {
        Self {
            id,
            name,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            ended: Mutex::new(None),
            in_flight: AtomicU32::new(0),
            repeats: std::sync::atomic::AtomicBool::new(false),
            first_token: Histogram::default(),
            gap: Histogram::default(),
            lateness: Histogram::default(),
            stats: Mutex::new(Stats::default()),
        }
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When it ended, if it has.
    pub(crate) fn ended(&self) -> Option<(Instant, SystemTime)> {
        *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn end(&self) {
        let mut ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ended.get_or_insert((Instant::now(), SystemTime::now()));
    }

    fn offset(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.started)
    }

    /// A request arrived, from a client whose headers name its SDK; it is
    /// in flight until the guard drops.
    pub(crate) fn arrive(
        self: &Arc<Self>,
        headers: &HeaderMap,
        phase: Option<&str>,
        at: Instant,
    ) -> InFlight {
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        // The SDK headers' hash finds a client seen before without reading
        // them again or allocating its name.
        let seen = sdk_headers_hash(headers);
        let offset = self.offset(at);
        let mut guard = self.stats();
        let stats = &mut *guard;
        stats.series.arrive(offset, in_flight);
        stats.series.phase(offset, phase);
        // A client seen before: counted by reference, without copying its name.
        if let Some(sdk) = stats.sdk_by_headers.get(&seen) {
            match stats.clients.get_mut(sdk) {
                Some(count) => *count += 1,
                None => {
                    stats.clients.insert(sdk.clone(), 1);
                }
            }
        } else {
            let sdk = sdk_of(headers);
            let known = stats.clients.len() < MAX_CLIENTS || stats.clients.contains_key(&sdk);
            let sdk = if known { sdk } else { ("other".to_string(), String::new()) };
            if stats.sdk_by_headers.len() < MAX_HEADER_FORMS {
                stats.sdk_by_headers.insert(seen, sdk.clone());
            }
            *stats.clients.entry(sdk).or_default() += 1;
        }
        InFlight(Arc::clone(self))
    }

    /// A request was answered: its row, its outcome and what it got.
    pub(crate) fn answered(&self, key: Key, answered: &Answered, at: Instant) {
        let offset = self.offset(at);
        let mut stats = self.stats();
        stats.series.answered(offset, answered.outcome, answered.fault.is_some());
        let counts = row(&mut stats, key);
        counts.requests += 1;
        *counts.outcomes.entry(answered.outcome).or_default() += 1;
        if let Some(fault) = answered.fault {
            *counts.faults.entry(fault).or_default() += 1;
        }
        if let Some(limit) = answered.rate_limited {
            *counts.rate_limited.entry(limit).or_default() += 1;
        }
        counts.input_tokens = counts.input_tokens.saturating_add(answered.input_tokens);
        counts.output_tokens = counts.output_tokens.saturating_add(answered.output_tokens);
    }

    /// `client` was told to wait `retry_after` (or not to retry) with `status`.
    pub(crate) fn told(
        &self,
        client: String,
        at: Instant,
        status: u16,
        retry_after: Option<Duration>,
    ) {
        let told_at = self.offset(at);
        let mut stats = self.stats();
        stats.told += 1;
        if stats.retries.len() >= MAX_EVENTS {
            stats.retries_dropped += 1;
            return;
        }
        let index = stats.retries.len();
        stats.retries.push(RetryEvent {
            client: client.clone(),
            told_at,
            status,
            retry_after,
            next_at: None,
            verdict: None,
        });
        if stats.pending.len() < MAX_PENDING || stats.pending.contains_key(&client) {
            stats.pending.insert(client, index);
        }
    }

    /// `client`, told to wait before, arrived again: what it did.
    pub(crate) fn arrived(&self, client: &str, at: Instant, arrived: &Arrived) {
        let offset = self.offset(at);
        let mut stats = self.stats();
        if let Some(index) = stats.pending.remove(client)
            && let Some(event) = stats.retries.get_mut(index)
        {
            event.next_at = Some(offset);
            // No verdict: it was told no wait (a 529 without retry-after).
            event.verdict = Some(if arrived.kinds.is_empty() {
                "retried".to_string()
            } else {
                arrived.kinds.join(",")
            });
        }
        for kind in &arrived.kinds {
            let verdict = stats.verdicts.entry(kind).or_default();
            verdict.count += 1;
            if verdict.examples.len() < MAX_EXAMPLES {
                let mut example = json!({"client": client, "at_s": seconds(offset)});
                if let (true, Some(early)) = (*kind == "early_retry", arrived.early_by) {
                    example["early_by_ms"] = json!(millis(early));
                }
                verdict.examples.push(example);
            }
        }
    }

    /// Whether a stream of this run broke, so that each request's client
    /// must be known to tell a repeat.
    pub(crate) fn watching_repeats(&self) -> bool {
        self.repeats.load(Ordering::Relaxed)
    }

    /// sluice broke `client`'s stream with a fault of `kind`; the request
    /// was `size` input tokens (the estimate, 4 bytes a token).
    pub(crate) fn broke(&self, client: String, at: Instant, kind: &'static str, size: u64) {
        self.repeats.store(true, Ordering::Relaxed);
        let offset = self.offset(at);
        let mut stats = self.stats();
        if stats.broken.len() < MAX_PENDING || stats.broken.contains_key(&client) {
            stats.broken.insert(client, (offset, kind, size));
        }
    }

    /// `client` asked again with a request of `size`: a repeat if sluice
    /// broke its last stream within [`REPEAT_WINDOW`] and that request was
    /// the same size (the same prompt, as far as sluice can tell cheaply).
    pub(crate) fn asked_again(&self, client: &str, at: Instant, size: u64) {
        if !self.watching_repeats() {
            return;
        }
        let offset = self.offset(at);
        let mut stats = self.stats();
        let Some((broke_at, kind, broken_size)) = stats.broken.remove(client) else {
            return;
        };
        let after = offset.saturating_sub(broke_at);
        if after > REPEAT_WINDOW || size != broken_size {
            return;
        }
        *stats.repeated.entry(kind).or_default() += 1;
        if stats.repeated_examples.len() < MAX_EXAMPLES {
            let example = json!({"client": client, "at_s": seconds(offset), "fault": kind,
                                 "after_ms": millis(after)});
            stats.repeated_examples.push(example);
        }
    }

    /// A token went out: the first of its stream after `first` (from
    /// arrival), or `gap` after the one before; `late` past its schedule.
    pub(crate) fn token(&self, first: Option<Duration>, gap: Option<Duration>) {
        if let Some(first) = first {
            self.first_token.observe(first);
        }
        if let Some(gap) = gap {
            self.gap.observe(gap);
        }
    }

    /// A token went out `late` past its schedule.
    pub(crate) fn lateness(&self, late: Duration) {
        self.lateness.observe(late);
    }

    /// A client left its stream after `tokens` tokens, `after` its arrival.
    pub(crate) fn abandoned(&self, tokens: u32, after: Duration) {
        let mut stats = self.stats();
        stats.abandoned += 1;
        let by_tokens = match tokens {
            0 => 0,
            1..=10 => 1,
            11..=100 => 2,
            _ => 3,
        };
        stats.abandoned_after_tokens[by_tokens] += 1;
        let by_time = match after.as_secs() {
            0 => 0,
            1..=9 => 1,
            10..=59 => 2,
            _ => 3,
        };
        stats.abandoned_after_time[by_time] += 1;
    }

    /// The report, as of `now` (docs/report.md has the schema).
    pub(crate) fn report(&self, now: Instant, context: &Value) -> Value {
        let ended = self.ended();
        let until = ended.map_or(now, |(at, _)| at);
        let stats = self.stats();
        let mut totals = Counts::default();
        let rows: Vec<Value> = stats
            .rows
            .iter()
            .map(|(key, counts)| {
                totals.merge(counts);
                let mut row = counts.json();
                row["route"] = json!(key.route);
                row["api"] = json!(key.api);
                row["phase"] = json!(key.phase);
                row
            })
            .collect();
        let verdict = |kind: &str, rule: &str, what: &str| {
            let found = stats.verdicts.get(kind);
            let count = found.map_or(0, |v| v.count);
            json!({
                "rule": rule,
                "kind": kind,
                "pass": count == 0,
                "count": count,
                "says": what,
                "evidence": found.map_or(Vec::new(), |v| v.examples.clone()),
            })
        };
        let patient = stats.verdicts.get("patient_retry").map_or(0, |v| v.count);
        let lateness_p99 = self.lateness.quantile(0.99);
        json!({
            "schema": "sluice.run-report.v1",
            "run": {
                "id": self.id,
                "name": self.name,
                "started_at": humantime::format_rfc3339_millis(self.started_wall).to_string(),
                "ended_at": ended.map(|(_, wall)| humantime::format_rfc3339_millis(wall).to_string()),
                "duration_s": seconds(until.saturating_duration_since(self.started)),
                "in_flight": self.in_flight.load(Ordering::Relaxed),
            },
            "sluice": context,
            "totals": {
                "requests": totals.requests,
                "outcomes": totals.outcomes,
                "faults": totals.faults,
                "rate_limited": totals.rate_limited,
                "input_tokens": totals.input_tokens,
                "output_tokens": totals.output_tokens,
                "abandoned_streams": stats.abandoned,
            },
            "rows": rows,
            "timing": {
                "first_token_ms": self.first_token.summary(),
                "gap_ms": self.gap.summary(),
                "lateness_ms": self.lateness.summary(),
                "trustworthy": lateness_p99.is_none_or(|p99| p99 <= Duration::from_millis(2)),
            },
            "series": stats.series.json(),
            "clients": stats.clients.iter().map(|((sdk, version), requests)| {
                json!({"sdk": sdk, "version": version, "requests": requests})
            }).collect::<Vec<_>>(),
            "retries": {
                "told": stats.told,
                "patient": patient,
                "events": stats.retries.iter().map(RetryEvent::json).collect::<Vec<_>>(),
                "events_dropped": stats.retries_dropped,
            },
            "verdicts": [
                verdict("early_retry", "no_early_retries", "no request came before the retry-after it was given"),
                verdict("immediate_retry", "no_immediate_retries", "no request came within 50 ms of being told to wait"),
                verdict("retry_storm", "no_retry_storms", "no client sent more than 3 requests in one wait window"),
                verdict("ignored_should_retry", "honours_should_retry_false", "no request came within the window after x-should-retry: false"),
            ],
            "repeated_after_break": {
                "by_fault": stats.repeated,
                "evidence": stats.repeated_examples,
            },
            "abandoned": {
                "streams": stats.abandoned,
                "after_tokens": {
                    "0": stats.abandoned_after_tokens[0],
                    "1-10": stats.abandoned_after_tokens[1],
                    "11-100": stats.abandoned_after_tokens[2],
                    "101+": stats.abandoned_after_tokens[3],
                },
                "after_seconds": {
                    "<1": stats.abandoned_after_time[0],
                    "1-10": stats.abandoned_after_time[1],
                    "10-60": stats.abandoned_after_time[2],
                    "60+": stats.abandoned_after_time[3],
                },
            },
            "histograms": {
                "first_token": self.first_token.buckets_json(),
                "gap": self.gap.buckets_json(),
                "lateness": self.lateness.buckets_json(),
            },
        })
    }

    /// Its id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Its name.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A line for `GET /runs`.
    pub(crate) fn summary(&self) -> Value {
        let stats = self.stats();
        let requests: u64 = stats.rows.values().map(|c| c.requests).sum();
        json!({
            "id": self.id,
            "name": self.name,
            "started_at": humantime::format_rfc3339_millis(self.started_wall).to_string(),
            "ended_at": self.ended().map(|(_, wall)| humantime::format_rfc3339_millis(wall).to_string()),
            "requests": requests,
        })
    }
}

/// What a request's answer was, for its run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answered {
    /// `sluice_requests_total`'s outcome label.
    pub(crate) outcome: &'static str,
    /// The kind of fault it got, if one applied.
    pub(crate) fault: Option<&'static str>,
    /// The `[rate_limits]` limit that refused it.
    pub(crate) rate_limited: Option<&'static str>,
    /// Its input tokens (the estimate).
    pub(crate) input_tokens: u64,
    /// The output tokens its source produced, when known.
    pub(crate) output_tokens: u64,
}

impl Counts {
    fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        for (map, from) in [
            (&mut self.outcomes, &other.outcomes),
            (&mut self.faults, &other.faults),
            (&mut self.rate_limited, &other.rate_limited),
        ] {
            for (name, count) in from {
                *map.entry(name).or_default() += count;
            }
        }
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }

    fn json(&self) -> Value {
        json!({
            "requests": self.requests,
            "outcomes": self.outcomes,
            "faults": self.faults,
            "rate_limited": self.rate_limited,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        })
    }
}

impl RetryEvent {
    fn json(&self) -> Value {
        json!({
            "client": self.client,
            "told_at_s": seconds(self.told_at),
            "status": self.status,
            "retry_after_s": self.retry_after.map(seconds),
            "next_at_s": self.next_at.map(seconds),
            "verdict": self.verdict,
        })
    }
}

/// Seconds with millisecond precision.
pub(crate) fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Milliseconds with microsecond precision.
pub(crate) fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The row of `key`, or the shared overflow row past [`MAX_KEYS`].
fn row(stats: &mut Stats, key: Key) -> &mut Counts {
    let key = if stats.rows.len() < MAX_KEYS || stats.rows.contains_key(&key) {
        key
    } else {
        Key { route: "(other)".to_string(), api: "", phase: None }
    };
    stats.rows.entry(key).or_default()
}

/// The SDK and version a client's headers name: the Stainless SDKs'
/// `x-stainless-lang` and `x-stainless-package-version` (Anthropic,
/// OpenAI), Google's `x-goog-api-client`, AWS's `user-agent`
/// (`aws-sdk-js/3.x`, `Boto3/1.x`), else the `user-agent`'s first word.
pub(crate) fn sdk_of(headers: &HeaderMap) -> (String, String) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let clip = |text: &str| text.chars().take(64).collect::<String>();
    let agent = get("user-agent");
    let lang = get("x-stainless-lang");
    if !lang.is_empty() {
        let family = agent.split('/').next().unwrap_or("stainless");
        let version = get("x-stainless-package-version");
        return (clip(&format!("{family} ({lang})")), clip(version));
    }
    let google = get("x-goog-api-client");
    if let Some(word) = google.split_whitespace().find(|w| w.starts_with("google-genai-sdk/")) {
        let (name, version) = word.split_once('/').unwrap_or((word, ""));
        let lang = google.split_whitespace().next().unwrap_or("");
        return (clip(&format!("{name} ({lang})")), clip(version));
    }
    for prefix in ["aws-sdk-js/", "Boto3/", "botocore/"] {
        if let Some(word) = agent.split_whitespace().find(|w| w.starts_with(prefix)) {
            let (name, version) = word.split_once('/').unwrap_or((word, ""));
            return (clip(name), clip(version));
        }
    }
    // `Grafana k6/1.4.2 (...)`, `python-httpx/0.28.1`: the first product with a version.
    let mut words = agent.split_whitespace();
    let product = words.clone().find(|word| word.contains('/'));
    match product.and_then(|word| word.split_once('/')) {
        Some((name, version)) => (clip(name), clip(version)),
        None => match words.next() {
            Some(first) => (clip(first), String::new()),
            None => ("unknown".to_string(), String::new()),
        },
    }
}
