//! Fleet-wide `[capacity]`: places in service under `max_concurrent`
//! counted for the whole fleet in the store (`N:G:cap:ROUTE`, one field a
//! replica, summed over the replicas alive).
//!
//! A replica takes places in blocks ([`block`]: 1 % of `max_concurrent`,
//! at least one) and hands them to its requests locally; a request that
//! finds none spare asks the store for a block (as many as are left below
//! `max_concurrent`). When a response ends its place is spare again; a
//! replica keeps at most a block spare (none with blocks of one) and gives
//! every spare back at its next heartbeat. So the fleet never serves more
//! than `max_concurrent` at once, and places idle on one replica while
//! another waits are at most a block a replica, for at most a heartbeat.
//!
//! While the fleet is full a request joins the fleet's queue (`N:G:capq:ROUTE`,
//! counted as places are, at most `max_queue` for the fleet; one store call
//! to join, one to leave) and asks again every [`POLL_EVERY`], within
//! `queue_timeout` (docs/fleet.md, "Capacity"). When the store answers again
//! after failing, the replica writes its true counts, so places and waiters
//! whose giving back failed are not lost for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Fleet;
use super::store::StoreError;

/// How often a request waiting for a fleet place asks again.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(20);

/// Routes whose places a replica counts, at most.
const MAX_ROUTES: usize = 1024;

/// Places a replica takes at once, and keeps spare at most: 1 % of `limit`.
pub(crate) fn block(limit: u32) -> u32 {
    (limit / 100).max(1)
}

#[derive(Debug, Default)]
struct Route {
    /// Places this replica took from the fleet.
    held: u32,
    /// Of those, places its requests are in.
    used: u32,
    /// The block size of the last request's `max_concurrent`.
    block: u32,
    /// Requests of this replica waiting for one.
    waiting: u32,
}

/// This replica's places and waiters, by route.
#[derive(Debug, Default)]
pub(crate) struct FleetPlaces {
    routes: Mutex<HashMap<String, Route>>,
}

/// A place in the fleet's service, given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    fleet: Arc<Fleet>,
    route: String,
}

/// What [`FleetPlaces::enter`] found.
#[derive(Debug)]
pub(crate) enum Entered {
    /// A place in the fleet's service.
    Place(Place),
    /// The fleet is at `max_concurrent`.
    Full,
    /// The route is past the routes a replica counts: its own pool decides.
    Untracked,
}

/// A request waiting for a place, counted while it lives.
#[derive(Debug)]
pub(crate) struct Waiting {
    fleet: Arc<Fleet>,
    route: String,
}

impl FleetPlaces {
    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn entry<T>(&self, route: &str, change: impl FnOnce(&mut Route) -> T) -> Option<T> {
        let mut routes = self.routes();
        if routes.len() >= MAX_ROUTES && !routes.contains_key(route) {
            return None;
        }
        Some(change(routes.entry(route.to_string()).or_default()))
    }

    /// A place on `route` if the fleet holds fewer than `limit`: one of
    /// this replica's spare places, else one of a block from the store.
    ///
    /// # Errors
    /// The store did not answer: the caller serves from its own pool.
    pub(crate) async fn enter(
        &self,
        fleet: &Arc<Fleet>,
        route: &str,
        limit: u32,
    ) -> Result<Entered, StoreError> {
        let place = || Place { fleet: Arc::clone(fleet), route: route.to_string() };
        let block = block(limit);
        let spare = self.entry(route, |r| {
            r.block = block;
            let spare = r.used < r.held;
            if spare {
                r.used += 1;
            }
            spare
        });
        match spare {
            Some(true) => return Ok(Entered::Place(place())),
            Some(false) => {}
            None => return Ok(Entered::Untracked),
        }
        let taken = take(fleet, &places_key(fleet, route), block, limit).await?;
        if taken == 0 {
            return Ok(Entered::Full);
        }
        self.entry(route, |r| {
            r.held = r.held.saturating_add(taken);
            r.used = r.used.saturating_add(1);
        });
        Ok(Entered::Place(place()))
    }

    /// A place in the fleet's queue on `route`, if the fleet's replicas
    /// have fewer than `max_queue` requests waiting; `None` when the queue
    /// is full. With the store down, this replica's own count decides.
    pub(crate) async fn wait(
        &self,
        fleet: &Arc<Fleet>,
        route: &str,
        max_queue: u32,
    ) -> Option<Waiting> {
        let joined = match take(fleet, &waiting_key(fleet, route), 1, max_queue).await {
            Ok(taken) => taken == 1,
            Err(error) => {
                fleet.failed("capacity", &error);
                self.entry(route, |r| r.waiting < max_queue).unwrap_or(false)
            }
        };
        if !joined || self.entry(route, |r| r.waiting = r.waiting.saturating_add(1)).is_none() {
            return None;
        }
        Some(Waiting { fleet: Arc::clone(fleet), route: route.to_string() })
    }

    /// Gives back every spare place (called each heartbeat: a place stays
    /// spare at most that long, so a replica with no more requests does not
    /// keep the fleet's places from another's queue).
    pub(crate) async fn give_back_spares(&self, fleet: &Fleet) {
        let spares: Vec<(String, u32)> = self
            .routes()
            .iter_mut()
            .filter_map(|(route, r)| {
                let spare = r.held.saturating_sub(r.used);
                r.held -= spare;
                (spare > 0).then(|| (route.clone(), spare))
            })
            .collect();
        for (route, spare) in spares {
            if let Err(error) = give(fleet, &places_key(fleet, &route), spare).await {
                fleet.failed("capacity", &error);
                return;
            }
        }
    }

    /// Writes this replica's true count of places, and of requests
    /// waiting, on every route (after the store was away: what failed to
    /// be given back then is not lost for good).
    pub(crate) async fn write_counts(&self, fleet: &Fleet) {
        let counts: Vec<(String, u32, u32)> =
            self.routes().iter().map(|(route, r)| (route.clone(), r.held, r.waiting)).collect();
        for (route, held, waiting) in counts {
            for (key, count) in
                [(places_key(fleet, &route), held), (waiting_key(fleet, &route), waiting)]
            {
                let written =
                    fleet.store().put_field(&key, fleet.replica(), &count.to_string()).await;
                if let Err(error) = written {
                    fleet.failed("capacity", &error);
                    return;
                }
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // Spare again; past a block spare, the rest goes back to the fleet.
        // With blocks of one (`max_concurrent` under 200) nothing is kept
        // spare: the count is exact.
        let give = self.fleet.places.entry(&self.route, |r| {
            r.used = r.used.saturating_sub(1);
            let keep = if r.block > 1 { r.block } else { 0 };
            let give = r.held.saturating_sub(r.used).saturating_sub(keep);
            r.held -= give;
            give
        });
        if let Some(count) = give.filter(|count| *count > 0) {
            give_later(&self.fleet, places_key(&self.fleet, &self.route), count);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.fleet.places.entry(&self.route, |r| r.waiting = r.waiting.saturating_sub(1));
        give_later(&self.fleet, waiting_key(&self.fleet, &self.route), 1);
    }
}

/// The store's key of `route`'s places in service.
fn places_key(fleet: &Fleet, route: &str) -> String {
    fleet.key(&format!("cap:{route}"))
}

/// The store's key of `route`'s requests waiting for a place.
fn waiting_key(fleet: &Fleet, route: &str) -> String {
    fleet.key(&format!("capq:{route}"))
}

/// Takes up to `want` of this replica's places (or queue places) at `key`,
/// below `limit` for the fleet: how many it took.
async fn take(fleet: &Fleet, key: &str, want: u32, limit: u32) -> Result<u32, StoreError> {
    fleet.store().enter(key, &fleet.replicas_key(), fleet.replica(), want, limit).await
}

/// Gives back `count` of this replica's places (or queue places) at `key`.
async fn give(fleet: &Fleet, key: &str, count: u32) -> Result<(), StoreError> {
    fleet.store().leave(key, &fleet.replicas_key(), fleet.replica(), count).await
}

/// [`give`], on a task of its own (from a `Drop`, which cannot wait).
fn give_later(fleet: &Arc<Fleet>, key: String, count: u32) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let fleet = Arc::clone(fleet);
    runtime.spawn(async move {
        if let Err(error) = give(&fleet, &key, count).await {
            fleet.failed("capacity", &error);
        }
    });
}
