//! The verdict on client discipline: sluice knows what it told each client
//! (wait `retry-after`, or `x-should-retry: false`), so it can tell what
//! the client did next. Per client key, from the first time it was told:
//!
//! - an **early retry**: a request before the `retry-after` it was given
//!   had passed (and how early);
//! - an **immediate retry**: a request within [`IMMEDIATE`] of being told
//!   to wait, with no pause at all;
//! - a **storm**: more than [`STORM_REQUESTS`] requests in one wait window
//!   (counted once a window);
//! - an **ignored `x-should-retry: false`**: a request within the window
//!   after being told not to retry;
//! - a **patient retry**: the first request after the wait was over.
//!
//! The wait window is the `retry-after` given, or [`WINDOW_WITHOUT_WAIT`]
//! when only `x-should-retry` was. A client is its API key (hashed), so
//! clients that share a key share a verdict: give each one its own key.
//! Bounded: at most [`MAX_CLIENTS`] clients are followed; later ones are
//! counted in the totals only.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use super::ClientKey;

/// A request this soon after being told to wait came with no pause.
pub(crate) const IMMEDIATE: Duration = Duration::from_millis(50);
/// More requests than this in one wait window are a storm.
pub(crate) const STORM_REQUESTS: u32 = 3;
/// The window after `x-should-retry: false` with no `retry-after`.
pub(crate) const WINDOW_WITHOUT_WAIT: Duration = Duration::from_secs(1);
/// Clients followed at once, at most.
pub(crate) const MAX_CLIENTS: usize = 10_000;

/// What one request did wrong, if anything (several can hold at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags {
    /// Before the `retry-after` it was given: by how much.
    pub(crate) early_by: Option<Duration>,
    /// Within [`IMMEDIATE`] of being told to wait.
    pub(crate) immediate: bool,
    /// The request that made its window a storm.
    pub(crate) storm: bool,
    /// Within the window after `x-should-retry: false`.
    pub(crate) ignored_should_retry: bool,
    /// The first request after a wait was over.
    pub(crate) patient: bool,
}

impl Flags {
    /// The `x-sluice-client-verdict` value: what it did wrong, comma-separated.
    pub(crate) fn header(&self) -> Option<String> {
        let wrong: Vec<&str> = self.kinds().filter(|kind| *kind != "patient_retry").collect();
        (!wrong.is_empty()).then(|| wrong.join(","))
    }

    /// The name of each verdict that holds: the header's words and the
    /// `sluice_client_discipline_total{kind}` labels.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.early_by.is_some(), "early_retry"),
            (self.immediate, "immediate_retry"),
            (self.storm, "retry_storm"),
            (self.ignored_should_retry, "ignored_should_retry"),
            (self.patient, "patient_retry"),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
    }
}

/// One client's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    /// Requests since it was first told to wait.
    pub(crate) requests: u64,
    /// Answers that told it to wait or not to retry.
    pub(crate) told: u64,
    /// Early retries.
    pub(crate) early_retries: u64,
    /// The earliest of them: by how much.
    pub(crate) earliest_by: Duration,
    /// Immediate retries.
    pub(crate) immediate_retries: u64,
    /// Storms.
    pub(crate) storms: u64,
    /// Requests after `x-should-retry: false`.
    pub(crate) ignored_should_retry: u64,
    /// Retries after the wait was over.
    pub(crate) patient_retries: u64,
}

impl Tally {
    /// Adds `other`'s counts (the earliest of the two).
    pub(crate) fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.told += other.told;
        self.early_retries += other.early_retries;
        self.earliest_by = self.earliest_by.max(other.earliest_by);
        self.immediate_retries += other.immediate_retries;
        self.storms += other.storms;
        self.ignored_should_retry += other.ignored_should_retry;
        self.patient_retries += other.patient_retries;
    }

    fn add(&mut self, flags: Flags) {
        self.requests += 1;
        if let Some(by) = flags.early_by {
            self.early_retries += 1;
            self.earliest_by = self.earliest_by.max(by);
        }
        self.immediate_retries += u64::from(flags.immediate);
        self.storms += u64::from(flags.storm);
        self.ignored_should_retry += u64::from(flags.ignored_should_retry);
        self.patient_retries += u64::from(flags.patient);
    }
}

/// What the client was last told, and its window so far.
#[derive(Debug, Clone, Copy)]
struct Told {
    at: Instant,
    until: Option<Instant>,
    window_end: Instant,
    should_retry: Option<bool>,
    requests_in_window: u32,
    stormed: bool,
}

#[derive(Debug, Default)]
struct Client {
    tally: Tally,
    told: Option<Told>,
}

/// Every followed client's verdict.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    clients: DashMap<u64, Client>,
    held: AtomicUsize,
    /// Whether any client was ever told anything (until then, arrivals cost nothing).
    watching: AtomicBool,
}

impl Verdicts {
    /// Whether any client has been told to wait (and so is followed).
    pub(crate) fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// A request of `client` arrived at `now`: what it did wrong, judged
    /// against what it was last told.
    pub(crate) fn arrive(&self, client: &ClientKey, now: Instant) -> Flags {
        let Some(mut entry) = self.clients.get_mut(&client.id) else {
            return Flags::default();
        };
        let mut flags = Flags::default();
        if let Some(told) = entry.told.as_mut() {
            if now < told.window_end {
                flags.early_by = told.until.map(|until| until.saturating_duration_since(now));
                flags.immediate = now.saturating_duration_since(told.at) < IMMEDIATE;
                flags.ignored_should_retry = told.should_retry == Some(false);
                told.requests_in_window = told.requests_in_window.saturating_add(1);
                if told.requests_in_window > STORM_REQUESTS && !told.stormed {
                    told.stormed = true;
                    flags.storm = true;
                }
            } else {
                flags.patient = told.until.is_some();
                entry.told = None;
            }
        }
        entry.tally.add(flags);
        flags
    }

    /// `client` was told at `now` to wait `retry_after` and whether to retry.
    pub(crate) fn told(
        &self,
        client: &ClientKey,
        now: Instant,
        retry_after: Option<Duration>,
        should_retry: Option<bool>,
    ) {
        if retry_after.is_none() && should_retry != Some(false) {
            return;
        }
        self.watching.store(true, Ordering::Relaxed);
        let mut entry = match self.clients.get_mut(&client.id) {
            Some(entry) => entry,
            None if self.held.load(Ordering::Relaxed) >= MAX_CLIENTS => return,
            None => {
                self.held.fetch_add(1, Ordering::Relaxed);
                self.clients.entry(client.id).or_default()
            }
        };
        let until = retry_after.map(|wait| crate::shape::later(now, wait));
        let window_end = until.unwrap_or_else(|| crate::shape::later(now, WINDOW_WITHOUT_WAIT));
        // A window still open carries its count on: a client that keeps
        // being refused is one storm, not none.
        let (requests_in_window, stormed) = match entry.told {
            Some(old) if now < old.window_end => (old.requests_in_window, old.stormed),
            _ => (0, false),
        };
        entry.tally.told += 1;
        entry.told =
            Some(Told { at: now, until, window_end, should_retry, requests_in_window, stormed });
    }

    /// Every followed client's tally, most misbehaved first, at most `at_most`.
    pub(crate) fn report(&self, at_most: usize) -> Vec<(ClientKey, Tally)> {
        let mut all: Vec<(ClientKey, Tally)> =
            self.clients.iter().map(|c| (ClientKey { id: *c.key() }, c.tally)).collect();
        all.sort_by_key(|(key, tally)| {
            let wrong = tally.early_retries
                + tally.immediate_retries
                + tally.storms
                + tally.ignored_should_retry;
            (std::cmp::Reverse(wrong), key.id)
        });
        all.truncate(at_most);
        all
    }

    /// Clients followed now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Forgets every client (`DELETE /rate-limits`).
    pub(crate) fn clear(&self) {
        self.clients.clear();
        self.held.store(0, Ordering::Relaxed);
        self.watching.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn a_patient_client_has_a_clean_verdict() {
        let verdicts = Verdicts::default();
        let client = ClientKey { id: 7 };
        let start = Instant::now();
        assert_eq!(verdicts.arrive(&client, start), Flags::default(), "never told: not followed");
        verdicts.told(&client, start, Some(MS(1500)), Some(true));
        let flags = verdicts.arrive(&client, start + MS(1500));
        assert_eq!(flags, Flags { patient: true, ..Flags::default() });
        assert_eq!(flags.header(), None);
        let tally = verdicts.report(10)[0].1;
        assert_eq!(tally, Tally { requests: 1, told: 1, patient_retries: 1, ..Tally::default() });
    }

    #[tokio::test(start_paused = true)]
    async fn an_impatient_client_is_counted_early_immediate_and_a_storm() {
        let verdicts = Verdicts::default();
        let client = ClientKey { id: 9 };
        let start = Instant::now();
        verdicts.told(&client, start, Some(MS(2000)), Some(true));
        let first = verdicts.arrive(&client, start + MS(10));
        assert_eq!(first.early_by, Some(MS(1990)));
        assert!(first.immediate);
        assert_eq!(first.header().as_deref(), Some("early_retry,immediate_retry"));
        // Refused again: the window's count carries on.
        verdicts.told(&client, start + MS(10), Some(MS(1990)), Some(true));
        for at in [500, 900] {
            let flags = verdicts.arrive(&client, start + MS(at));
            assert!(flags.early_by.is_some() && !flags.immediate && !flags.storm);
        }
        let fourth = verdicts.arrive(&client, start + MS(1000));
        assert!(fourth.storm, "the fourth request in the window is a storm");
        assert!(!verdicts.arrive(&client, start + MS(1100)).storm, "one storm a window");
        let tally = verdicts.report(10)[0].1;
        assert_eq!(tally.early_retries, 5);
        assert_eq!(tally.earliest_by, MS(1990));
        assert_eq!(tally.immediate_retries, 1);
        assert_eq!(tally.storms, 1);
        assert_eq!(tally.told, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_after_should_retry_false_is_counted() {
        let verdicts = Verdicts::default();
        let client = ClientKey { id: 3 };
        let start = Instant::now();
        verdicts.told(&client, start, None, Some(false));
        let flags = verdicts.arrive(&client, start + MS(200));
        assert!(flags.ignored_should_retry && flags.early_by.is_none());
        assert_eq!(flags.header().as_deref(), Some("ignored_should_retry"));
        let later = verdicts.arrive(&client, start + MS(1200));
        assert_eq!(
            later,
            Flags::default(),
            "after the window, no wait was given: not patient either"
        );
        verdicts.told(&client, start, None, Some(true));
        assert_eq!(verdicts.report(1)[0].1.told, 1, "telling nothing is not counted");
    }

    #[tokio::test(start_paused = true)]
    async fn clients_past_the_bound_are_not_followed() {
        let verdicts = Verdicts::default();
        let now = Instant::now();
        for id in 0..(MAX_CLIENTS as u64 + 5) {
            verdicts.told(&ClientKey { id }, now, Some(MS(100)), None);
        }
        assert_eq!(verdicts.report(usize::MAX).len(), MAX_CLIENTS);
    }
}
