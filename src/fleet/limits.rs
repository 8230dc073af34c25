//! Fleet-exact rate limits by leases. The fleet's buckets live in the store
//! (refilled to the store's clock by one script, `fleet/store.rs`); a
//! replica takes units from them in blocks and spends them locally, so most
//! requests make no store call at all.
//!
//! ```text
//! admit ─▶ the lease holds the charge? ─ yes ─▶ spend it here; below half a
//!       │                                        block? top up in the background
//!       └─ no ─▶ one store call: the shortfall and a block, all or nothing
//!                 ─▶ granted: spend it ─ refused: 429 with the store's wait,
//!                    and refuse alike here until that wait is over
//! ```
//!
//! The bound (docs/fleet.md, "Rate limits"): a block is 1 % of a bucket (at
//! least one unit), and a replica holds at most one block unspent (a
//! take asks for its shortfall and a block, a top-up for what is missing up
//! to a block), plus output tokens a settlement gave back. Units leave the
//! fleet's bucket before they are spent, so the fleet never admits more
//! than the exact bucket would; it admits at most the units held unspent
//! fewer: R blocks for R replicas, over any window.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use super::Fleet;
use super::store::{BucketReply, KindAsk, StoreError};
use crate::config::RateLimits;
use crate::ratelimit::{
    Charge, Decision, Level, Levels, LimitKind, Limited, MAX_BUCKET_SETS, SetId,
};

/// A block: what a lease takes beyond the request's own need.
pub(crate) fn block(capacity: u64) -> u64 {
    (capacity / 100).max(1)
}

/// What this replica holds of one set of the fleet's buckets.
#[derive(Debug, Default)]
struct Lease {
    /// Units taken from the store, not yet spent.
    held: [u64; 4],
    /// The store's whole units left, at the last reply.
    remaining: [u64; 4],
    /// The store's time until full, at the last reply.
    until_full: [Duration; 4],
    /// A top-up is on its way.
    topping_up: bool,
    /// The store refused `need` until `until` (or for ever).
    refused: Option<Refusal>,
    /// Units spent on this replica's own buckets while the store was down,
    /// or settled beyond what it held: charged to the fleet when it answers.
    owed: [u64; 4],
    /// The limits it was last used with (for paying what is owed).
    limits: Option<RateLimits>,
}

#[derive(Debug, Clone, Copy)]
struct Refusal {
    until: Option<Instant>,
    need: [u64; 4],
}

/// Every lease this replica holds, by bucket set.
#[derive(Debug, Default)]
pub(crate) struct FleetLimits {
    leases: DashMap<SetId, Lease>,
    /// How many times the fleet's buckets were cleared (part of their keys).
    clears: std::sync::atomic::AtomicU64,
}

/// Per kind: whether `limits` set it, and its spec.
fn specs(limits: &RateLimits) -> [Option<crate::ratelimit::bucket::Spec>; 4] {
    LimitKind::ALL.map(|kind| kind.spec(limits))
}

impl FleetLimits {
    /// The store key of `id`'s set.
    fn key(&self, fleet: &Fleet, id: &SetId) -> String {
        let clears = self.clears.load(std::sync::atomic::Ordering::Relaxed);
        fleet.key(&format!("rl:{clears}:{}", id.store_key()))
    }

    /// Forgets every lease (a new generation: the store forgot too).
    /// What this replica owes is kept: it is charged to the new buckets.
    pub(crate) fn forget(&self) {
        self.clears.store(0, std::sync::atomic::Ordering::Relaxed);
        self.leases.retain(|_, lease| lease.owed.iter().any(|&o| o > 0));
        for mut lease in self.leases.iter_mut() {
            lease.held = [0; 4];
            lease.refused = None;
        }
    }

    /// The fleet's buckets were cleared (`DELETE /rate-limits`, a fresh
    /// run) `clears` times, as the store counts: the buckets of that count
    /// are the fleet's, and leases of older ones are void.
    pub(crate) fn cleared(&self, clears: u64) {
        let before = self.clears.swap(clears, std::sync::atomic::Ordering::Relaxed);
        if before != clears {
            self.leases.clear();
        }
    }

    /// Charges `charge` to the fleet's set `id` under `limits`, from this
    /// replica's lease when it holds enough, else with one store call.
    ///
    /// # Errors
    /// The store did not answer: the caller falls back to its own buckets.
    pub(crate) async fn admit(
        &self,
        fleet: &Arc<Fleet>,
        limits: &RateLimits,
        id: SetId,
        charge: Charge,
        now: Instant,
    ) -> Result<Decision, StoreError> {
        let specs = specs(limits);
        let cost = LimitKind::ALL.map(|kind| charge.cost(kind));
        if self.leases.len() >= MAX_BUCKET_SETS && !self.leases.contains_key(&id) {
            // Full: leases holding nothing go; a new set still goes to the store.
            self.leases.retain(|_, lease| lease.held.iter().any(|&h| h > 0) || lease.topping_up);
        }
        let need = {
            let mut lease = self.leases.entry(id).or_default();
            lease.limits = Some(*limits);
            if let Some(refusal) = lease.refused {
                let over = refusal.until.is_some_and(|until| now >= until);
                let asks_as_much = (0..4).all(|i| cost[i] >= refusal.need[i]);
                if !over && asks_as_much {
                    let wait = refusal.until.map(|until| until.saturating_duration_since(now));
                    let levels = levels(&specs, &lease);
                    return Ok(Decision::Refused(levels, limited(&specs, &lease, &cost, wait)));
                }
                if over {
                    lease.refused = None;
                }
            }
            let holds = (0..4).all(|i| specs[i].is_none() || lease.held[i] >= cost[i]);
            if holds {
                for i in 0..4 {
                    if specs[i].is_some() {
                        lease.held[i] -= cost[i];
                    }
                }
                let levels = levels(&specs, &lease);
                let low = (0..4).any(|i| {
                    specs[i].is_some_and(|spec| lease.held[i] < block(spec.capacity).div_ceil(2))
                });
                if low && !lease.topping_up && fleet.is_up() {
                    lease.topping_up = true;
                    let asks = asks(&specs, &lease.held, &[0; 4]);
                    let key = self.key(fleet, &id);
                    let fleet = Arc::clone(fleet);
                    tokio::spawn(async move { fleet.limits.top_up(&fleet, id, key, asks).await });
                }
                return Ok(Decision::Admitted(levels));
            }
            std::array::from_fn(|i| cost[i].saturating_sub(lease.held[i]))
        };
        let asks = asks(&specs, &[0; 4], &need);
        let reply = fleet.store().bucket(&self.key(fleet, &id), false, &asks).await?;
        let mut lease = self.leases.entry(id).or_default();
        absorb(&mut lease, &reply);
        if let Some(wait) = reply.wait {
            lease.refused = Some(Refusal { until: wait.map(|wait| now + wait), need });
            let levels = levels(&specs, &lease);
            return Ok(Decision::Refused(levels, limited(&specs, &lease, &cost, wait)));
        }
        for i in 0..4 {
            if specs[i].is_some() {
                lease.held[i] = lease.held[i].saturating_sub(cost[i]);
            }
        }
        Ok(Decision::Admitted(levels(&specs, &lease)))
    }

    /// Tops a lease up to a block in the background.
    async fn top_up(&self, fleet: &Fleet, id: SetId, key: String, asks: [KindAsk; 4]) {
        let result = fleet.store().bucket(&key, false, &asks).await;
        if let Some(mut lease) = self.leases.get_mut(&id) {
            lease.topping_up = false;
            if let Ok(reply) = &result {
                absorb(&mut lease, reply);
            }
        }
        if let Err(error) = result {
            fleet.failed("rate_limits", &error);
        }
    }

    /// Units spent on this replica's own buckets while the store was down:
    /// owed to the fleet.
    pub(crate) fn owe(&self, id: SetId, limits: &RateLimits, charge: Charge) {
        let mut lease = self.leases.entry(id).or_default();
        lease.limits = Some(*limits);
        for kind in LimitKind::ALL {
            let owed = &mut lease.owed[kind.index()];
            *owed = owed.saturating_add(charge.cost(kind));
        }
    }

    /// Settles a request's output tokens (`estimated` charged, `actual`
    /// produced): what was over-charged returns to the lease, what was
    /// under-charged is spent from it or owed.
    pub(crate) fn settle(&self, id: &SetId, estimated: u64, actual: u64) {
        let Some(mut lease) = self.leases.get_mut(id) else { return };
        for kind in [LimitKind::OutputTokens, LimitKind::Tokens] {
            let i = kind.index();
            if estimated >= actual {
                lease.held[i] = lease.held[i].saturating_add(estimated - actual);
            } else {
                let more = actual - estimated;
                let spent = more.min(lease.held[i]);
                lease.held[i] -= spent;
                lease.owed[i] = lease.owed[i].saturating_add(more - spent);
            }
        }
    }

    /// Charges what is owed to the fleet's buckets (after an outage, or a
    /// settlement beyond a lease). Called by the heartbeat.
    pub(crate) async fn pay_debts(&self, fleet: &Fleet) {
        let owing: Vec<(SetId, [u64; 4], RateLimits)> = self
            .leases
            .iter()
            .filter(|lease| lease.owed.iter().any(|&o| o > 0))
            .filter_map(|lease| Some((*lease.key(), lease.owed, lease.limits?)))
            .collect();
        for (id, owed, limits) in owing {
            // A give of `want - need`: here, minus what is owed.
            let debit: [KindAsk; 4] = std::array::from_fn(|i| match specs(&limits)[i] {
                Some(spec) => KindAsk {
                    per_minute: spec.per_minute,
                    capacity: spec.capacity,
                    need: owed[i],
                    want: 0,
                },
                None => KindAsk::default(),
            });
            match fleet.store().bucket(&self.key(fleet, &id), true, &debit).await {
                Ok(_) => {
                    if let Some(mut lease) = self.leases.get_mut(&id) {
                        for (left, paid) in lease.owed.iter_mut().zip(owed) {
                            *left = left.saturating_sub(paid);
                        }
                    }
                }
                Err(error) => {
                    fleet.failed("rate_limits", &error);
                    return;
                }
            }
        }
    }

    /// Bucket sets leased now.
    pub(crate) fn held(&self) -> usize {
        self.leases.len()
    }
}

/// The store's asks: for each kind set, `need` and a block beyond what is
/// held (`held`), with the spec.
fn asks(
    specs: &[Option<crate::ratelimit::bucket::Spec>; 4],
    held: &[u64; 4],
    need: &[u64; 4],
) -> [KindAsk; 4] {
    std::array::from_fn(|i| match specs[i] {
        Some(spec) => {
            let block = block(spec.capacity);
            KindAsk {
                per_minute: spec.per_minute,
                capacity: spec.capacity,
                need: need[i],
                want: need[i].saturating_add(block.saturating_sub(held[i])),
            }
        }
        None => KindAsk::default(),
    })
}

/// Takes a store reply into a lease.
fn absorb(lease: &mut Lease, reply: &BucketReply) {
    for i in 0..4 {
        lease.held[i] = lease.held[i].saturating_add(reply.granted[i]);
    }
    lease.remaining = reply.remaining;
    lease.until_full = reply.until_full;
}

/// The levels the headers report: the fleet's bucket at the last reply,
/// plus what this replica holds of it.
fn levels(specs: &[Option<crate::ratelimit::bucket::Spec>; 4], lease: &Lease) -> Levels {
    Levels(std::array::from_fn(|i| {
        specs[i].map(|spec| Level {
            limit: spec.per_minute,
            remaining: lease.remaining[i].saturating_add(lease.held[i]).min(spec.capacity),
            until_full: lease.until_full[i],
        })
    }))
}

/// The refusal's figures: the kind furthest from holding its cost.
fn limited(
    specs: &[Option<crate::ratelimit::bucket::Spec>; 4],
    lease: &Lease,
    cost: &[u64; 4],
    wait: Option<Duration>,
) -> Limited {
    let have = |i: usize| lease.remaining[i].saturating_add(lease.held[i]);
    let worst = LimitKind::ALL
        .into_iter()
        .filter(|kind| specs[kind.index()].is_some())
        .max_by_key(|kind| {
            let i = kind.index();
            let per_minute = specs[i].map_or(1, |spec| spec.per_minute.max(1));
            // Time to refill the shortfall, in units a minute: comparable across kinds.
            u128::from(cost[i].saturating_sub(have(i))) * 60_000 / u128::from(per_minute)
        })
        .unwrap_or(LimitKind::Requests);
    let i = worst.index();
    let spec = specs[i];
    Limited {
        kind: worst,
        limit: spec.map_or(0, |spec| spec.per_minute),
        used: spec.map_or(0, |spec| spec.capacity.saturating_sub(have(i))),
        requested: cost[i],
        wait,
        model: None,
    }
}
