//! One report from every replica's part of a run (`[fleet]`, docs/fleet.md):
//! counts add, histograms add bucket by bucket (and their quantiles are
//! read again from the sum), time series add point by point, evidence is
//! pooled up to its bound. Each part is a report as [`super::Run::report`]
//! makes it, so a fleet's report has the same schema as a replica's.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{MAX_EVENTS, MAX_EXAMPLES};

/// Adds `from` into `into`: numbers add, objects add key by key; anything
/// else keeps `into`'s value.
fn add(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Number(a), Value::Number(b)) => {
            *a = match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => x.saturating_add(y).into(),
                _ => serde_json::Number::from_f64(
                    a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0),
                )
                .unwrap_or_else(|| 0.into()),
            };
        }
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(key) {
                    Some(slot) => add(slot, value),
                    None => {
                        a.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (slot @ Value::Null, value) => *slot = value.clone(),
        _ => {}
    }
}

/// `[[le, count], ...]` of every part added by bound (`null`, past the last, last).
fn add_buckets(parts: &[&Value]) -> Vec<(Option<f64>, u64)> {
    let mut sum: BTreeMap<u64, (Option<f64>, u64)> = BTreeMap::new();
    for part in parts {
        for bucket in part.as_array().into_iter().flatten() {
            let le = bucket.get(0).and_then(Value::as_f64);
            let count = bucket.get(1).and_then(Value::as_u64).unwrap_or(0);
            // Bounds are the same on every replica: order by them as bits.
            let order = le.map_or(u64::MAX, |le| (le * 1000.0) as u64);
            let entry = sum.entry(order).or_insert((le, 0));
            entry.1 = entry.1.saturating_add(count);
        }
    }
    sum.into_values().collect()
}

/// `{"count", "p50", "p90", "p99"}` from summed buckets, as `Histogram::summary`.
fn summary(buckets: &[(Option<f64>, u64)]) -> Value {
    let total: u64 = buckets.iter().map(|(_, count)| count).sum();
    let quantile = |q: f64| -> Option<f64> {
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (le, count) in buckets {
            seen += count;
            if seen >= rank {
                return *le;
            }
        }
        None
    };
    json!({"count": total, "p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99)})
}

/// Rows added by route, API and phase.
fn rows(parts: &[&Value]) -> Value {
    let mut rows: BTreeMap<String, Value> = BTreeMap::new();
    for part in parts {
        for row in part["rows"].as_array().into_iter().flatten().filter(|row| row.is_object()) {
            let key = format!("{}\u{0}{}\u{0}{}", row["route"], row["api"], row["phase"]);
            match rows.get_mut(&key) {
                Some(sum) => {
                    let mut counts = row.clone();
                    if let Some(counts) = counts.as_object_mut() {
                        for label in ["route", "api", "phase"] {
                            counts.remove(label);
                        }
                    }
                    add(sum, &counts);
                }
                None => {
                    rows.insert(key, row.clone());
                }
            }
        }
    }
    Value::Array(rows.into_values().collect())
}

/// Series added point by point, at the widest part's bucket width.
fn series(parts: &[&Value]) -> Value {
    let width =
        parts.iter().filter_map(|p| p["series"]["bucket_s"].as_u64()).max().unwrap_or(1).max(1);
    let mut points: BTreeMap<u64, Value> = BTreeMap::new();
    for part in parts {
        for point in part["series"]["points"].as_array().into_iter().flatten() {
            let at = point["t_s"].as_u64().unwrap_or(0) / width * width;
            if !point.is_object() {
                continue;
            }
            let mut point = point.clone();
            point["t_s"] = json!(at);
            match points.get_mut(&at) {
                Some(sum) => add(sum, &point),
                None => {
                    points.insert(at, point);
                }
            }
        }
    }
    // `add` summed t_s too: put it back.
    let points: Vec<Value> = points
        .into_iter()
        .map(|(at, mut point)| {
            point["t_s"] = json!(at);
            point
        })
        .collect();
    let phases = parts.first().map_or(Value::Array(Vec::new()), |p| p["series"]["phases"].clone());
    json!({"bucket_s": width, "points": points, "phases": phases})
}

/// Lists of `{key: ..., count_field: n}` added by `key`s.
fn add_by(parts: &[&Value], list: &str, keys: &[&str], count: &str) -> Value {
    let mut sum: BTreeMap<String, Value> = BTreeMap::new();
    for part in parts {
        for item in part[list].as_array().into_iter().flatten().filter(|item| item.is_object()) {
            let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
            let entry = sum.entry(key.join("\u{0}")).or_insert_with(|| {
                let mut first = item.clone();
                first[count] = json!(0);
                first
            });
            entry[count] =
                json!(entry[count].as_u64().unwrap_or(0) + item[count].as_u64().unwrap_or(0));
        }
    }
    Value::Array(sum.into_values().collect())
}

/// The verdicts of every part: counts added, evidence pooled.
fn verdicts(parts: &[&Value]) -> Value {
    let Some(first) = parts.first() else { return Value::Array(Vec::new()) };
    let merged: Vec<Value> = first["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|verdict| verdict.is_object())
        .map(|verdict| {
            let kind = &verdict["kind"];
            let same = || {
                parts
                    .iter()
                    .flat_map(|p| p["verdicts"].as_array().into_iter().flatten())
                    .filter(|v| &v["kind"] == kind)
            };
            let count: u64 = same().map(|v| v["count"].as_u64().unwrap_or(0)).sum();
            let evidence: Vec<Value> = same()
                .flat_map(|v| v["evidence"].as_array().cloned().unwrap_or_default())
                .take(MAX_EXAMPLES)
                .collect();
            let mut verdict = verdict.clone();
            verdict["count"] = json!(count);
            verdict["pass"] = json!(count == 0);
            verdict["evidence"] = json!(evidence);
            verdict
        })
        .collect();
    Value::Array(merged)
}

/// `part` with every object the merge writes into an object: a part is
/// read from the store, and a field of another shape is dropped rather
/// than trusted.
fn normalized(part: &Value) -> Value {
    let mut part = if part.is_object() { part.clone() } else { json!({}) };
    for field in
        ["run", "sluice", "totals", "timing", "retries", "series", "histograms", "abandoned"]
    {
        if !part[field].is_object() {
            part[field] = json!({});
        }
    }
    for field in ["first_token_ms", "gap_ms", "lateness_ms"] {
        if !part["timing"][field].is_object() {
            part["timing"][field] = json!({});
        }
    }
    if !part["repeated_after_break"].is_object() {
        part["repeated_after_break"] = json!({});
    }
    part
}

/// The run's report from `parts` (replica name, its part), as one report,
/// with `replicas` saying whose parts it holds. Parts of another shape than
/// a report's add nothing where they differ; nothing in them panics.
pub(crate) fn merge(parts: &[(String, Value)]) -> Value {
    let parts: Vec<(String, Value)> =
        parts.iter().map(|(name, part)| (name.clone(), normalized(part))).collect();
    let values: Vec<&Value> = parts.iter().map(|(_, part)| part).collect();
    let Some(first) = values.first() else { return Value::Null };
    let mut report = (*first).clone();
    // The run: earliest start, latest end (if every part ended), sums in flight.
    let started = values.iter().filter_map(|p| p["run"]["started_at"].as_str()).min();
    report["run"]["started_at"] = json!(started);
    let ended: Option<Vec<&str>> = values.iter().map(|p| p["run"]["ended_at"].as_str()).collect();
    report["run"]["ended_at"] = json!(ended.and_then(|e| e.into_iter().max()));
    let longest = values.iter().filter_map(|p| p["run"]["duration_s"].as_f64()).fold(0.0, f64::max);
    report["run"]["duration_s"] = json!(longest);
    let in_flight: u64 = values.iter().filter_map(|p| p["run"]["in_flight"].as_u64()).sum();
    report["run"]["in_flight"] = json!(in_flight);
    let mut totals = Value::Object(Map::new());
    for part in &values {
        add(&mut totals, &part["totals"]);
    }
    report["totals"] = totals;
    report["rows"] = rows(&values);
    let mut histograms = Map::new();
    let mut timing = first["timing"].clone();
    for (name, summary_key) in
        [("first_token", "first_token_ms"), ("gap", "gap_ms"), ("lateness", "lateness_ms")]
    {
        let each: Vec<&Value> = values.iter().map(|p| &p["histograms"][name]).collect();
        let buckets = add_buckets(&each);
        timing[summary_key] = summary(&buckets);
        histograms.insert(
            name.to_string(),
            json!(buckets.iter().map(|(le, n)| json!([le, n])).collect::<Vec<_>>()),
        );
    }
    let lateness_p99 = timing["lateness_ms"]["p99"].as_f64();
    timing["trustworthy"] = json!(lateness_p99.is_none_or(|p99| p99 <= 2.0));
    report["timing"] = timing;
    report["histograms"] = Value::Object(histograms);
    report["series"] = series(&values);
    report["clients"] = add_by(&values, "clients", &["sdk", "version"], "requests");
    let mut retries = json!({"told": 0, "patient": 0, "events_dropped": 0});
    let mut events: Vec<Value> = Vec::new();
    for part in &values {
        for field in ["told", "patient", "events_dropped"] {
            add(&mut retries[field], &part["retries"][field]);
        }
        events.extend(part["retries"]["events"].as_array().cloned().unwrap_or_default());
    }
    events.sort_by(|a, b| {
        let at = |e: &Value| e["told_at_s"].as_f64().unwrap_or(0.0);
        at(a).total_cmp(&at(b))
    });
    if events.len() > MAX_EVENTS {
        let over = (events.len() - MAX_EVENTS) as u64;
        retries["events_dropped"] = json!(retries["events_dropped"].as_u64().unwrap_or(0) + over);
        events.truncate(MAX_EVENTS);
    }
    retries["events"] = json!(events);
    report["retries"] = retries;
    report["verdicts"] = verdicts(&values);
    let mut by_fault = Value::Object(Map::new());
    let mut evidence = Vec::new();
    let mut abandoned = Value::Object(Map::new());
    for part in &values {
        add(&mut by_fault, &part["repeated_after_break"]["by_fault"]);
        evidence.extend(
            part["repeated_after_break"]["evidence"].as_array().cloned().unwrap_or_default(),
        );
        add(&mut abandoned, &part["abandoned"]);
    }
    evidence.truncate(MAX_EXAMPLES);
    report["repeated_after_break"] = json!({"by_fault": by_fault, "evidence": evidence});
    report["abandoned"] = abandoned;
    report["sluice"]["replicas"] = json!(
        parts
            .iter()
            .map(|(name, part)| json!({
                "replica": name,
                "requests": part["totals"]["requests"],
                "ended": !part["run"]["ended_at"].is_null(),
            }))
            .collect::<Vec<_>>()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(requests: u64, first_token: &[(f64, u64)], ended: Option<&str>) -> Value {
        json!({
            "schema": "sluice.run-report.v1",
            "run": {"id": "run-1", "name": "t", "started_at": "2026-12-07T10:00:00.000Z", "ended_at": ended, "duration_s": 10.0, "in_flight": 1},
            "sluice": {"replica": "a"},
            "totals": {"requests": requests, "outcomes": {"ok": requests - 1, "fault": 1}, "faults": {"http": 1}, "rate_limited": {}, "input_tokens": 10, "output_tokens": 20, "abandoned_streams": 0},
            "rows": [{"route": "default", "api": "messages", "phase": null, "requests": requests, "outcomes": {"ok": requests - 1, "fault": 1}, "faults": {"http": 1}, "rate_limited": {}, "input_tokens": 10, "output_tokens": 20}],
            "timing": {"first_token_ms": {}, "gap_ms": {}, "lateness_ms": {}, "trustworthy": true},
            "series": {"bucket_s": 1, "points": [{"t_s": 0, "requests": requests, "ok": requests, "errors": 0, "faults": 0, "rate_limited": 0, "shed": 0, "peak_in_flight": 2}], "phases": []},
            "clients": [{"sdk": "python", "version": "1.0", "requests": requests}],
            "retries": {"told": 1, "patient": 0, "events": [{"told_at_s": 1.0}], "events_dropped": 0},
            "verdicts": [{"rule": "no_early_retries", "kind": "early_retry", "pass": true, "count": 0, "says": "", "evidence": []}],
            "repeated_after_break": {"by_fault": {"reset": 1}, "evidence": []},
            "abandoned": {"streams": 0, "after_tokens": {"0": 0}, "after_seconds": {"<1": 0}},
            "histograms": {"first_token": first_token.iter().map(|(le, n)| json!([le, n])).collect::<Vec<_>>(), "gap": [], "lateness": []},
        })
    }

    #[test]
    fn parts_add_up_to_one_report() {
        let parts = vec![
            (
                "a".to_string(),
                part(10, &[(100.0, 9), (125.0, 1)], Some("2026-12-07T10:00:10.000Z")),
            ),
            ("b".to_string(), part(20, &[(100.0, 20)], Some("2026-12-07T10:00:11.000Z"))),
            ("c".to_string(), part(30, &[(125.0, 30)], None)),
        ];
        let report = merge(&parts);
        assert_eq!(report["totals"]["requests"], 60);
        assert_eq!(report["totals"]["outcomes"]["ok"], 57);
        assert_eq!(report["totals"]["faults"]["http"], 3);
        assert_eq!(report["rows"].as_array().unwrap().len(), 1);
        assert_eq!(report["rows"][0]["requests"], 60);
        assert_eq!(report["rows"][0]["route"], "default");
        assert_eq!(report["timing"]["first_token_ms"]["count"], 60);
        // 29 of 60 at <= 100 ms: the median is in the 125 ms bucket.
        assert_eq!(report["timing"]["first_token_ms"]["p50"], 125.0);
        assert_eq!(report["histograms"]["first_token"], json!([[100.0, 29], [125.0, 31]]));
        assert_eq!(report["series"]["points"][0]["requests"], 60);
        assert_eq!(report["series"]["points"][0]["t_s"], 0);
        assert_eq!(report["series"]["points"][0]["peak_in_flight"], 6);
        assert_eq!(report["clients"], json!([{"sdk": "python", "version": "1.0", "requests": 60}]));
        assert_eq!(report["retries"]["told"], 3);
        assert_eq!(report["retries"]["events"].as_array().unwrap().len(), 3);
        assert_eq!(report["repeated_after_break"]["by_fault"]["reset"], 3);
        assert_eq!(report["run"]["in_flight"], 3);
        // One part has not ended: neither has the fleet's run.
        assert_eq!(report["run"]["ended_at"], Value::Null);
        assert_eq!(report["sluice"]["replicas"].as_array().unwrap().len(), 3);
        assert_eq!(report["verdicts"][0]["count"], 0);
        assert_eq!(report["verdicts"][0]["pass"], true);
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-z_0-9<]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("run".to_string()),
                Just("totals".to_string()),
                Just("rows".to_string()),
                Just("series".to_string()),
                Just("points".to_string()),
                Just("histograms".to_string()),
                Just("first_token".to_string()),
                Just("verdicts".to_string()),
                Just("clients".to_string()),
                Just("retries".to_string()),
                Just("events".to_string()),
                Just("timing".to_string()),
                Just("requests".to_string()),
                Just("t_s".to_string()),
                Just("kind".to_string()),
                "[a-z]{1,3}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Parts come from the store: whatever shape they have, merging them
        /// makes a report and never panics.
        #[test]
        fn any_parts_merge_without_panicking(
            parts in proptest::collection::vec(arbitrary_json(), 0..4),
            good in proptest::bool::ANY,
        ) {
            let mut named: Vec<(String, Value)> =
                parts.into_iter().enumerate().map(|(i, p)| (i.to_string(), p)).collect();
            if good {
                named.push(("z".to_string(), part(3, &[(100.0, 3)], None)));
            }
            let report = merge(&named);
            proptest::prop_assert!(named.is_empty() || report.is_object());
        }
    }
}
