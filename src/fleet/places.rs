//! Fleet-wide `[capacity]`: places in service under `max_concurrent`
//! counted for the whole fleet in the store (`N:G:cap:ROUTE`, one field a
//! replica, summed over the replicas alive).
//!
//! A replica takes places in blocks ([`block`]: 1 % of `max_concurrent`,
//! at least one) and hands them to its requests locally; a request that
//! finds none spare asks the store for a block (as many as are left below
//! `max_concurrent`). When a response ends its place is spare again, and a
//! replica holding more than a block spare gives the rest back. So the
//! fleet never serves more than `max_concurrent` at once, and places idle
//! on one replica while another waits are at most a block a replica.
//!
//! While the fleet is full a request asks again every [`POLL_EVERY`],
//! within `queue_timeout`, and this replica keeps at most `max_queue` such
//! requests waiting (docs/fleet.md, "Capacity"). Each heartbeat writes this
//! replica's true count of places, so places whose giving back failed (the
//! store was down) are not lost for good.

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
        let key = fleet.key(&format!("cap:{route}"));
        let taken =
            fleet.store().enter(&key, &fleet.replicas_key(), fleet.replica(), block, limit).await?;
        if taken == 0 {
            return Ok(Entered::Full);
        }
        self.entry(route, |r| {
            r.held = r.held.saturating_add(taken);
            r.used = r.used.saturating_add(1);
        });
        Ok(Entered::Place(place()))
    }

    /// Counts a request waiting on `route`, if fewer than `max_queue` are.
    pub(crate) fn wait(&self, fleet: &Arc<Fleet>, route: &str, max_queue: u32) -> Option<Waiting> {
        let joined = self.entry(route, |r| {
            let room = r.waiting < max_queue;
            if room {
                r.waiting += 1;
            }
            room
        });
        joined
            .filter(|joined| *joined)
            .map(|_| Waiting { fleet: Arc::clone(fleet), route: route.to_string() })
    }

    /// Writes this replica's true count of places on every route.
    pub(crate) async fn write_counts(&self, fleet: &Fleet) {
        let counts: Vec<(String, u32)> =
            self.routes().iter().map(|(route, r)| (route.clone(), r.held)).collect();
        for (route, held) in counts {
            let key = fleet.key(&format!("cap:{route}"));
            if let Err(error) =
                fleet.store().put_field(&key, fleet.replica(), &held.to_string()).await
            {
                fleet.failed("capacity", &error);
                return;
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // Spare again; past a block spare, the rest goes back to the fleet.
        let give = self.fleet.places.entry(&self.route, |r| {
            r.used = r.used.saturating_sub(1);
            let give = r.held.saturating_sub(r.used).saturating_sub(r.block.max(1));
            r.held -= give;
            give
        });
        let Some(give) = give.filter(|give| *give > 0) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let fleet = Arc::clone(&self.fleet);
        let key = fleet.key(&format!("cap:{}", self.route));
        runtime.spawn(async move {
            let left =
                fleet.store().leave(&key, &fleet.replicas_key(), fleet.replica(), give).await;
            if let Err(error) = left {
                fleet.failed("capacity", &error);
            }
        });
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.fleet.places.entry(&self.route, |r| r.waiting = r.waiting.saturating_sub(1));
    }
}
