//! Fleet request numbers for schedules (`first_requests`, `every`): each
//! route's count is one counter in the store, per timeline phase (a phase
//! restarts its routes' counts, as on one replica).
//!
//! While the fleet's count is below the largest `first_requests` of the
//! route's profile, each request takes its number with one store call, so
//! "the first N" are the first N the store saw, in order. Past it, a replica
//! takes numbers in blocks of [`BLOCK`] and hands them out locally: `every
//! = N` still faults exactly one number in N, and numbers a replica has not
//! used yet are at most [`BLOCK`] a replica (docs/fleet.md, "Schedules").

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Mutex;

use super::Fleet;
use super::store::StoreError;

/// Numbers a replica takes at once past the exact part.
pub(crate) const BLOCK: u64 = 16;

/// Counters a replica keeps (route and phase pairs); past it, the oldest go.
const MAX_COUNTERS: usize = 4096;

#[derive(Debug, Default)]
struct Counter {
    /// Numbers taken and not handed out, in order.
    ranges: VecDeque<Range<u64>>,
    /// The fleet's count at the last store call.
    seen: u64,
    /// Requests numbered by this replica alone while the store was down:
    /// added to the fleet's count when it answers.
    owed: u64,
}

/// This replica's numbers, by counter (`count:PHASE:ROUTE`, the store's
/// key without its namespace and generation).
#[derive(Debug, Default)]
pub(crate) struct FleetCounts {
    counters: Mutex<HashMap<String, Counter>>,
}

impl FleetCounts {
    fn counters(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counter>> {
        self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every counter (a new generation); what this replica
    /// counted alone is kept, to be added to the new counts.
    pub(crate) fn forget(&self) {
        self.counters().retain(|_, counter| counter.owed > 0);
        for counter in self.counters().values_mut() {
            counter.ranges.clear();
            counter.seen = 0;
        }
    }

    /// The next fleet number (from 0) of `route`'s requests in `phase`;
    /// one at a time while the fleet's count is below `exact_until`.
    ///
    /// # Errors
    /// The store did not answer: the caller numbers the request itself.
    pub(crate) async fn number(
        &self,
        fleet: &Fleet,
        phase: Option<&str>,
        route: &str,
        exact_until: u64,
    ) -> Result<u64, StoreError> {
        let key = format!("count:{}:{route}", phase.unwrap_or("-"));
        let size = {
            let mut counters = self.counters();
            if let Some(counter) = counters.get_mut(&key)
                && let Some(number) = take(counter)
            {
                return Ok(number);
            }
            let seen = counters.get(&key).map_or(0, |c| c.seen);
            if seen < exact_until { 1 } else { BLOCK }
        };
        let end = fleet.store().count(&fleet.key(&key), size).await?;
        let mut counters = self.counters();
        if counters.len() >= MAX_COUNTERS && !counters.contains_key(&key) {
            counters.clear();
        }
        let counter = counters.entry(key).or_default();
        counter.seen = counter.seen.max(end);
        counter.ranges.push_back(end.saturating_sub(size)..end);
        Ok(take(counter).unwrap_or(end.saturating_sub(size)))
    }

    /// A request of `route` in `phase` numbered by this replica alone.
    pub(crate) fn owe(&self, phase: Option<&str>, route: &str) {
        let key = format!("count:{}:{route}", phase.unwrap_or("-"));
        let mut counters = self.counters();
        if counters.len() < MAX_COUNTERS || counters.contains_key(&key) {
            let counter = counters.entry(key).or_default();
            counter.owed = counter.owed.saturating_add(1);
        }
    }

    /// Adds what was counted alone to the fleet's counts. Called by the
    /// heartbeat once the store answers again.
    pub(crate) async fn pay_debts(&self, fleet: &Fleet) {
        let owing: Vec<(String, u64)> = self
            .counters()
            .iter()
            .filter(|(_, counter)| counter.owed > 0)
            .map(|(key, counter)| (key.clone(), counter.owed))
            .collect();
        for (key, owed) in owing {
            match fleet.store().count(&fleet.key(&key), owed).await {
                Ok(_) => {
                    if let Some(counter) = self.counters().get_mut(&key) {
                        counter.owed = counter.owed.saturating_sub(owed);
                    }
                }
                Err(error) => {
                    fleet.failed("schedules", &error);
                    return;
                }
            }
        }
    }
}

/// The counter's next number, if it has one left.
fn take(counter: &mut Counter) -> Option<u64> {
    loop {
        let range = counter.ranges.front_mut()?;
        if let Some(number) = range.next() {
            if range.is_empty() {
                counter.ranges.pop_front();
            }
            return Some(number);
        }
        counter.ranges.pop_front();
    }
}
