//! `sluice profile DIR`: the timing of recorded streams, per model and path,
//! measured and written as `[profiles.NAME]` blocks and routes that a config
//! can take as they are (`docs/record-replay.md`).
//!
//! From each `200` SSE cassette: the time to the first content event (from
//! streams whose first content is text: one that opens with a tool call
//! pays the tool-call delay too, as sluice's own timing rule says), the gaps
//! between content events, the extra wait before each tool call (its gap
//! less the typical token gap, or its first-token time less the typical
//! first-token time), and the content events per response. A delay is
//! written as the log-normal with the measured p50 and p99, which is the
//! log-normal that fits those two quantiles exactly; a constant one as a
//! fixed duration.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::Cassette;
use super::replay::{MAX_CASSETTES, ReplayError, read_bounded};
use crate::dialect::Dialect;
use crate::framing::EventKind;
use crate::framing::Framing;

/// What one model on one path did across its recorded streams.
#[derive(Debug, Default)]
struct Measured {
    streams: usize,
    first_token: Vec<Duration>,
    tool_first: Vec<Duration>,
    gaps: Vec<Duration>,
    gaps_before_tools: Vec<Duration>,
    content_events: Vec<u64>,
}

/// The report of `sluice profile DIR`: a commented table of what was
/// measured, then TOML to paste into a config.
///
/// # Errors
/// When the folder or a cassette cannot be read.
pub fn report(dir: &Path) -> Result<String, ReplayError> {
    let mut groups: BTreeMap<(String, String), Measured> = BTreeMap::new();
    let (mut read, mut skipped) = (0usize, 0usize);
    let entries = std::fs::read_dir(dir)
        .map_err(|source| ReplayError::Read { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        // Regular files only, after following links: a FIFO would block.
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    if paths.len() > MAX_CASSETTES {
        return Err(ReplayError::TooMany(dir.to_path_buf()));
    }
    paths.sort();
    for path in paths {
        let text = read_bounded(&path)?;
        let cassette = Cassette::parse(&text)
            .map_err(|e| ReplayError::Invalid { path: path.clone(), message: e.to_string() })?;
        read += 1;
        let response = &cassette.head.response;
        let Some(framing) = cassette.framing().filter(|_| response.status == 200) else {
            skipped += 1;
            continue;
        };
        let model = cassette.model().unwrap_or("(no model)").to_string();
        let group = groups.entry((model, cassette.path().to_string())).or_default();
        measure(&cassette, framing, group);
    }
    let mut out = format!(
        "# sluice profile: {read} cassettes in {} ({skipped} skipped: not a 200 stream)\n",
        dir.display()
    );
    for ((model, path), measured) in &groups {
        write_group(&mut out, model, path, measured);
    }
    Ok(out)
}

fn measure(cassette: &Cassette, framing: Framing, into: &mut Measured) {
    let classify = Dialect::for_path(cassette.path()).classifier();
    let mut previous: Option<Duration> = None;
    let mut first_is_tool = false;
    let mut count = 0u64;
    for piece in &cassette.pieces {
        let kind = framing.kind_of(&piece.bytes, classify);
        if !kind.is_content() {
            continue;
        }
        count += 1;
        match previous {
            None => {
                first_is_tool = kind == EventKind::ToolStart;
                if first_is_tool {
                    into.tool_first.push(piece.at);
                } else {
                    into.first_token.push(piece.at);
                }
            }
            Some(before) => {
                let gap = piece.at.saturating_sub(before);
                if kind == EventKind::ToolStart {
                    into.gaps_before_tools.push(gap);
                } else {
                    into.gaps.push(gap);
                }
            }
        }
        previous = Some(piece.at);
    }
    into.streams += 1;
    if !first_is_tool && count > 0 {
        into.content_events.push(count);
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `812.345ms`, as the config reads it.
fn shown(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    let text = format!("{ms:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}ms")
}

/// A delay as config TOML: log-normal by p50 and p99, or fixed.
fn delay_toml(sorted: &[Duration]) -> Option<String> {
    let (p50, p99) = (quantile(sorted, 0.50)?, quantile(sorted, 0.99)?);
    if p50 == p99 || p50.is_zero() {
        return Some(format!("\"{}\"", shown(p50)));
    }
    Some(format!("{{ dist = \"lognormal\", p50 = \"{}\", p99 = \"{}\" }}", shown(p50), shown(p99)))
}

fn row_durations(out: &mut String, label: &str, sorted: &[Duration]) {
    let cell = |q| quantile(sorted, q).map_or_else(|| "-".to_string(), shown);
    let _ = writeln!(
        out,
        "#   {label:<18} {:>6} {:>12} {:>12} {:>12} {:>12}",
        sorted.len(),
        cell(0.50),
        cell(0.90),
        cell(0.99),
        sorted.last().map_or_else(|| "-".to_string(), |d| shown(*d)),
    );
}

fn write_group(out: &mut String, model: &str, path: &str, measured: &Measured) {
    let sort = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let first_token = sort(&measured.first_token);
    let gaps = sort(&measured.gaps);
    let typical_gap = quantile(&gaps, 0.5).unwrap_or_default();
    let typical_first = quantile(&first_token, 0.5).unwrap_or_default();
    let mut tools: Vec<Duration> =
        measured.gaps_before_tools.iter().map(|g| g.saturating_sub(typical_gap)).collect();
    tools.extend(measured.tool_first.iter().map(|t| t.saturating_sub(typical_first)));
    tools.sort();
    let mut events = measured.content_events.clone();
    events.sort_unstable();
    let _ = writeln!(out, "#\n# {model}, {path}: {} streams", measured.streams);
    let _ = writeln!(
        out,
        "#   {:<18} {:>6} {:>12} {:>12} {:>12} {:>12}",
        "", "n", "p50", "p90", "p99", "max"
    );
    row_durations(out, "first token", &first_token);
    row_durations(out, "token gap", &gaps);
    row_durations(out, "tool call delay", &tools);
    let count = |q| quantile(&events, q).map_or_else(|| "-".to_string(), |n| n.to_string());
    let _ = writeln!(
        out,
        "#   {:<18} {:>6} {:>12} {:>12} {:>12} {:>12}",
        "content events",
        events.len(),
        count(0.5),
        count(0.9),
        count(0.99),
        events.last().map_or_else(|| "-".to_string(), u64::to_string)
    );
    let name = profile_name(model);
    let _ = writeln!(out, "\n[profiles.{name}]");
    for (key, sorted) in [
        ("first_token_delay", &first_token),
        ("token_interval", &gaps),
        ("tool_call_delay", &tools),
    ] {
        if let Some(toml) = delay_toml(sorted) {
            let _ = writeln!(out, "{key} = {toml}");
        }
    }
    if let Some(p50) = quantile(&events, 0.5).filter(|n| (1..=100_000).contains(n)) {
        let _ = writeln!(out, "tokens_per_response = {p50}");
    }
    let _ = writeln!(out, "\n[[routes]]\nname = {name}\npath = {}", toml_string(path));
    if model != "(no model)" {
        let _ = writeln!(out, "model = {}", toml_string(model));
    }
    let _ = writeln!(out, "profile = {name}");
}

/// A quoted TOML string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The model as a quoted profile name.
fn profile_name(model: &str) -> String {
    let name: String = model
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(64)
        .collect();
    toml_string(if name.is_empty() { "recorded" } else { &name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&values, 1.0), Some(100));
        assert_eq!(quantile::<u32>(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.01), Some(7));
    }

    #[test]
    fn delays_are_written_as_the_config_reads_them() {
        let ms = Duration::from_millis;
        assert_eq!(shown(Duration::from_micros(812_345)), "812.345ms");
        assert_eq!(shown(ms(20)), "20ms");
        assert_eq!(delay_toml(&[ms(5), ms(5)]).as_deref(), Some("\"5ms\""));
        let spread: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(
            delay_toml(&spread).as_deref(),
            Some("{ dist = \"lognormal\", p50 = \"50ms\", p99 = \"99ms\" }")
        );
    }
}
