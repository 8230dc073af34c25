//! What happens to one request, decided once at its admission: which fault,
//! if any, fires. Pure and seeded: no clock, no I/O, no global generator; the
//! draws come from the request's own stream (`crate::shape::request_rng`).

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::Fault;

/// When a fault fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// When `error_rate` fires, drawn by weight among the random faults.
    Random,
    /// For the first `n` requests of its route (0 .. n-1).
    FirstRequests(u64),
    /// For every `n`-th request of its route (the n-th, 2n-th, ...).
    Every(u64),
    /// For requests that arrive between `from` and `until` after the epoch
    /// (`epoch`, shared by a fleet) or, without one, after start.
    Window {
        /// Start of the window.
        from: Duration,
        /// End of the window (exclusive).
        until: Duration,
    },
}

/// A fault, when it fires and (for random faults) its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedFault {
    /// Relative weight among random faults (> 0).
    pub weight: u32,
    /// The fault.
    pub fault: Fault,
    /// When it fires.
    pub schedule: Schedule,
}

/// Where a request stands, for schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RequestClock {
    /// Its number among its route's requests, from 0.
    pub route_request: u64,
    /// Time from the epoch (or sluice's start) to its arrival; `None`
    /// before the epoch, when no window is open yet.
    pub since_start: Option<Duration>,
}

/// What the shaper and the server must do to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FaultPlan {
    /// The fault that fires, if any.
    pub fault: Option<Fault>,
}

impl FaultPlan {
    /// The fault of one request: the first scheduled fault whose schedule
    /// covers `clock`, else, with probability `error_rate`, one random fault
    /// chosen by weight. Always takes the same two draws from `rng`, so what
    /// the request draws afterwards does not depend on the outcome.
    pub(crate) fn draw(
        error_rate: f64,
        faults: &[WeightedFault],
        clock: RequestClock,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let roll: f64 = rng.random();
        let ticket: u64 = rng.random();
        let scheduled = faults.iter().find(|f| match f.schedule {
            Schedule::Random => false,
            Schedule::FirstRequests(n) => clock.route_request < n,
            Schedule::Every(n) => n > 0 && (clock.route_request + 1).is_multiple_of(n),
            Schedule::Window { from, until } => {
                clock.since_start.is_some_and(|at| (from..until).contains(&at))
            }
        });
        if let Some(fault) = scheduled {
            return Self { fault: Some(fault.fault.clone()) };
        }
        let random = || faults.iter().filter(|f| f.schedule == Schedule::Random);
        let total: u64 = random().map(|f| u64::from(f.weight)).sum();
        if total == 0 || roll >= error_rate {
            return Self { fault: None };
        }
        let mut ticket = ticket % total;
        let chosen = random().find(|f| {
            let hit = ticket < u64::from(f.weight);
            ticket = ticket.saturating_sub(u64::from(f.weight));
            hit
        });
        Self { fault: chosen.map(|f| f.fault.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{HttpFault, Truncate};
    use crate::shape::request_rng;

    fn http_fault(status: u16) -> Fault {
        Fault::Http(HttpFault::plain(status))
    }

    fn http(status: u16, weight: u32) -> WeightedFault {
        WeightedFault { weight, fault: http_fault(status), schedule: Schedule::Random }
    }

    fn status_of(plan: &FaultPlan) -> Option<u16> {
        match &plan.fault {
            Some(Fault::Http(h)) => Some(h.status),
            Some(other) => panic!("unexpected {other:?}"),
            None => None,
        }
    }

    fn at(n: u64) -> RequestClock {
        RequestClock { route_request: n, since_start: Some(Duration::ZERO) }
    }

    #[test]
    fn the_same_seed_and_order_give_the_same_faults() {
        let mix = [http(529, 2), http(500, 1), http(429, 1)];
        let run = |seed| {
            (0..1000)
                .map(|n| status_of(&FaultPlan::draw(0.1, &mix, at(n), &mut request_rng(seed, n))))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn golden_fault_positions_for_seed_42() {
        let mix = [http(529, 2), http(500, 1), http(429, 1)];
        let fired: Vec<(u64, u16)> = (0..200)
            .filter_map(|n| {
                status_of(&FaultPlan::draw(0.05, &mix, at(n), &mut request_rng(42, n)))
                    .map(|s| (n, s))
            })
            .collect();
        assert_eq!(fired, GOLDEN_FAULTS_SEED_42);
    }
    const GOLDEN_FAULTS_SEED_42: [(u64, u16); 4] = [(53, 529), (68, 429), (95, 500), (148, 529)];

    #[test]
    fn observed_rate_is_within_four_standard_deviations() {
        let mix = [http(500, 1)];
        let n = 100_000u64;
        let p = 0.005;
        let fired = (0..n)
            .filter(|&i| FaultPlan::draw(p, &mix, at(i), &mut request_rng(1, i)).fault.is_some())
            .count() as f64;
        let expected = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!((fired - expected).abs() < 4.0 * sd, "fired {fired}, expected {expected} ± {sd}");
    }

    #[test]
    fn weights_share_the_faults() {
        let mix = [http(529, 3), http(500, 1)];
        let n = 40_000u64;
        let overloads = (0..n)
            .filter(|&i| {
                status_of(&FaultPlan::draw(1.0, &mix, at(i), &mut request_rng(3, i))) == Some(529)
            })
            .count() as f64;
        // Binomial(40000, 0.75): sd ≈ 87.
        assert!((overloads - 30_000.0).abs() < 4.0 * 87.0, "529 drawn {overloads} times");
    }

    #[test]
    fn no_rate_or_no_faults_means_no_fault() {
        let mut rng = request_rng(0, 0);
        assert_eq!(FaultPlan::draw(0.0, &[http(500, 1)], at(0), &mut rng).fault, None);
        assert_eq!(FaultPlan::draw(1.0, &[], at(0), &mut rng).fault, None);
        assert_eq!(FaultPlan::draw(1.0, &[http(500, 0)], at(0), &mut rng).fault, None);
    }

    fn scheduled(status: u16, schedule: Schedule) -> WeightedFault {
        WeightedFault { weight: 1, fault: http_fault(status), schedule }
    }

    #[test]
    fn schedules_fire_exactly_where_they_should() {
        let faults = [
            scheduled(529, Schedule::FirstRequests(2)),
            scheduled(500, Schedule::Every(5)),
            scheduled(
                503,
                Schedule::Window { from: Duration::from_secs(30), until: Duration::from_secs(40) },
            ),
        ];
        let fired: Vec<Option<u16>> = (0..12)
            .map(|n| status_of(&FaultPlan::draw(0.0, &faults, at(n), &mut request_rng(1, n))))
            .collect();
        let expected = [
            Some(529),
            Some(529),
            None,
            None,
            Some(500),
            None,
            None,
            None,
            None,
            Some(500),
            None,
            None,
        ];
        assert_eq!(fired, expected);

        let window = |secs: f64| {
            let clock =
                RequestClock { route_request: 2, since_start: Some(Duration::from_secs_f64(secs)) };
            status_of(&FaultPlan::draw(0.0, &faults, clock, &mut request_rng(1, 2)))
        };
        assert_eq!(
            [window(29.999), window(30.0), window(39.999), window(40.0)],
            [None, Some(503), Some(503), None]
        );
    }

    #[test]
    fn scheduled_faults_are_not_drawn_at_random() {
        let faults = [scheduled(529, Schedule::FirstRequests(1)), http(500, 1)];
        let after_first: Vec<Option<u16>> = (1..200)
            .map(|n| status_of(&FaultPlan::draw(1.0, &faults, at(n), &mut request_rng(1, n))))
            .collect();
        assert!(after_first.iter().all(|s| *s == Some(500)));
    }

    #[test]
    fn before_the_epoch_no_window_is_open() {
        let window = WeightedFault {
            weight: 1,
            fault: Fault::Truncate(Truncate { after_tokens: 0 }),
            schedule: Schedule::Window { from: Duration::ZERO, until: Duration::from_secs(10) },
        };
        let faults = [window];
        let at = |since_start| RequestClock { route_request: 0, since_start };
        let draw = |clock| FaultPlan::draw(0.0, &faults, clock, &mut request_rng(1, 0)).fault;
        assert_eq!(draw(at(None)), None);
        assert_eq!(
            draw(at(Some(Duration::ZERO))),
            Some(Fault::Truncate(Truncate { after_tokens: 0 }))
        );
        assert_eq!(draw(at(Some(Duration::from_secs(10)))), None);
    }
}
