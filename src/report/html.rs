//! The run report as one self-contained page (`GET /runs/{id}/report.html`):
//! the JSON report ([`super::Run::report`]) drawn as tables and inline SVG
//! plots, with no script and nothing fetched, so it opens anywhere and can
//! be attached to a CI run. Every string from a request (SDK names, client
//! labels, phases, routes) is escaped.

use std::fmt::Write;

use serde_json::Value;

/// The page for `report`.
pub(crate) fn render(report: &Value) -> String {
    let run = &report["run"];
    let title = format!(
        "sluice run {}{}",
        text(&run["id"]),
        run["name"].as_str().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    let mut page = String::with_capacity(32 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        page,
        "<p class=\"meta\">Started {} · {} · {:.1} s · sluice {} · config {}</p>",
        escape(&text(&run["started_at"])),
        run["ended_at"]
            .as_str()
            .map_or("still open".to_string(), |at| format!("ended {}", escape(at))),
        run["duration_s"].as_f64().unwrap_or(0.0),
        escape(&text(&report["sluice"]["version"])),
        escape(&text(&report["sluice"]["config"])),
    );
    verdicts(&mut page, report);
    totals(&mut page, report);
    page.push_str("<h2>Requests over time</h2>\n");
    page.push_str(&over_time(&report["series"]));
    page.push_str("<h2>First token and gaps, as released</h2>\n<div class=\"row\">");
    page.push_str(&histogram("First token (ms)", &report["histograms"]["first_token"], "ft"));
    page.push_str(&histogram("Gap between tokens (ms)", &report["histograms"]["gap"], "gap"));
    page.push_str(&histogram(
        "sluice's lateness against its plan (ms)",
        &report["histograms"]["lateness"],
        "late",
    ));
    page.push_str("</div>\n");
    let lateness = &report["timing"]["lateness_ms"];
    let _ = writeln!(
        page,
        "<p class=\"meta\">sluice's own lateness: p50 ≤ {} ms, p99 ≤ {} ms over {} tokens ({}).</p>",
        number(&lateness["p50"]),
        number(&lateness["p99"]),
        number(&lateness["count"]),
        if report["timing"]["trustworthy"].as_bool().unwrap_or(true) {
            "the timing above is sluice's schedule"
        } else {
            "over 2 ms at p99: sluice or its machine was overloaded, and the timing above includes its delay"
        }
    );
    page.push_str("<h2>Retries after each refusal</h2>\n");
    page.push_str(&retries(&report["retries"]));
    rows(&mut page, report);
    clients(&mut page, report);
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}\
th{background:#f4f4f4}.pass{color:#17702f;font-weight:600}.fail{color:#b3261e;font-weight:600}\
.meta{color:#555}.row{display:flex;gap:2em;flex-wrap:wrap}svg{background:#fbfbfb;border:1px solid #e4e4e4}\
.legend span{display:inline-block;margin-right:1em}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}";

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> String {
    value.as_f64().map_or("—".to_string(), |n| format!("{n}"))
}

/// `text` safe in HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verdicts(page: &mut String, report: &Value) {
    page.push_str("<h2>Verdicts</h2>\n<table id=\"verdicts\"><tr><th>Rule</th><th>Result</th><th>Count</th><th>Evidence</th></tr>\n");
    for verdict in report["verdicts"].as_array().into_iter().flatten() {
        let pass = verdict["pass"].as_bool().unwrap_or(true);
        let evidence: Vec<String> = verdict["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| escape(&e.to_string()))
            .collect();
        let _ = writeln!(
            page,
            "<tr><td title=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&text(&verdict["says"])),
            escape(&text(&verdict["rule"])),
            if pass { "pass" } else { "fail" },
            if pass { "PASS" } else { "FAIL" },
            number(&verdict["count"]),
            evidence.join("<br>")
        );
    }
    page.push_str("</table>\n");
}

fn totals(page: &mut String, report: &Value) {
    let totals = &report["totals"];
    page.push_str("<h2>What sluice did, and what the application did</h2>\n<table id=\"totals\">");
    let mut line = |name: &str, value: String| {
        let _ = writeln!(page, "<tr><th>{}</th><td>{}</td></tr>", escape(name), escape(&value));
    };
    line("Requests", number(&totals["requests"]));
    for (name, key) in [
        ("Outcomes", "outcomes"),
        ("Faults injected", "faults"),
        ("Rate-limit refusals", "rate_limited"),
    ] {
        let map = totals[key]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "));
        line(name, map.filter(|m| !m.is_empty()).unwrap_or_else(|| "none".to_string()));
    }
    line("Input tokens (estimate)", number(&totals["input_tokens"]));
    line("Output tokens", number(&totals["output_tokens"]));
    line("Streams the client left", number(&totals["abandoned_streams"]));
    let repeated = report["repeated_after_break"]["by_fault"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("after {k}: {v}")).collect::<Vec<_>>().join(", "));
    line(
        "Asked again after a broken stream",
        repeated.filter(|r| !r.is_empty()).unwrap_or_else(|| "none".to_string()),
    );
    let retries = &report["retries"];
    line(
        "Told to wait",
        format!(
            "{} times; {} patient retries",
            number(&retries["told"]),
            number(&retries["patient"])
        ),
    );
    page.push_str("</table>\n");
}

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 220.0;
const PAD: f64 = 36.0;

fn over_time(series: &Value) -> String {
    let points = series["points"].as_array().cloned().unwrap_or_default();
    let bucket = series["bucket_s"].as_f64().unwrap_or(1.0).max(1.0);
    let count = points.len().max(1) as f64;
    let get = |p: &Value, key: &str| p[key].as_f64().unwrap_or(0.0);
    let top = points
        .iter()
        .map(|p| get(p, "requests").max(get(p, "peak_in_flight")))
        .fold(1.0_f64, f64::max);
    let x = |i: f64| PAD + i * (WIDTH - 2.0 * PAD) / count;
    let y = |v: f64| HEIGHT - PAD - v * (HEIGHT - 2.0 * PAD) / top;
    let bar = (WIDTH - 2.0 * PAD) / count;
    let mut svg = format!(
        "<svg id=\"over-time\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" aria-label=\"requests per bucket and peak in flight\">"
    );
    axes(&mut svg, top, &format!("time ({bucket} s a bar)"));
    for (i, p) in points.iter().enumerate() {
        let i = i as f64;
        let mut base = 0.0;
        for (key, color) in [
            ("ok", "#4c9f70"),
            ("faults", "#e8a33d"),
            ("errors", "#c8553d"),
            ("rate_limited", "#7b61a8"),
            ("shed", "#3d6fc8"),
        ] {
            let value = get(p, key);
            if value > 0.0 {
                let _ = write!(
                    svg,
                    "<rect class=\"series {key}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{key}: {value}</title></rect>",
                    x(i),
                    y(base + value),
                    (bar - 1.0).max(0.5),
                    y(base) - y(base + value)
                );
                base += value;
            }
        }
    }
    // Each change of [timeline] phase, as a dashed line with its name.
    for mark in series["phases"].as_array().into_iter().flatten() {
        let at = mark["t_s"].as_f64().unwrap_or(0.0) / bucket;
        let name = mark["phase"].as_str().unwrap_or("none");
        let _ = write!(
            svg,
            "<line class=\"phase\" x1=\"{x:.1}\" y1=\"{PAD}\" x2=\"{x:.1}\" y2=\"{b}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"11\">{}</text>",
            escape(name),
            x = x(at),
            b = HEIGHT - PAD,
            tx = x(at) + 3.0,
            ty = PAD - 6.0,
        );
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i as f64) + bar / 2.0, y(get(p, "peak_in_flight"))))
        .collect();
    if !line.is_empty() {
        let _ = write!(
            svg,
            "<polyline class=\"series in-flight\" points=\"{}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\"/>",
            line.join(" ")
        );
    }
    svg.push_str("</svg>\n");
    svg.push_str(
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:#4c9f70\"></i>ok</span>\
         <span><i class=\"sw\" style=\"background:#e8a33d\"></i>fault injected</span>\
         <span><i class=\"sw\" style=\"background:#c8553d\"></i>error</span>\
         <span><i class=\"sw\" style=\"background:#7b61a8\"></i>rate limited</span>\
         <span><i class=\"sw\" style=\"background:#3d6fc8\"></i>shed</span>\
         <span>— most in flight</span></p>\n",
    );
    svg
}

fn axes(svg: &mut String, top: f64, label: &str) {
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#999\"/>\
         <text x=\"4\" y=\"{t}\" font-size=\"11\">{top}</text><text x=\"4\" y=\"{b}\" font-size=\"11\">0</text>\
         <text x=\"{PAD}\" y=\"{l}\" font-size=\"11\">{}</text>",
        escape(label),
        b = HEIGHT - PAD,
        r = WIDTH - PAD,
        t = PAD + 4.0,
        l = HEIGHT - 10.0,
    );
}

fn histogram(title: &str, buckets: &Value, id: &str) -> String {
    let buckets = buckets.as_array().cloned().unwrap_or_default();
    let (width, height) = (480.0, 200.0);
    let top = buckets.iter().filter_map(|b| b[1].as_f64()).fold(1.0_f64, f64::max);
    let count = buckets.len().max(1) as f64;
    let bar = (width - 2.0 * PAD) / count;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg id=\"hist-{id}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\">",
        escape(title)
    );
    for (i, b) in buckets.iter().enumerate() {
        let n = b[1].as_f64().unwrap_or(0.0);
        let h = n * (height - 2.0 * PAD) / top;
        let le = b[0].as_f64().map_or("more".to_string(), |le| format!("≤ {le} ms"));
        let _ = write!(
            svg,
            "<rect class=\"series bucket\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3d6fc8\"><title>{}: {n}</title></rect>",
            PAD + i as f64 * bar,
            height - PAD - h,
            (bar - 1.0).max(0.5),
            h,
            escape(&le)
        );
    }
    if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
        let _ = write!(
            svg,
            "<text x=\"{PAD}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            height - 12.0,
            escape(&text(&first[0])),
            width - PAD,
            height - 12.0,
            escape(&text(&last[0]))
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn retries(retries: &Value) -> String {
    let events = retries["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        return "<p class=\"meta\" id=\"retries\">No client was told to wait in this run.</p>\n"
            .to_string();
    }
    let shown: Vec<&Value> = events.iter().take(60).collect();
    // The last of: each next request, and each wait's end.
    let end = shown
        .iter()
        .flat_map(|e| {
            let told = e["told_at_s"].as_f64();
            let waited = told.zip(e["retry_after_s"].as_f64()).map(|(t, w)| t + w);
            [e["next_at_s"].as_f64(), told, waited]
        })
        .flatten()
        .fold(0.001_f64, f64::max);
    let start = shown.iter().filter_map(|e| e["told_at_s"].as_f64()).fold(end, f64::min);
    let span = (end - start).max(0.001);
    let row = 12.0;
    let height = PAD + row * shown.len() as f64 + 10.0;
    let x = |t: f64| PAD + (t - start) * (WIDTH - 2.0 * PAD) / span;
    let mut svg = format!(
        "<svg id=\"retries\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"each refusal, its retry-after, and the next request\">"
    );
    for (i, e) in shown.iter().enumerate() {
        let y = PAD / 2.0 + row * i as f64;
        let told = e["told_at_s"].as_f64().unwrap_or(start);
        if let Some(wait) = e["retry_after_s"].as_f64() {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"#ddd\"><title>retry-after {wait} s</title></rect>",
                x(told),
                y - 3.0,
                (x(told + wait) - x(told)).max(1.0)
            );
        }
        let verdict = e["verdict"].as_str().unwrap_or("no retry seen");
        let color = if verdict.contains("early")
            || verdict.contains("immediate")
            || verdict.contains("storm")
            || verdict.contains("ignored")
        {
            "#c8553d"
        } else {
            "#4c9f70"
        };
        let _ = write!(
            svg,
            "<circle class=\"series told\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#222\"><title>{} told {} at {told} s</title></circle>",
            x(told),
            escape(&text(&e["client"])),
            escape(&text(&e["status"]))
        );
        if let Some(next) = e["next_at_s"].as_f64() {
            let _ = write!(
                svg,
                "<circle class=\"series retry\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{color}\"><title>next request at {next} s: {}</title></circle>",
                x(next),
                escape(verdict)
            );
        }
    }
    svg.push_str("</svg>\n<p class=\"legend\"><span>● told to wait</span><span><i class=\"sw\" style=\"background:#ddd\"></i>retry-after</span>\
                  <span><i class=\"sw\" style=\"background:#4c9f70\"></i>retried in time</span><span><i class=\"sw\" style=\"background:#c8553d\"></i>early, immediate or a storm</span></p>\n");
    svg
}

fn rows(page: &mut String, report: &Value) {
    page.push_str("<h2>By route, API and phase</h2>\n<table id=\"rows\"><tr><th>Route</th><th>API</th><th>Phase</th><th>Requests</th><th>Outcomes</th><th>Faults</th></tr>\n");
    for row in report["rows"].as_array().into_iter().flatten() {
        let map = |key: &str| {
            row[key].as_object().map_or(String::new(), |m| {
                m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
            })
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(&row["route"])),
            escape(&text(&row["api"])),
            escape(&text(&row["phase"])),
            number(&row["requests"]),
            escape(&map("outcomes")),
            escape(&map("faults"))
        );
    }
    page.push_str("</table>\n");
}

fn clients(page: &mut String, report: &Value) {
    page.push_str("<h2>Clients, by SDK</h2>\n<table id=\"clients\"><tr><th>SDK</th><th>Version</th><th>Requests</th></tr>\n");
    for client in report["clients"].as_array().into_iter().flatten() {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(&client["sdk"])),
            escape(&text(&client["version"])),
            number(&client["requests"])
        );
    }
    page.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_from_requests_are_escaped() {
        let report = serde_json::json!({
            "run": {"id": "run-1", "name": "<script>alert(1)</script>", "started_at": "x", "duration_s": 1.0},
            "clients": [{"sdk": "<img src=x onerror=alert(1)>", "version": "\"'", "requests": 1}],
            "series": {"bucket_s": 1, "points": [{"requests": 2, "ok": 2, "peak_in_flight": 1}]},
        });
        let page = render(&report);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&quot;&#39;"));
    }
}
