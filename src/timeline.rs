//! The clock of `[timeline]` (docs/timeline.md): a task that moves the
//! live config from phase to phase, and step by step through each ramp.
//!
//! Where a timeline stands at an offset, and what a phase does to a config,
//! are pure functions in `config::timeline`; this module only says what the
//! offset is now (from the epoch, sluice's start, or `POST /timeline/start`)
//! and asks `Live::set_position` for the config of each new position, which
//! the layering function builds like any other (file < environment < flags
//! < phase < runtime overrides). A request reads the phase with the rest of
//! its snapshot at arrival, so nothing on the request path looks at the
//! clock. Offsets from the epoch agree across a fleet; an admin start is
//! this replica's alone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::app::{App, TimelineOrigin};
use crate::config::{Config, Position, TimelineStart};

/// The clock's task; stopped when dropped.
#[derive(Debug)]
pub(crate) struct TimelineTask(JoinHandle<()>);

impl Drop for TimelineTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the clock: it applies each new position as it comes, and looks
/// again whenever a config is applied (a reload may change the timeline)
/// or the origin is set by an admin call.
pub(crate) fn spawn(app: Arc<App>) -> TimelineTask {
    TimelineTask(tokio::spawn(async move {
        let applied = Arc::clone(app.live().applied());
        loop {
            let wait = advance(&app).await;
            let sleep = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = applied.notified() => {}
                () = app.timeline().moved().notified() => {}
            }
        }
    }))
}

/// The timeline's offset now: `None` when it has not started (an `admin`
/// start not called yet, a stop, or an epoch still to come).
fn offset(app: &App, config: &Config) -> Option<Duration> {
    match app.timeline().origin() {
        TimelineOrigin::Started(at) => Some(at.elapsed()),
        TimelineOrigin::Stopped => None,
        TimelineOrigin::Config => match config.timeline.as_ref()?.start {
            TimelineStart::Epoch => app.window_clock(config.epoch),
            TimelineStart::Admin => None,
        },
    }
}

/// Where the timeline stands at `offset`, and how long until it moves next.
fn at(config: &Config, offset: Option<Duration>) -> (Option<Position>, Option<Duration>) {
    let (Some(timeline), Some(offset)) = (config.timeline.as_ref(), offset) else {
        return (None, None);
    };
    let (position, next) = timeline.position_at(offset);
    (position, next.map(|next| next.saturating_sub(offset)))
}

/// Applies the position of now if the config in force has another one, and
/// says how long until the next change.
pub(crate) async fn advance(app: &App) -> Option<Duration> {
    let snapshot = app.live().snapshot();
    let (position, wait) = at(&snapshot.config, offset(app, &snapshot.config));
    if position != snapshot.position {
        let before = snapshot.phase.clone();
        app.live().set_position(position).await;
        let after = app.live().snapshot().phase.clone();
        if before != after {
            app.metrics().phase(before.as_deref(), after.as_deref());
        }
    }
    wait
}

/// `GET /timeline`: where the timeline stands.
pub(crate) fn report(app: &App) -> Value {
    let snapshot = app.live().snapshot();
    let config = &snapshot.config;
    let Some(timeline) = &config.timeline else {
        return json!({"timeline": null, "phase": null});
    };
    let offset = offset(app, config);
    let (_, wait) = at(config, offset);
    let origin = match app.timeline().origin() {
        TimelineOrigin::Config => timeline.start.as_str(),
        TimelineOrigin::Started(_) => "started",
        TimelineOrigin::Stopped => "stopped",
    };
    let position = snapshot.position;
    let phase = position.and_then(|p| timeline.phases.get(p.phase));
    json!({
        "origin": origin,
        "offset": offset.map(|o| format!("{o:?}")),
        "phase": snapshot.phase.as_deref(),
        "index": position.map(|p| p.phase),
        "ramp_step": position.zip(phase).map(|(p, phase)| json!([p.step, phase.steps()])),
        "next_change_in": wait.map(|w| format!("{w:?}")),
        "phases": timeline.phases.iter().map(|phase| json!({
            "name": phase.name,
            "at": format!("{:?}", phase.at),
            "ramp": format!("{:?}", phase.ramp),
        })).collect::<Vec<_>>(),
        "version": snapshot.version.to_string(),
    })
}
