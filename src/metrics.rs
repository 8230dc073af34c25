//! Prometheus metrics (`prometheus-client`), rendered by `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sluice_requests_total` | counter | `route`, `mode` (mock/proxy), `outcome` |
//! | `sluice_faults_injected_total` | counter | `kind` |
//! | `sluice_first_token_delay_seconds` | histogram | time from arrival to the first token, as released |
//! | `sluice_time_to_first_text_seconds` | histogram | time from arrival to the first visible token (text or tool call, not thinking), as released |
//! | `sluice_token_gap_seconds` | histogram | gap between consecutive tokens, as released |
//! | `sluice_release_lateness_seconds` | histogram | how late each token was released against its schedule |
//! | `sluice_open_streams` | gauge | streaming responses in flight |
//! | `sluice_upstream_errors_total` | counter | `kind` (upstream-connect/-timeout/-request) |
//! | `sluice_passed_through_total` | counter | proxied streams whose plan had nothing to do after their first text, so that they pass on unread from there (counted when the upstream's head arrives; their later tokens are not in the token histograms) |
//! | `sluice_config_reloads_total` | counter | `result` (applied/unchanged/rejected) |
//! | `sluice_config_version` | gauge | number of the config in force |
//! | `sluice_tls_handshakes_total` | counter | `result` (ok/refused/timeout/not_tls) on a `[tls]` listener |
//! | `sluice_rate_limited_total` | counter | `limit` (requests/input_tokens/output_tokens/tokens): 429s of `[rate_limits]` |
//! | `sluice_client_discipline_total` | counter | `kind` (early_retry/immediate_retry/retry_storm/ignored_should_retry/patient_retry) |
//! | `sluice_client_early_retry_seconds` | histogram | how long before its `retry-after` an early retry came |
//! | `sluice_capacity_in_service` | gauge | `route`: requests in service under `[capacity]` |
//! | `sluice_capacity_queued` | gauge | `route`: requests waiting for a place in service |
//! | `sluice_capacity_queue_wait_seconds` | histogram | how long each request served under `[capacity]` waited for its place |
//! | `sluice_capacity_shed_total` | counter | `route`, `api`: requests shed by `[capacity]` |
//! | `sluice_timeline_phase` | gauge | `phase`: 1 for the `[timeline]` phase in force, 0 for those that were |
//! | `sluice_fleet_store_up` | gauge | 1 while `[fleet]`'s store answers, 0 while this replica goes on alone (only with `[fleet]`) |
//! | `sluice_fleet_fallbacks_total` | counter | `what` (rate_limits/schedules/capacity/heartbeat/...): store calls that failed, so the replica used its own state |

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of `sluice_release_lateness_seconds`: fine below a
/// millisecond, where an exact tool lives, coarse above.
const LATENESS_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A histogram of durations that records with atomic adds: up to three are
/// observed per token on every open stream, and prometheus-client's
/// `Histogram` takes one mutex, shared by all streams, per observation (a
/// tenth of the proxy's CPU per event).
///
/// Its counts are striped: each thread adds to a stripe of its own, on cache
/// lines no other stripe shares, and a scrape sums the stripes. With one set
/// of counts, every token's adds on one shard took the cache lines from the
/// other shard's core (docs/performance.md, "Metrics striped by thread").
#[derive(Debug, Clone)]
struct DurationHistogram(Arc<HistogramCells>);

/// The most upper bounds a [`DurationHistogram`] has (`+Inf` not counted).
const MAX_BOUNDS: usize = 17;

/// Stripes per histogram; threads past this many share them round-robin.
const STRIPES: usize = 8;

#[derive(Debug)]
struct HistogramCells {
    /// Upper bounds, in seconds and in nanoseconds (at most [`MAX_BOUNDS`]).
    bounds: Vec<f64>,
    bounds_ns: Vec<u64>,
    stripes: Box<[Stripe; STRIPES]>,
}

/// One thread's counts: one per bound, then one for +Inf, and the sum.
/// Aligned so that no two stripes share a cache line (128 bytes covers the
/// adjacent-line prefetch of x86 as well as 128-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    counts: [AtomicU64; MAX_BOUNDS + 1],
    sum_ns: AtomicU64,
}

/// The stripe this thread adds to, given out in turn on first use.
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

impl DurationHistogram {
    /// A histogram with these upper bounds, in seconds; bounds past
    /// [`MAX_BOUNDS`] are dropped (every caller passes fewer).
    fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> = bounds.into_iter().take(MAX_BOUNDS).collect();
        let bounds_ns =
            bounds.iter().map(|b| Duration::from_secs_f64(*b).as_nanos()).map(nanos).collect();
        let stripes = Box::new(std::array::from_fn(|_| Stripe::default()));
        Self(Arc::new(HistogramCells { bounds, bounds_ns, stripes }))
    }

    fn observe(&self, value: Duration) {
        let cells = &self.0;
        let ns = nanos(value.as_nanos());
        let bucket =
            cells.bounds_ns.iter().position(|&bound| ns <= bound).unwrap_or(cells.bounds_ns.len());
        let stripe = &cells.stripes[stripe_index()];
        if let Some(count) = stripe.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        stripe.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Each bucket's count (the last is `+Inf`) and the sum in nanoseconds,
    /// over every stripe.
    fn totals(&self) -> (Vec<u64>, u64) {
        let cells = &self.0;
        let mut counts = vec![0u64; cells.bounds.len() + 1];
        let mut sum_ns = 0u64;
        for stripe in cells.stripes.iter() {
            for (total, count) in counts.iter_mut().zip(&stripe.counts) {
                *total = total.saturating_add(count.load(Ordering::Relaxed));
            }
            sum_ns = sum_ns.wrapping_add(stripe.sum_ns.load(Ordering::Relaxed));
        }
        (counts, sum_ns)
    }
}

fn nanos(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (counts, sum_ns) = self.totals();
        let buckets: Vec<(f64, u64)> =
            self.0.bounds.iter().copied().chain([f64::INFINITY]).zip(counts).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(sum_ns).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    mode: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// Every metric sluice keeps.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    faults: Family<KindLabel, Counter>,
    first_token: DurationHistogram,
    first_text: DurationHistogram,
    token_gap: DurationHistogram,
    lateness: DurationHistogram,
    open_streams: Gauge,
    upstream_errors: Family<KindLabel, Counter>,
    passed_through: Counter,
    reloads: Family<ResultLabel, Counter>,
    config_version: Gauge,
    rate_limited: Family<LimitLabel, Counter>,
    tls_handshakes: Family<ResultLabel, Counter>,
    discipline: Family<KindLabel, Counter>,
    early_by: DurationHistogram,
    cassettes: Family<ResultLabel, Counter>,
    replays: Family<ResultLabel, Counter>,
    in_service: Family<RouteLabel, Gauge>,
    queued: Family<RouteLabel, Gauge>,
    queue_wait: DurationHistogram,
    shed: Family<ShedLabels, Counter>,
    phase: Family<PhaseLabel, Gauge>,
    fleet_up: Family<NoLabels, Gauge>,
    fleet_fallbacks: Family<WhatLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabel {
    what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    route: String,
    api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, mode and outcome",
            requests.clone(),
        );
        let faults = Family::<KindLabel, Counter>::default();
        registry.register("faults_injected", "Faults injected, by kind", faults.clone());
        // 1 ms to about 33 s, doubling.
        let first_token = DurationHistogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "first_token_delay",
            "Time from a request's arrival to its first token, as released to the client",
            Unit::Seconds,
            first_token.clone(),
        );
        // 1 ms to about 33 s, doubling: thinking can take many seconds.
        let first_text = DurationHistogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "time_to_first_text",
            "Time from a request's arrival to its first visible token (text or a tool call, \
             after any thinking), as released to the client",
            Unit::Seconds,
            first_text.clone(),
        );
        // 0.5 ms to about 8 s, doubling.
        let token_gap = DurationHistogram::new(exponential_buckets(0.0005, 2.0, 15));
        registry.register_with_unit(
            "token_gap",
            "Time between consecutive tokens, as released to the client",
            Unit::Seconds,
            token_gap.clone(),
        );
        let lateness = DurationHistogram::new(LATENESS_BUCKETS);
        registry.register_with_unit(
            "release_lateness",
            "How much later than its schedule each token was released (0 is exact); \
             a rising p99 means sluice or its machine is overloaded",
            Unit::Seconds,
            lateness.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "open_streams",
            "Requests in flight, from their admission to the end of their response (streamed or not)",
            open_streams.clone(),
        );
        let upstream_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream failures answered with 502/504, by kind",
            upstream_errors.clone(),
        );
        let passed_through = Counter::default();
        registry.register(
            "passed_through",
            "Proxied streams that pass on unread after their first text, their plan having \
             nothing left to do (counted when the upstream's head arrives; their later tokens are \
             not in the token histograms)",
            passed_through.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("config_reloads", "Config reloads, by result", reloads.clone());
        let config_version = Gauge::default();
        registry.register(
            "config_version",
            "Number of the config in force (1 at start)",
            config_version.clone(),
        );
        let rate_limited = Family::<LimitLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 by [rate_limits], by the limit that refused them",
            rate_limited.clone(),
        );
        let tls_handshakes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the API listener, by result: ok, refused (by rustls), timeout, not_tls (plain HTTP to the TLS port)",
            tls_handshakes.clone(),
        );
        let discipline = Family::<KindLabel, Counter>::default();
        registry.register(
            "client_discipline",
            "What clients did after being told to wait (retry-after) or not to retry, by kind",
            discipline.clone(),
        );
        // 1 ms to about 65 s, doubling.
        let early_by = DurationHistogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "client_early_retry",
            "How long before the retry-after it was given each early retry came",
            Unit::Seconds,
            early_by.clone(),
        );
        let cassettes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "cassettes_recorded",
            "Exchanges recorded by [record], by result: written, or dropped (queue_full: the disk \
             could not keep up; incomplete: the stream broke or the client left; too_large: past \
             a cassette's bounds or the recording budget; folder_full: the folder holds what \
             replay accepts; write_failed)",
            cassettes.clone(),
        );
        let replays = Family::<ResultLabel, Counter>::default();
        registry.register(
            "replays",
            "Requests [replay] looked up, by result: replayed, generated (no match, fallback), \
             not_found (no match, 404)",
            replays.clone(),
        );
        let in_service = Family::<RouteLabel, Gauge>::default();
        registry.register(
            "capacity_in_service",
            "Requests in service under [capacity], by route (per replica)",
            in_service.clone(),
        );
        let queued = Family::<RouteLabel, Gauge>::default();
        registry.register(
            "capacity_queued",
            "Requests waiting for a place in service under [capacity], by route (per replica)",
            queued.clone(),
        );
        // 1 ms to about 65 s, doubling; a request served at once counts in the first.
        let queue_wait = DurationHistogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "capacity_queue_wait",
            "How long each request served under [capacity] waited for its place in service",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let shed = Family::<ShedLabels, Counter>::default();
        registry.register(
            "capacity_shed",
            "Requests shed by [capacity] (its queue was full, or they waited queue_timeout), by \
             route and API",
            shed.clone(),
        );
        let phase = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "timeline_phase",
            "1 for the [timeline] phase in force (none before the first), 0 for those that were",
            phase.clone(),
        );
        // Families, so that neither shows without `[fleet]`.
        let fleet_up = Family::<NoLabels, Gauge>::default();
        registry.register(
            "fleet_store_up",
            "1 while the [fleet] store answers; 0 while this replica goes on with its own state",
            fleet_up.clone(),
        );
        let fleet_fallbacks = Family::<WhatLabel, Counter>::default();
        registry.register(
            "fleet_fallbacks",
            "Store calls that failed or timed out, so this replica used its own state, by what it was for",
            fleet_fallbacks.clone(),
        );
        Self {
            fleet_up,
            fleet_fallbacks,
            phase,
            in_service,
            queued,
            queue_wait,
            shed,
            registry,
            requests,
            faults,
            first_token,
            first_text,
            token_gap,
            lateness,
            open_streams,
            upstream_errors,
            passed_through,
            reloads,
            config_version,
            rate_limited,
            tls_handshakes,
            discipline,
            early_by,
            cassettes,
            replays,
        }
    }

    /// The gauges of `route`'s capacity pool.
    pub(crate) fn pool_gauges(&self, route: &str) -> crate::capacity::PoolGauges {
        let label = RouteLabel { route: route.to_string() };
        crate::capacity::PoolGauges {
            in_service: self.in_service.get_or_create(&label).clone(),
            queued: self.queued.get_or_create(&label).clone(),
        }
    }

    /// Records how long a request waited for its place in service.
    pub(crate) fn queue_wait(&self, waited: Duration) {
        self.queue_wait.observe(waited);
    }

    /// Whether the fleet's store answers.
    pub(crate) fn fleet_up(&self, up: bool) {
        self.fleet_up.get_or_create(&NoLabels {}).set(i64::from(up));
    }

    /// Counts a store call for `what` that failed.
    pub(crate) fn fleet_fallback(&self, what: &'static str) {
        self.fleet_fallbacks.get_or_create(&WhatLabel { what }).inc();
    }

    /// Counts a request shed by `route`'s capacity, in `api`.
    pub(crate) fn shed(&self, route: &str, api: &'static str) {
        self.shed.get_or_create(&ShedLabels { route: route.to_string(), api }).inc();
    }

    /// Marks `phase` as the timeline phase in force (`None`: no timeline),
    /// and `previous` as over.
    pub(crate) fn phase(&self, previous: Option<&str>, phase: Option<&str>) {
        if let Some(previous) = previous {
            self.phase.get_or_create(&PhaseLabel { phase: previous.to_string() }).set(0);
        }
        if let Some(phase) = phase {
            self.phase.get_or_create(&PhaseLabel { phase: phase.to_string() }).set(1);
        }
    }

    /// Counts a recorded exchange by what became of it.
    pub(crate) fn cassette(&self, result: &str) {
        self.cassettes.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }

    /// Counts a replay lookup by its result.
    pub(crate) fn replay(&self, result: &str) {
        self.replays.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }

    /// Counts a TLS handshake by its result.
    pub(crate) fn tls_handshake(&self, result: &str) {
        self.tls_handshakes.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }

    /// Counts a request refused by `limit`.
    pub(crate) fn rate_limited(&self, limit: &'static str) {
        self.rate_limited.get_or_create(&LimitLabel { limit }).inc();
    }

    /// Counts what a client did after being told to wait: `flags`.
    pub(crate) fn discipline(&self, flags: &crate::ratelimit::verdict::Flags) {
        for kind in flags.kinds() {
            self.discipline.get_or_create(&KindLabel { kind: kind.to_string() }).inc();
        }
        if let Some(by) = flags.early_by {
            self.early_by.observe(by);
        }
    }

    /// Counts an answered request.
    pub(crate) fn request(&self, route: &str, mode: &str, outcome: &str) {
        let labels = RequestLabels {
            route: route.to_string(),
            mode: mode.to_string(),
            outcome: outcome.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts an injected fault.
    pub(crate) fn fault(&self, kind: &str) {
        self.faults.get_or_create(&KindLabel { kind: kind.to_string() }).inc();
    }

    /// Records a first token's delay.
    pub(crate) fn first_token(&self, delay: Duration) {
        self.first_token.observe(delay);
    }

    /// Records the time to a stream's first visible token.
    pub(crate) fn first_text(&self, delay: Duration) {
        self.first_text.observe(delay);
    }

    /// Records a gap between tokens.
    pub(crate) fn token_gap(&self, gap: Duration) {
        self.token_gap.observe(gap);
    }

    /// Records how late a token was released against its schedule.
    pub(crate) fn release_lateness(&self, late: Duration) {
        self.lateness.observe(late);
    }

    /// Counts an open stream until the guard drops.
    pub(crate) fn stream_opened(&self) -> OpenStream {
        self.open_streams.inc();
        OpenStream(self.open_streams.clone())
    }

    /// Counts an upstream failure.
    pub(crate) fn upstream_error(&self, kind: &str) {
        self.upstream_errors.get_or_create(&KindLabel { kind: kind.to_string() }).inc();
    }

    /// Counts a proxied stream that passes through after its first text.
    pub(crate) fn passed_through(&self) {
        self.passed_through.inc();
    }

    /// Counts a reload and, when applied, the new version.
    pub(crate) fn reload(&self, result: &str, version: u64) {
        self.reloads.get_or_create(&ResultLabel { result: result.to_string() }).inc();
        self.set_version(version);
    }

    /// Sets the config version.
    pub(crate) fn set_version(&self, version: u64) {
        self.config_version.set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// The Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Decrements `sluice_open_streams` when dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(metrics: &Metrics, name: &str) -> Vec<String> {
        metrics.encode().lines().filter(|l| l.starts_with(name)).map(str::to_owned).collect()
    }

    #[test]
    fn a_lock_free_histogram_encodes_like_a_prometheus_one() {
        let metrics = Metrics::new();
        for micros in [50, 100, 101, 900, 3_000, 2_000_000] {
            metrics.release_lateness(Duration::from_micros(micros));
        }
        let bucket =
            |le: &str, n: u64| format!("sluice_release_lateness_seconds_bucket{{le=\"{le}\"}} {n}");
        let expected = vec![
            "sluice_release_lateness_seconds_sum 2.004151".to_string(),
            "sluice_release_lateness_seconds_count 6".to_string(),
            bucket("0.0001", 2), // 50 µs and exactly 100 µs
            bucket("0.00025", 3),
            bucket("0.0005", 3),
            bucket("0.001", 4),
            bucket("0.002", 4),
            bucket("0.005", 5),
            bucket("0.01", 5),
            bucket("0.025", 5),
            bucket("0.05", 5),
            bucket("0.1", 5),
            bucket("0.25", 5),
            bucket("1.0", 5),
            bucket("+Inf", 6),
        ];
        assert_eq!(lines(&metrics, "sluice_release_lateness_seconds_"), expected);
    }

    #[test]
    fn observations_from_many_threads_are_summed_over_the_stripes() {
        let metrics = Arc::new(Metrics::new());
        // Twice as many threads as stripes, so that some share one.
        let threads: Vec<_> = (0..2 * STRIPES)
            .map(|i| {
                let metrics = Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        metrics.release_lateness(Duration::from_micros(if i % 2 == 0 {
                            50
                        } else {
                            3_000
                        }));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("an observing thread panicked");
        }
        let lines = lines(&metrics, "sluice_release_lateness_seconds_");
        assert!(
            lines.contains(&"sluice_release_lateness_seconds_count 1600".to_string()),
            "{lines:?}"
        );
        // 800 × 50 µs + 800 × 3 ms
        assert!(
            lines.contains(&"sluice_release_lateness_seconds_sum 2.44".to_string()),
            "{lines:?}"
        );
        let le = |bound: &str, n: u64| {
            format!("sluice_release_lateness_seconds_bucket{{le=\"{bound}\"}} {n}")
        };
        assert!(lines.contains(&le("0.0001", 800)), "{lines:?}");
        assert!(lines.contains(&le("0.002", 800)), "{lines:?}");
        assert!(lines.contains(&le("0.005", 1600)), "{lines:?}");
    }

    #[test]
    fn no_two_stripes_share_a_cache_line_and_bounds_past_the_most_are_dropped() {
        assert_eq!(std::mem::align_of::<Stripe>(), 128);
        assert!(std::mem::size_of::<Stripe>().is_multiple_of(128));
        let histogram = DurationHistogram::new((1..=MAX_BOUNDS + 3).map(|n| n as f64));
        assert_eq!(histogram.0.bounds.len(), MAX_BOUNDS);
        histogram.observe(Duration::from_secs(1_000));
        let (counts, sum_ns) = histogram.totals();
        assert_eq!(counts.len(), MAX_BOUNDS + 1);
        assert_eq!(counts.last(), Some(&1), "past every bound is +Inf");
        assert_eq!(sum_ns, 1_000_000_000_000);
    }
}
