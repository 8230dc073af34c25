//! Fleet-wide `[capacity]`: places in service under `max_concurrent`
//! counted for the whole fleet in the store (`N:G:cap:ROUTE`, one field a
//! replica, summed over the replicas alive). A request takes a place with
//! one store call when it enters service and gives it back when its
//! response ends; while the fleet is full it asks again every
//! [`POLL_EVERY`], within `queue_timeout`, and this replica keeps at most
//! `max_queue` such requests waiting (docs/fleet.md, "Capacity").
//!
//! Each heartbeat writes this replica's true count of places, so a place
//! whose giving back failed (the store was down) is not lost for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Fleet;
use super::store::StoreError;

/// How often a request waiting for a fleet place asks again.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(20);

/// Routes whose places a replica counts, at most.
const MAX_ROUTES: usize = 1024;

#[derive(Debug, Default)]
struct Route {
    /// Places this replica holds.
    held: u32,
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

    /// A place on `route` if the fleet holds fewer than `limit`.
    ///
    /// # Errors
    /// The store did not answer: the caller serves from its own pool.
    pub(crate) async fn enter(
        &self,
        fleet: &Arc<Fleet>,
        route: &str,
        limit: u32,
    ) -> Result<Option<Place>, StoreError> {
        let key = fleet.key(&format!("cap:{route}"));
        let taken =
            fleet.store().enter(&key, &fleet.replicas_key(), fleet.replica(), limit).await?;
        if !taken || self.entry(route, |r| r.held = r.held.saturating_add(1)).is_none() {
            return Ok(None);
        }
        Ok(Some(Place { fleet: Arc::clone(fleet), route: route.to_string() }))
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
        self.fleet.places.entry(&self.route, |r| r.held = r.held.saturating_sub(1));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let fleet = Arc::clone(&self.fleet);
        let key = fleet.key(&format!("cap:{}", self.route));
        runtime.spawn(async move {
            if let Err(error) =
                fleet.store().leave(&key, &fleet.replicas_key(), fleet.replica()).await
            {
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
