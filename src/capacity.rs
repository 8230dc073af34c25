//! The capacity model (`[capacity]`, docs/capacity.md): how many requests a
//! route serves at once, the queue before it, and who is shed.
//!
//! It sits between admission and the source: `Exchange::enter_service`
//! (in `handler/exchange.rs`) asks the route's [`Pool`] for a place; the
//! request is served at once, waits in the queue (first come, first served)
//! or is shed, and holds its [`Slot`] until its response ends. The pool's
//! count of requests in service is what the pacer's slowdown reads
//! (`shape::Slowdown`) on every token, so the gaps of every stream
//! widen as the "batch" grows and narrow as it drains.
//!
//! Pools outlive reloads (requests in service keep their places across a
//! reload); a new `max_concurrent` takes effect at the next arrival or end.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;

/// The most pools kept: one per route name ever served with `[capacity]`.
/// Past it, further routes share one overflow pool (docs/reliability.md).
pub(crate) const MAX_POOLS: usize = 1024;

/// The name of the pool that routes past [`MAX_POOLS`] share.
const OVERFLOW_POOL: &str = "(overflow)";

/// Every route's pool, by route name.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

/// The gauges a pool keeps current: requests in service, and queued.
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolGauges {
    /// `sluice_capacity_in_service{route}`.
    pub(crate) in_service: Gauge,
    /// `sluice_capacity_queued{route}`.
    pub(crate) queued: Gauge,
}

impl Pools {
    /// The pool of `route`, made (with `gauges(route)`) on its first use.
    pub(crate) fn pool(&self, route: &str, gauges: impl FnOnce(&str) -> PoolGauges) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(route) {
            return Arc::clone(pool);
        }
        let name = if pools.len() < MAX_POOLS { route } else { OVERFLOW_POOL };
        let pool =
            pools.entry(name.to_string()).or_insert_with(|| Arc::new(Pool::new(gauges(name))));
        Arc::clone(pool)
    }

    /// Each pool's route, requests in service and queued, by route name.
    pub(crate) fn census(&self) -> Vec<(String, u32, usize)> {
        let pools = self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut census: Vec<_> = pools
            .iter()
            .map(|(route, pool)| {
                let queue = pool.queue();
                (route.clone(), queue.in_service, queue.waiting.len())
            })
            .collect();
        census.sort();
        census
    }
}

/// One route's places in service and its queue.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Requests in service, for lock-free reads on every token.
    in_service: Arc<AtomicU32>,
    queue: Mutex<Queue>,
    gauges: PoolGauges,
}

#[derive(Debug, Default)]
struct Queue {
    in_service: u32,
    /// The `max_concurrent` of the latest arrival.
    limit: u32,
    waiting: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    granted: oneshot::Sender<()>,
}

/// What a request arriving at a pool gets.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A place in service, now.
    Served(Slot),
    /// A place in the queue; [`Queued::wait`] gives the slot.
    Queued(Queued),
    /// The queue is full: shed.
    Full,
}

impl Pool {
    fn new(gauges: PoolGauges) -> Self {
        Self { in_service: Arc::default(), queue: Mutex::default(), gauges }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests in service now, shared with the streams' pacers.
    pub(crate) fn in_service(&self) -> &Arc<AtomicU32> {
        &self.in_service
    }

    /// Admits a request with `limit` places in service and `queue_length`
    /// places in the queue: in service if a place is free and nobody waits,
    /// else queued if the queue has room, else shed.
    pub(crate) fn enter(self: &Arc<Self>, limit: u32, queue_length: u32) -> Entry {
        let mut queue = self.queue();
        queue.limit = limit;
        // A raised limit serves those waiting first.
        self.grant(&mut queue);
        let entry = if queue.in_service < limit && queue.waiting.is_empty() {
            queue.in_service += 1;
            Entry::Served(Slot { pool: Arc::clone(self), companion: None })
        } else if queue.waiting.len() < usize::try_from(queue_length).unwrap_or(usize::MAX) {
            let (granted, receiver) = oneshot::channel();
            let id = queue.next_id;
            queue.next_id += 1;
            queue.waiting.push_back(Waiter { id, granted });
            Entry::Queued(Queued { pool: Arc::clone(self), id, granted: receiver, done: false })
        } else {
            Entry::Full
        };
        self.publish(&queue);
        entry
    }

    /// Moves waiters into service while there is room, first come first.
    fn grant(&self, queue: &mut Queue) {
        while queue.in_service < queue.limit {
            let Some(waiter) = queue.waiting.pop_front() else { break };
            // A waiter that left removes itself; one whose receiver is gone
            // anyway is skipped.
            if waiter.granted.send(()).is_ok() {
                queue.in_service += 1;
            }
        }
    }

    /// A place in service is given back.
    fn leave(&self) {
        let mut queue = self.queue();
        queue.in_service = queue.in_service.saturating_sub(1);
        self.grant(&mut queue);
        self.publish(&queue);
    }

    /// The waiter `id` left the queue before its turn; if its place was
    /// granted meanwhile, it is given back.
    fn abandon(&self, id: u64, granted: bool) {
        let mut queue = self.queue();
        if let Some(index) = queue.waiting.iter().position(|w| w.id == id) {
            queue.waiting.remove(index);
        } else if granted {
            queue.in_service = queue.in_service.saturating_sub(1);
            self.grant(&mut queue);
        }
        self.publish(&queue);
    }

    fn publish(&self, queue: &Queue) {
        self.in_service.store(queue.in_service, Ordering::Relaxed);
        self.gauges.in_service.set(i64::from(queue.in_service));
        self.gauges.queued.set(i64::try_from(queue.waiting.len()).unwrap_or(i64::MAX));
    }
}

/// A place in service, given back when dropped (the response ended).
#[derive(Debug)]
pub(crate) struct Slot {
    pool: Arc<Pool>,
    /// Held until this slot is given back: the request's place in the
    /// fleet's service, with `[fleet]` (docs/fleet.md, "Capacity").
    companion: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
}

impl Slot {
    /// Holds `companion` until this slot is given back.
    pub(crate) fn holding(
        mut self,
        companion: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
    ) -> Self {
        self.companion = companion;
        self
    }

    /// Its pool.
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.leave();
    }
}

/// A place in the queue; dropped before its turn, it leaves the queue.
#[derive(Debug)]
pub(crate) struct Queued {
    pool: Arc<Pool>,
    id: u64,
    granted: oneshot::Receiver<()>,
    /// Whether [`Queued::wait`] returned its slot.
    done: bool,
}

impl Queued {
    /// Waits for its turn.
    pub(crate) async fn wait(mut self) -> Slot {
        // The sender is only dropped unsent when this waiter is removed,
        // which only its own drop does: the wait ends with the grant.
        let _ = (&mut self.granted).await;
        self.done = true;
        Slot { pool: Arc::clone(&self.pool), companion: None }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if !self.done {
            let granted = self.granted.try_recv().is_ok();
            self.pool.abandon(self.id, granted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Arc<Pool> {
        Arc::new(Pool::new(PoolGauges::default()))
    }

    fn served(entry: Entry) -> Slot {
        match entry {
            Entry::Served(slot) => slot,
            other => panic!("expected a place in service, got {other:?}"),
        }
    }

    fn queued(entry: Entry) -> Queued {
        match entry {
            Entry::Queued(queued) => queued,
            other => panic!("expected a place in the queue, got {other:?}"),
        }
    }

    fn counts(pool: &Pool) -> (u32, usize) {
        let queue = pool.queue();
        (queue.in_service, queue.waiting.len())
    }

    #[tokio::test]
    async fn requests_are_served_then_queued_then_shed_and_the_queue_moves_in_order() {
        let pool = pool();
        let first = served(pool.enter(2, 2));
        let _second = served(pool.enter(2, 2));
        let third = queued(pool.enter(2, 2));
        let fourth = queued(pool.enter(2, 2));
        assert!(matches!(pool.enter(2, 2), Entry::Full));
        assert_eq!(counts(&pool), (2, 2));
        assert_eq!(pool.gauges.queued.get(), 2);
        drop(first);
        let third = third.wait().await;
        assert_eq!(counts(&pool), (2, 1));
        assert_eq!(pool.in_service().load(Ordering::Relaxed), 2);
        drop(third);
        let _fourth = fourth.wait().await;
        assert_eq!(counts(&pool), (2, 0));
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place_whether_or_not_it_was_granted() {
        let pool = pool();
        let first = served(pool.enter(1, 2));
        let second = queued(pool.enter(1, 2));
        let third = queued(pool.enter(1, 2));
        drop(second); // left before its turn
        assert_eq!(counts(&pool), (1, 1));
        drop(first); // grants the third, which leaves before it looks
        assert_eq!(counts(&pool), (1, 0));
        drop(third);
        assert_eq!(counts(&pool), (0, 0));
        let _next = served(pool.enter(1, 2));
    }

    #[tokio::test]
    async fn a_raised_limit_serves_the_waiters_at_the_next_arrival() {
        let pool = pool();
        let _first = served(pool.enter(1, 5));
        let second = queued(pool.enter(1, 5));
        let _third = served(pool.enter(3, 5));
        assert_eq!(counts(&pool), (3, 0));
        let _second = second.wait().await;
    }

    #[test]
    fn pools_past_the_bound_share_one() {
        let pools = Pools::default();
        for n in 0..MAX_POOLS {
            pools.pool(&format!("route-{n}"), |_| PoolGauges::default());
        }
        let a = pools.pool("one-more", |_| PoolGauges::default());
        let b = pools.pool("and-another", |_| PoolGauges::default());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(pools.census().len(), MAX_POOLS + 1);
    }
}
