//! A replica's part in its fleet (`[fleet]`, docs/fleet.md), above the
//! store (`src/fleet/`) and beside the request path:
//! - every [`HEARTBEAT_EVERY`]: renew the heartbeat, adopt the fleet's
//!   generation, pay what was admitted and counted alone while the store
//!   was down, and write this replica's part of each live run's report;
//! - listen on the fleet's channel and apply what another replica's admin
//!   port changed (`PUT /faults`, `DELETE /faults`, runs, cleared limits);
//! - for the admin port: publish those changes, start runs with the fleet's
//!   ids, and put a run's report together from every replica's part.
//!
//! A store that does not answer never holds an admin call past `[fleet]
//! timeout`: the change is applied here, and the response says the fleet
//! was not told.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::app::App;
use crate::fleet::events::{self, Event, Heard};
use crate::fleet::{Fleet, HEARTBEAT_EVERY};
use crate::report::{MAX_RUNS, PROCESS_RUN, Run};

/// Parts of one run's report read from the store, at most.
const MAX_PARTS: usize = 1024;

/// The largest part read; a larger one is left out.
const MAX_PART_BYTES: usize = 16 * 1024 * 1024;

/// Runs ended this long ago still have their part written (the last
/// requests' answers land after the end).
const PARTS_AFTER_END: Duration = Duration::from_secs(10);

/// Starts the fleet's tasks for `app`, when it has `[fleet]`.
pub(crate) fn spawn(app: &Arc<App>) {
    let Some(fleet) = app.fleet().cloned() else { return };
    let (heard_tx, mut heard) = mpsc::channel(64);
    tokio::spawn(events::listen(Arc::clone(&fleet), heard_tx));
    let listening = Arc::clone(app);
    tokio::spawn(async move {
        while let Some(heard) = heard.recv().await {
            apply(&listening, heard).await;
        }
    });
    let beating = Arc::clone(app);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            beat(&beating, &fleet).await;
        }
    });
}

/// One heartbeat and what follows it.
async fn beat(app: &App, fleet: &Fleet) {
    match fleet.beat().await {
        Ok(beat) => {
            if beat.back || beat.renewed {
                resync(app, fleet, beat.renewed).await;
                fleet.places.write_counts(fleet).await;
            }
            fleet.limits.pay_debts(fleet).await;
            fleet.counts.pay_debts(fleet).await;
            fleet.places.give_back_spares(fleet).await;
            write_parts(app, fleet).await;
            if let Err(error) = events::publish(fleet, Event::Beat).await {
                fleet.failed("heartbeat", &error);
            }
        }
        Err(error) => fleet.failed("heartbeat", &error),
    }
}

/// Applies what another replica changed.
async fn apply(app: &App, heard: Heard) {
    let Some(fleet) = app.fleet() else { return };
    match heard {
        Heard::Resync => resync(app, fleet, false).await,
        Heard::Event(Event::Faults { text }) => apply_faults(app, Some(text)).await,
        Heard::Event(Event::FaultsCleared) => apply_faults(app, None).await,
        Heard::Event(Event::RunStarted { id, name }) => {
            if run_id_ok(&id) {
                app.runs().start_as(id, name.filter(|n| n.len() <= 512));
            }
        }
        Heard::Event(Event::RunEnded { id }) => {
            if let Some(run) = app.runs().end(&id) {
                write_part(app, fleet, &run).await;
            }
        }
        Heard::Event(Event::LimitsCleared { clears }) => {
            fleet.limits.cleared(clears);
            clear_local_limits(app).await;
        }
        Heard::Event(Event::Beat) => {}
    }
}

/// Brings the fleet's `PUT /faults` here: `None` clears it.
async fn apply_faults(app: &App, text: Option<String>) {
    let current = app.live().runtime_text();
    if current == text {
        return;
    }
    let patch = match text {
        Some(text) => match crate::config::parse_runtime_patch(&text) {
            Ok(patch) => Some((patch, text)),
            Err(error) => {
                warn!(%error, "the fleet's PUT /faults does not apply here; keeping this replica's");
                return;
            }
        },
        None => None,
    };
    let outcome = app.live().set_runtime(patch).await;
    info!(?outcome, "applied the fleet's live control");
}

/// Reads what may have been missed: the fleet's `PUT /faults`, its runs,
/// how often its buckets were cleared. After the store forgot everything
/// (`renewed`), this replica's overrides and open runs are written back
/// rather than cleared: an empty store is no one's `DELETE /faults`.
async fn resync(app: &App, fleet: &Fleet, renewed: bool) {
    match fleet.store().get(&fleet.key("rl:clears")).await {
        Ok(clears) => fleet.limits.cleared(clears.and_then(|c| c.parse().ok()).unwrap_or(0)),
        Err(error) => {
            fleet.failed("rate_limits", &error);
            return;
        }
    }
    match fleet.store().get(&fleet.key("faults")).await {
        Ok(None) if renewed => {
            if let Some(text) = app.live().runtime_text()
                && let Err(error) = fleet.store().set(&fleet.key("faults"), &text).await
            {
                fleet.failed("live_control", &error);
            }
        }
        Ok(text) => apply_faults(app, text).await,
        Err(error) => {
            fleet.failed("live_control", &error);
            return;
        }
    }
    if renewed {
        let (runs, _) = app.runs().list();
        for run in runs.iter().filter(|run| run.ended().is_none() && run.id() != PROCESS_RUN) {
            let meta = json!({"name": run.name(), "ended": false}).to_string();
            if let Err(error) = fleet.store().put_field(&fleet.key("runs"), run.id(), &meta).await {
                fleet.failed("runs", &error);
                return;
            }
        }
    }
    match fleet.store().fields(&fleet.key("runs")).await {
        Ok(runs) => {
            for (id, meta) in runs.into_iter().filter(|(id, _)| run_id_ok(id)).take(MAX_RUNS) {
                let meta: Value = serde_json::from_str(&meta).unwrap_or_default();
                let name = meta["name"].as_str().filter(|n| n.len() <= 512).map(str::to_string);
                let run = app.runs().start_as(id.clone(), name);
                if meta["ended"].as_bool() == Some(true) && run.ended().is_none() {
                    app.runs().end(&id);
                }
            }
        }
        Err(error) => fleet.failed("runs", &error),
    }
}

/// Whether `id`, read from the store or the channel, is one sluice gives:
/// `run-` and a number (and `@replica` for one started alone).
fn run_id_ok(id: &str) -> bool {
    id.len() <= 300 && id.starts_with("run-") && id.bytes().all(|b| b.is_ascii_graphic())
}

/// This replica's runs that are open or ended within [`PARTS_AFTER_END`].
fn live_runs(app: &App) -> Vec<Arc<Run>> {
    let (runs, _) = app.runs().list();
    runs.into_iter()
        .filter(|run| run.ended().is_none_or(|(at, _)| at.elapsed() <= PARTS_AFTER_END))
        .collect()
}

async fn write_parts(app: &App, fleet: &Fleet) {
    for run in live_runs(app) {
        if !write_part(app, fleet, &run).await {
            return;
        }
    }
}

/// Writes this replica's part of `run`: whether the store took it.
async fn write_part(app: &App, fleet: &Fleet, run: &Run) -> bool {
    let part = run.report(tokio::time::Instant::now(), &context(app));
    let key = fleet.key(&format!("run:{}", run.id()));
    match fleet.store().put_field(&key, fleet.replica(), &part.to_string()).await {
        Ok(()) => true,
        Err(error) => {
            fleet.failed("runs", &error);
            false
        }
    }
}

/// What a report says of the sluice that made it.
pub(crate) fn context(app: &App) -> Value {
    let snapshot = app.live().snapshot();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": snapshot.version.to_string(),
        "replica": snapshot.config.replica,
        "mode": if snapshot.upstream.is_some() { "proxy" } else { "mock" },
    })
}

/// What the fleet was told of an admin change: `null` without `[fleet]`,
/// else whether the other replicas were told.
fn told(
    fleet: &Fleet,
    result: Result<(), crate::fleet::store::StoreError>,
    what: &'static str,
) -> Value {
    match result {
        Ok(()) => json!({"told": true, "replicas_alive": fleet.replicas_alive()}),
        Err(error) => {
            fleet.failed(what, &error);
            json!({"told": false, "error": format!("the fleet's store did not answer ({error}): applied on this replica only")})
        }
    }
}

/// After `PUT /faults` (`Some`) or `DELETE /faults` (`None`) applied
/// here: the same on every replica.
pub(crate) async fn publish_faults(app: &App, text: Option<&str>) -> Value {
    let Some(fleet) = app.fleet() else { return Value::Null };
    let key = fleet.key("faults");
    let result = async {
        match text {
            Some(text) => {
                fleet.store().set(&key, text).await?;
                events::publish(fleet, Event::Faults { text: text.to_string() }).await
            }
            None => {
                fleet.store().delete(&key).await?;
                events::publish(fleet, Event::FaultsCleared).await
            }
        }
    }
    .await;
    told(fleet, result, "live_control")
}

/// `POST /runs`: a run with the fleet's next id, started on every replica
/// (here alone, with an id of this replica's, when the store is down).
pub(crate) async fn start_run(app: &App, name: Option<String>) -> (Arc<Run>, Value) {
    let Some(fleet) = app.fleet() else { return (app.runs().start(name), Value::Null) };
    let result = async {
        let number = fleet.store().count(&fleet.key("runs:next"), 1).await?;
        let id = format!("run-{number}");
        let meta = json!({"name": name, "ended": false}).to_string();
        fleet.store().put_field(&fleet.key("runs"), &id, &meta).await?;
        events::publish(fleet, Event::RunStarted { id: id.clone(), name: name.clone() }).await?;
        Ok(id)
    }
    .await;
    match result {
        Ok(id) => {
            let run = app.runs().start_as(id, name);
            (run, told(fleet, Ok(()), "runs"))
        }
        Err(error) => {
            let id = app.runs().local_id(fleet.replica());
            (app.runs().start_as(id, name), told(fleet, Err(error), "runs"))
        }
    }
}

/// `POST /runs/{id}/end` on this replica: the same on every replica, and
/// this replica's last part written.
pub(crate) async fn end_run(app: &App, run: &Run) -> Value {
    let Some(fleet) = app.fleet() else { return Value::Null };
    let id = run.id().to_string();
    let result = async {
        let meta = json!({"name": run.name(), "ended": true}).to_string();
        fleet.store().put_field(&fleet.key("runs"), &id, &meta).await?;
        events::publish(fleet, Event::RunEnded { id: id.clone() }).await
    }
    .await;
    write_part(app, fleet, run).await;
    told(fleet, result, "runs")
}

/// `DELETE /rate-limits` or a fresh run: every replica's buckets and
/// verdicts, and the fleet's buckets, start afresh.
pub(crate) async fn clear_limits(app: &App) -> Value {
    clear_local_limits(app).await;
    let Some(fleet) = app.fleet() else { return Value::Null };
    let result = async {
        let clears = fleet.store().count(&fleet.key("rl:clears"), 1).await?;
        fleet.limits.cleared(clears);
        events::publish(fleet, Event::LimitsCleared { clears }).await
    }
    .await;
    told(fleet, result, "rate_limits")
}

async fn clear_local_limits(app: &App) {
    app.limiter().clear();
    app.verdicts().clear();
    *app.rate_limit_report().lock().await = None;
}

/// `run`'s report: with `[fleet]`, every replica's part of it put together
/// (this replica's as of now, the others' as of their last heartbeat).
pub(crate) async fn report(app: &App, run: &Run) -> Value {
    let mine = run.report(tokio::time::Instant::now(), &context(app));
    let Some(fleet) = app.fleet() else { return mine };
    let key = fleet.key(&format!("run:{}", run.id()));
    let parts = async {
        fleet.store().put_field(&key, fleet.replica(), &mine.to_string()).await?;
        fleet.store().fields(&key).await
    }
    .await;
    match parts {
        Ok(parts) => {
            // Bounded: the store is a peer, and a part is a report's size.
            let mut parts: Vec<(String, Value)> = parts
                .into_iter()
                .take(MAX_PARTS)
                .filter(|(_, part)| part.len() <= MAX_PART_BYTES)
                .filter_map(|(replica, part)| Some((replica, serde_json::from_str(&part).ok()?)))
                .collect();
            parts.sort_by(|a, b| a.0.cmp(&b.0));
            crate::report::merge::merge(&parts)
        }
        Err(error) => {
            fleet.failed("runs", &error);
            let mut mine = mine;
            mine["sluice"]["fleet"] = json!(format!(
                "the fleet's store did not answer ({error}): this is this replica's part alone"
            ));
            mine
        }
    }
}
