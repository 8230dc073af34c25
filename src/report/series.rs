//! A run's time series: per bucket of time, the requests that arrived, how
//! they were answered, and the most in flight at once. Buckets start at one
//! second and double in width (pairs merged) whenever a run would need more
//! than [`MAX_POINTS`], so a run of any length keeps at most that many.

use std::time::Duration;

use serde_json::{Value, json};

/// The most points a series keeps.
pub(crate) const MAX_POINTS: usize = 600;

/// One bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Point {
    requests: u64,
    ok: u64,
    errors: u64,
    faults: u64,
    rate_limited: u64,
    shed: u64,
    peak_in_flight: u32,
}

impl Point {
    fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors += other.errors;
        self.faults += other.faults;
        self.rate_limited += other.rate_limited;
        self.shed += other.shed;
        self.peak_in_flight = self.peak_in_flight.max(other.peak_in_flight);
    }
}

/// Phase changes a series marks, at most.
pub(crate) const MAX_MARKS: usize = 100;

/// Buckets from the run's start.
#[derive(Debug, Default)]
pub(crate) struct Series {
    /// Bucket width in milliseconds (0 until the first point: then 1,000).
    width_ms: u64,
    points: Vec<Point>,
    /// When the `[timeline]` phase of arriving requests changed, and to what.
    phases: Vec<(Duration, Option<String>)>,
}

impl Series {
    fn point(&mut self, offset: Duration) -> &mut Point {
        if self.width_ms == 0 {
            self.width_ms = 1000;
        }
        let at = u64::try_from(offset.as_millis()).unwrap_or(u64::MAX);
        let mut index = at / self.width_ms;
        while index >= MAX_POINTS as u64 {
            let merged: Vec<Point> = self
                .points
                .chunks(2)
                .map(|pair| {
                    let mut point = pair[0];
                    if let Some(second) = pair.get(1) {
                        point.merge(second);
                    }
                    point
                })
                .collect();
            self.points = merged;
            self.width_ms = self.width_ms.saturating_mul(2);
            index = at / self.width_ms;
        }
        let index = usize::try_from(index).unwrap_or(MAX_POINTS - 1);
        if self.points.len() <= index {
            self.points.resize(index + 1, Point::default());
        }
        &mut self.points[index]
    }

    /// A request in `phase` arrived at `offset`: marked when the phase
    /// differs from the last one's.
    pub(crate) fn phase(&mut self, offset: Duration, phase: Option<&str>) {
        // Without a timeline there is nothing to mark.
        if phase.is_none() && self.phases.is_empty() {
            return;
        }
        let changed = self.phases.last().is_none_or(|(_, last)| last.as_deref() != phase);
        if changed && self.phases.len() < MAX_MARKS {
            self.phases.push((offset, phase.map(str::to_string)));
        }
    }

    /// A request arrived at `offset`, with `in_flight` in flight then.
    pub(crate) fn arrive(&mut self, offset: Duration, in_flight: u32) {
        let point = self.point(offset);
        point.requests += 1;
        point.peak_in_flight = point.peak_in_flight.max(in_flight);
    }

    /// A request was answered at `offset` with `outcome`.
    pub(crate) fn answered(&mut self, offset: Duration, outcome: &str, fault: bool) {
        let point = self.point(offset);
        match outcome {
            "ok" => point.ok += 1,
            "rate_limited" => point.rate_limited += 1,
            "shed" => point.shed += 1,
            "fault" => {}
            _ => point.errors += 1,
        }
        if fault {
            point.faults += 1;
        }
    }

    /// `{"bucket_s", "points": [{"t_s", ...}]}`.
    pub(crate) fn json(&self) -> Value {
        let width = self.width_ms.max(1000);
        let points: Vec<Value> = (0u64..)
            .zip(&self.points)
            .map(|(index, p)| {
                json!({
                    "t_s": index * width / 1000,
                    "requests": p.requests,
                    "ok": p.ok,
                    "errors": p.errors,
                    "faults": p.faults,
                    "rate_limited": p.rate_limited,
                    "shed": p.shed,
                    "peak_in_flight": p.peak_in_flight,
                })
            })
            .collect();
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|(at, phase)| json!({"t_s": super::seconds(*at), "phase": phase}))
            .collect();
        json!({"bucket_s": width / 1000, "points": points, "phases": phases})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_widen_to_keep_at_most_the_bound() {
        let mut series = Series::default();
        for second in 0..1500u64 {
            series.arrive(Duration::from_secs(second), 1);
        }
        let json = series.json();
        assert_eq!(json["bucket_s"], 4, "1 s, then 2 s at 600 s, then 4 s at 1200 s");
        let points = json["points"].as_array().unwrap();
        assert_eq!(points.len(), 375);
        assert_eq!(points[0]["requests"], 4);
        let total: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
        assert_eq!(total, 1500);
    }

    #[test]
    fn phase_changes_are_marked_once_each_and_none_without_a_timeline() {
        let mut series = Series::default();
        series.phase(Duration::ZERO, None);
        assert_eq!(series.json()["phases"], serde_json::json!([]));
        for (at, phase) in [(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "none")] {
            series.phase(Duration::from_secs(at), Some(phase));
        }
        let marks: Vec<(f64, String)> = series.json()["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["t_s"].as_f64().unwrap(), m["phase"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(marks, [(0.0, "a".into()), (2.0, "b".into()), (4.0, "none".into())]);
    }
}
