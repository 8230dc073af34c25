//! Fleet state (`[fleet]`, docs/fleet.md): what a provider keeps per
//! account, kept once for a whole fleet of replicas in a Redis store, so
//! that R replicas behind a balancer behave as one sluice.
//!
//! It sits beside the request path, not on it:
//! - admission asks [`limits::FleetLimits`] for rate-limit units, which it
//!   leases from the store in blocks and spends locally;
//! - routing asks [`counts::FleetCounts`] for a request's number in its
//!   route (one store call a request while a `first_requests` schedule is
//!   still counting, then blocks);
//! - `enter_service` asks the store for a place under `max_concurrent`;
//! - the admin port publishes `PUT /faults`, `DELETE /faults`, runs and
//!   `DELETE /rate-limits` on the fleet's channel ([`events`]), and reads
//!   every replica's part of a run's report.
//!
//! Every store call is bounded by `[fleet] timeout`. When one fails the
//! replica goes on with its own state at once (its own buckets, counts and
//! places), warns once, counts it in `sluice_fleet_fallbacks_total`, and
//! stops asking on the request path until its heartbeat finds the store
//! again; then it reconciles (what it admitted and counted alone is charged
//! to the fleet) and goes back to the store.

pub(crate) mod counts;
pub(crate) mod events;
pub(crate) mod limits;
pub(crate) mod places;
pub(crate) mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::metrics::Metrics;
use store::{Store, StoreError};

/// How often a replica renews its heartbeat (and checks a store that failed).
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How long a heartbeat keeps a replica counted as alive.
pub(crate) const HEARTBEAT_TTL: Duration = Duration::from_secs(3);

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Beat {
    /// The store answers again after failing: reconcile.
    pub(crate) back: bool,
    /// The store started a new generation: what it held is gone.
    pub(crate) renewed: bool,
}

/// The fleet as this replica sees it.
#[derive(Debug)]
pub(crate) struct Fleet {
    store: Store,
    namespace: String,
    replica: String,
    /// The fleet's generation (`fleet/store.rs`), from the last heartbeat.
    generation: AtomicU64,
    /// Whether the store answered the last call.
    up: AtomicBool,
    /// Whether the store's failure was said since it last answered (a store
    /// down at start is said too).
    said_down: AtomicBool,
    /// Replicas alive at the last heartbeat.
    replicas: AtomicU64,
    metrics: Arc<Metrics>,
    /// Rate-limit units leased from the store.
    pub(crate) limits: limits::FleetLimits,
    /// Request numbers taken from the store.
    pub(crate) counts: counts::FleetCounts,
    /// Places in service under `max_concurrent`.
    pub(crate) places: places::FleetPlaces,
}

impl Fleet {
    /// This replica (`replica`, or a name made from the host and process)
    /// in the fleet whose store is at `url`.
    ///
    /// # Errors
    /// The URL is not one the Redis client accepts.
    pub(crate) fn new(
        config: &crate::config::Fleet,
        replica: Option<&str>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let url = config.store.as_ref().map_or("", |url| url.expose());
        let store = Store::new(url, config.timeout)?;
        let replica = replica.map_or_else(
            || format!("pid-{}-{:x}", std::process::id(), rand::random::<u32>()),
            str::to_string,
        );
        metrics.fleet_up(false);
        Ok(Self {
            store,
            namespace: config.namespace.clone(),
            replica,
            generation: AtomicU64::new(0),
            up: AtomicBool::new(false),
            said_down: AtomicBool::new(false),
            replicas: AtomicU64::new(0),
            metrics,
            limits: limits::FleetLimits::default(),
            counts: counts::FleetCounts::default(),
            places: places::FleetPlaces::default(),
        })
    }

    /// The store.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// This replica's name in the fleet.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// The key `rest` in the fleet's current generation.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{}:{rest}", self.namespace, self.generation.load(Ordering::Relaxed))
    }

    /// The channel every replica listens on.
    pub(crate) fn channel(&self) -> String {
        format!("{}:events", self.namespace)
    }

    /// The sorted set of live replicas.
    pub(crate) fn replicas_key(&self) -> String {
        format!("{}:replicas", self.namespace)
    }

    /// Whether the request path should ask the store (it answered last time).
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Replicas alive at the last heartbeat.
    pub(crate) fn replicas_alive(&self) -> u64 {
        self.replicas.load(Ordering::Relaxed)
    }

    /// A call for `what` failed: the replica goes on alone (said once).
    pub(crate) fn failed(&self, what: &'static str, error: &StoreError) {
        self.metrics.fleet_fallback(what);
        self.up.store(false, Ordering::Relaxed);
        if !self.said_down.swap(true, Ordering::Relaxed) {
            self.metrics.fleet_up(false);
            warn!(
                %error,
                what,
                "FLEET STORE UNREACHABLE: this replica goes on with its own rate limits, counts and places until it answers again"
            );
        }
    }

    /// One heartbeat: renews this replica and adopts the fleet's generation.
    pub(crate) async fn beat(&self) -> Result<Beat, StoreError> {
        let (generation, alive) =
            self.store.heartbeat(&self.namespace, &self.replica, HEARTBEAT_TTL).await?;
        let before = self.generation.swap(generation, Ordering::Relaxed);
        self.replicas.store(alive, Ordering::Relaxed);
        let renewed = before != generation && before != 0;
        if renewed {
            // The store forgot (a Redis that restarted empty): so does this replica.
            info!(generation, before, "the fleet's store started a new generation");
            self.limits.forget();
            self.counts.forget();
        }
        let back = !self.up.swap(true, Ordering::Relaxed);
        self.said_down.store(false, Ordering::Relaxed);
        if back {
            self.metrics.fleet_up(true);
            info!(
                generation,
                replicas = alive,
                "fleet store answers: rate limits, counts, places and runs are the fleet's"
            );
        }
        Ok(Beat { back, renewed })
    }

    /// The generation in use (0 before the first heartbeat).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The admin's view: store (without its password), replica, state.
    pub(crate) fn describe(&self, url: Option<&crate::config::StoreUrl>) -> serde_json::Value {
        serde_json::json!({
            "store": url.map(ToString::to_string),
            "namespace": self.namespace,
            "replica": self.replica,
            "generation": self.generation(),
            "store_up": self.is_up(),
            "replicas_alive": self.replicas_alive(),
            "timeout_ms": u64::try_from(self.store.timeout().as_millis()).unwrap_or(u64::MAX),
            "rate_limit_sets_leased": self.limits.held(),
        })
    }
}

impl crate::ratelimit::Settle for Fleet {
    fn settle(
        &self,
        _limits: &crate::config::RateLimits,
        id: &crate::ratelimit::SetId,
        estimated: u64,
        actual: u64,
    ) {
        self.limits.settle(id, estimated, actual);
    }
}
