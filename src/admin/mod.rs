//! The admin listener (default `127.0.0.1:9090`; `[admin]` in the config):
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}` while the process runs |
//! | `GET /ready` | 200 while serving, 503 once shutdown has begun |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//! | `GET /config` | the effective config, defaults filled in, secrets redacted, with its version |
//! | `POST /reload` | reads the config file again: `applied`, `unchanged`, or 422 `rejected` with the reason |
//! | `PUT /faults` | runtime overrides: a JSON object of default-profile knobs, on top of the file |
//! | `DELETE /faults` | clears the runtime overrides |
//! | `GET /rate-limits` | the `[rate_limits]` buckets' levels and each client's verdict ([`rate_limit_report`]) |
//! | `DELETE /rate-limits` | forgets every bucket and verdict: every key starts full and clean |
//! | `GET /capacity` | each `[capacity]` route's requests in service and queued, now |
//! | `GET /timeline` | where `[timeline]` stands: its phase, offset and next change |
//! | `POST /timeline/start` | starts the timeline now (offset 0), whatever its `start` |
//! | `DELETE /timeline` | stops it: the baseline is in force until a start |
//! | `POST /runs` | starts a run (`{"name": ...}` optional): its requests are reported together |
//! | `GET /runs` | the runs kept |
//! | `POST /runs/{id}/end` | ends a run |
//! | `GET /runs/{id}/report`, `.../report.html` | the run's report, as JSON or as a page (docs/report.md) |
//!
//! With `token` set, every request needs `Authorization: Bearer <token>`,
//! but for `GET /health` and `GET /ready` (the platform's probes carry none).
//! Runtime overrides survive file reloads (they are layered on every load)
//! and go with a restart.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::app::App;
use crate::config::{describe, parse_runtime_patch};
use crate::listener::connection::{self, ClientIo, Tracked};
use crate::listener::{Accepted, Listener, WhenFull};
use crate::live::Reload;

type AdminBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Admin connections open at once, at most.
const MAX_ADMIN_CONNECTIONS: usize = 64;
/// How long a new admin connection waits for the idle one shed for it to close.
const SHED_WAIT: Duration = Duration::from_secs(1);

/// Serves the admin endpoints on `listener` until `stop` is cancelled;
/// `draining` (shutdown has begun) turns `/ready` to 503.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    draining: CancellationToken,
    stop: CancellationToken,
) {
    // Admin clients are a scraper, a script or two: a small cap is plenty,
    // and keeps a flood of them from taking fds the API listener needs. At
    // the cap the longest-idle one makes room, so idle keep-alive
    // connections cannot lock the admin port out.
    let when_full = WhenFull::ShedIdle(SHED_WAIT);
    let mut listener = Listener::new(
        listener,
        "admin",
        MAX_ADMIN_CONNECTIONS,
        when_full,
        CancellationToken::new(),
    );
    loop {
        let Accepted { tcp, peer, state, close, slot } = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let io = ClientIo::new(tcp, None, Arc::clone(&state));
        let live = Arc::clone(app.live());
        let app = Arc::clone(&app);
        let draining = draining.clone();
        let requests = Arc::clone(&state);
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            let draining = draining.clone();
            let in_flight = requests.request_started(false);
            async move {
                let response = answer(&app, &draining, request).await;
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
            }
        });
        tokio::spawn(async move {
            let connection = http1::Builder::new().serve_connection(TokioIo::new(io), service);
            let limits = || live.snapshot().config.limits;
            if let Err(error) = connection::watch(connection, state, limits, Some(close)).await {
                debug!(%peer, %error, "admin connection ended with an error");
            }
            drop(slot);
        });
    }
}

/// Sets of buckets and clients listed at most (the fullest buckets and the
/// most misbehaved clients first); the totals count every client.
const REPORT_AT_MOST: usize = 1000;

/// Past this many bucket sets and clients, the report walks enough of them to
/// cost a noticeable share of a core, so it is made at most once a
/// [`REPORT_FRESH`], however many pollers ask (`docs/rate-limits.md`).
const REPORT_CACHED_PAST: usize = 1000;
/// How long a report of a large map is served before it is made again.
const REPORT_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The rate-limit report, made again only when the last is older than
/// [`REPORT_FRESH`] for a large map; one poller makes it, the others wait.
async fn bounded_rate_limit_report(app: &App) -> Arc<Value> {
    let large = app.limiter().held().saturating_add(app.verdicts().held()) > REPORT_CACHED_PAST;
    let mut cached = app.rate_limit_report().lock().await;
    let now = tokio::time::Instant::now();
    if let (true, Some((made, report))) = (large, cached.as_ref())
        && now.saturating_duration_since(*made) < REPORT_FRESH
    {
        return Arc::clone(report);
    }
    let report = Arc::new(rate_limit_report(app));
    *cached = Some((now, Arc::clone(&report)));
    report
}

/// `GET /rate-limits`: every bucket set's levels now, and the verdict on
/// each client (`docs/rate-limits.md`). Clients are named by a hash of
/// their key (`key:` and 12 hex digits of its SHA-256), never the key.
fn rate_limit_report(app: &App) -> Value {
    use crate::ratelimit::{LimitKind, verdict};
    let now = tokio::time::Instant::now();
    let buckets: Vec<Value> = app
        .limiter()
        .report(REPORT_AT_MOST, now)
        .into_iter()
        .map(|set| {
            let mut out = json!({"route": set.route, "client": set.client.label()});
            if !set.model.is_empty() {
                out["model"] = json!(set.model);
            }
            for kind in LimitKind::ALL {
                if let Some(level) = set.levels.get(kind) {
                    out[kind.label()] = json!({
                        "limit": level.limit,
                        "remaining": level.remaining,
                        "full_in_ms": crate::ratelimit::headers::millis_up(level.until_full),
                    });
                }
            }
            out
        })
        .collect();
    let tally_json = |tally: &verdict::Tally| {
        json!({
            "requests": tally.requests,
            "told_to_wait": tally.told,
            "early_retries": tally.early_retries,
            "earliest_by_ms": crate::ratelimit::headers::millis_up(tally.earliest_by),
            "immediate_retries": tally.immediate_retries,
            "retry_storms": tally.storms,
            "ignored_should_retry": tally.ignored_should_retry,
            "patient_retries": tally.patient_retries,
        })
    };
    let all = app.verdicts().report(usize::MAX);
    let mut totals = verdict::Tally::default();
    for (_, tally) in &all {
        totals.merge(tally);
    }
    let clients: Vec<Value> = all
        .iter()
        .take(REPORT_AT_MOST)
        .map(|(client, tally)| {
            let mut out = tally_json(tally);
            out["client"] = json!(client.label());
            out
        })
        .collect();
    let fleet = app.fleet().map(|fleet| {
        json!({
            "sets_leased": fleet.limits.held(),
            "says": "the fleet's buckets are in its store (docs/fleet.md); `buckets` are this replica's own, used while the store does not answer",
        })
    });
    json!({
        "fleet": fleet,
        "buckets_held": app.limiter().held(),
        "admitted_untracked": app.limiter().untracked(),
        "buckets": buckets,
        "clients": clients,
        "totals": tally_json(&totals),
        "rules": {
            "immediate_ms": verdict::IMMEDIATE.as_millis() as u64,
            "storm_more_than": verdict::STORM_REQUESTS,
            "window_without_retry_after_ms": verdict::WINDOW_WITHOUT_WAIT.as_millis() as u64,
        },
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<AdminBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /runs/{id}/end`, `GET /runs/{id}/report` and `.../report.html`.
async fn run_endpoint(app: &App, method: &Method, path: &str) -> Response<AdminBody> {
    let rest = path.trim_start_matches("/runs/");
    let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
    let allowed = match what {
        "end" => Method::POST,
        "report" | "report.html" => Method::GET,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no admin endpoint {path}: POST /runs/{{id}}/end, GET /runs/{{id}}/report or /runs/{{id}}/report.html"
                ),
            );
        }
    };
    if *method != allowed {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} is not allowed here; use {allowed}"),
        );
    }
    let found = if what == "end" { app.runs().end(id) } else { app.runs().get(id) };
    let Some(run) = found else {
        let message =
            format!("no run {id}: GET /runs lists the runs kept (the process run never ends)");
        return error(StatusCode::NOT_FOUND, &message);
    };
    let fleet =
        if what == "end" { crate::fleet_sync::end_run(app, &run).await } else { Value::Null };
    let report = crate::fleet_sync::report(app, &run).await;
    match what {
        "report.html" => {
            let page = crate::report::html::render(&report);
            let mut response = Response::new(Full::new(Bytes::from(page)).boxed_unsync());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        "end" => {
            let mut body = json!({"run": run.summary(), "report": report});
            if !fleet.is_null() {
                body["fleet"] = fleet;
            }
            json_response(StatusCode::OK, &body)
        }
        _ => json_response(StatusCode::OK, &report),
    }
}

/// An admin request's body, at most `limit` bytes, within `[limits]
/// body_read_timeout` (`PUT /faults`, `POST /runs`).
async fn read_body(
    request: Request<Incoming>,
    config: &crate::config::Config,
    limit: usize,
) -> Result<Bytes, Response<AdminBody>> {
    let read = Limited::new(request.into_body(), limit).collect();
    match tokio::time::timeout(config.limits.body_read_timeout, read).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, &format!("cannot read the body: {e}"))),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive within [limits] body_read_timeout",
        )),
    }
}

/// A `POST /runs` body: none, or `{"name": "...", "reset_rate_limits":
/// true}` with a name of 1 to 128 characters; the name, and whether the
/// rate-limit buckets and verdicts start afresh.
fn run_request(body: &[u8]) -> Result<(Option<String>, bool), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, false));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("expected {{\"name\": \"...\", \"reset_rate_limits\": true}} or no body: {e}")
    })?;
    let fresh = match value.get("reset_rate_limits") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(fresh)) => *fresh,
        Some(other) => {
            return Err(format!("invalid reset_rate_limits {other}: expected true or false"));
        }
    };
    run_name(&value).map(|name| (name, fresh))
}

/// The name in a `POST /runs` body, if it has one.
fn run_name(value: &Value) -> Result<Option<String>, String> {
    match value.get("name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name))
            if (1..=128).contains(&name.chars().count()) && !name.chars().any(char::is_control) =>
        {
            Ok(Some(name.clone()))
        }
        Some(other) => Err(format!(
            "invalid name {other}: expected 1 to 128 characters, no control characters"
        )),
    }
}

fn error(status: StatusCode, message: &str) -> Response<AdminBody> {
    json_response(status, &json!({"error": message}))
}

fn reload_response(outcome: &Reload) -> Response<AdminBody> {
    reload_response_told(outcome, Value::Null)
}

/// A reload's answer, with what the fleet was told (`"fleet"`) when there is one.
fn reload_response_told(outcome: &Reload, fleet: Value) -> Response<AdminBody> {
    let (status, mut body) = match outcome {
        Reload::Applied(version) => {
            (StatusCode::OK, json!({"result": "applied", "version": version.to_string()}))
        }
        Reload::Unchanged(version) => {
            (StatusCode::OK, json!({"result": "unchanged", "version": version.to_string()}))
        }
        Reload::Rejected(reason) => {
            (StatusCode::UNPROCESSABLE_ENTITY, json!({"result": "rejected", "error": reason}))
        }
    };
    if !fleet.is_null() {
        body["fleet"] = fleet;
    }
    json_response(status, &body)
}

async fn answer(
    app: &App,
    draining: &CancellationToken,
    request: Request<Incoming>,
) -> Response<AdminBody> {
    let snapshot = app.live().snapshot();
    // The probes (a kubelet, Docker) carry no token; these two tell nothing
    // but whether sluice serves.
    let probe =
        request.method() == Method::GET && matches!(request.uri().path(), "/health" | "/ready");
    if let (Some(token), false) = (&snapshot.config.admin.token, probe) {
        let expected = format!("Bearer {token}");
        let given = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "admin endpoints need Authorization: Bearer <[admin] token>",
            );
        }
    }
    let method = request.method().clone();
    match (&method, request.uri().path()) {
        (&Method::GET, "/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/ready") if draining.is_cancelled() => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "shutting down"}))
        }
        (&Method::GET, "/ready") => json_response(
            StatusCode::OK,
            &json!({"status": "ready", "version": snapshot.version.to_string()}),
        ),
        (&Method::GET, "/metrics") => {
            let mut response =
                Response::new(Full::new(Bytes::from(app.metrics().encode())).boxed_unsync());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        (&Method::GET, "/config") => {
            let mut body = describe(&snapshot.config, app.live().runtime().as_ref());
            body["version"] = json!(snapshot.version.to_string());
            if let Some(phase) = &snapshot.phase {
                body["phase"] = json!(phase.as_ref());
            }
            json_response(StatusCode::OK, &body)
        }
        (&Method::POST, "/reload") => reload_response(&app.live().reload("POST /reload").await),
        (&Method::PUT, "/faults") => {
            let body = match read_body(request, &snapshot.config, 1024 * 1024).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            match parse_runtime_patch(&text) {
                Ok(patch) => {
                    let outcome = app.live().set_runtime(Some((patch, text.clone()))).await;
                    let fleet = match outcome {
                        Reload::Applied(_) | Reload::Unchanged(_) => {
                            crate::fleet_sync::publish_faults(app, Some(&text)).await
                        }
                        Reload::Rejected(_) => Value::Null,
                    };
                    reload_response_told(&outcome, fleet)
                }
                Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        (&Method::DELETE, "/faults") => {
            let outcome = app.live().set_runtime(None).await;
            let fleet = crate::fleet_sync::publish_faults(app, None).await;
            reload_response_told(&outcome, fleet)
        }
        (&Method::GET, "/rate-limits") => {
            json_response(StatusCode::OK, &*bounded_rate_limit_report(app).await)
        }
        (&Method::DELETE, "/rate-limits") => {
            let fleet = crate::fleet_sync::clear_limits(app).await;
            let mut body = json!({"result": "cleared"});
            if !fleet.is_null() {
                body["fleet"] = fleet;
            }
            json_response(StatusCode::OK, &body)
        }
        (&Method::GET, "/fleet") => match (app.fleet(), &snapshot.config.fleet) {
            (Some(fleet), Some(config)) => {
                let mut body = fleet.describe(config.store.as_ref());
                if let Ok(replicas) = fleet.store().replicas(&config.namespace).await {
                    body["replicas"] = json!(replicas);
                }
                json_response(StatusCode::OK, &body)
            }
            _ => json_response(
                StatusCode::OK,
                &json!({"fleet": null, "says": "no [fleet] store: every replica keeps its own state"}),
            ),
        },
        (&Method::GET, "/capacity") => {
            let routes: Vec<Value> = app
                .pools()
                .census()
                .into_iter()
                .map(|(route, in_service, queued)| {
                    json!({"route": route, "in_service": in_service, "queued": queued})
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "routes": routes }))
        }
        (&Method::POST, "/runs") => {
            let body = match read_body(request, &snapshot.config, 64 * 1024).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let (name, fresh) = match run_request(&body) {
                Ok(asked) => asked,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            };
            if fresh {
                // A run of its own: every bucket full, every verdict clean.
                crate::fleet_sync::clear_limits(app).await;
            }
            let (run, fleet) = crate::fleet_sync::start_run(app, name).await;
            let mut body = run.summary();
            if !fleet.is_null() {
                body["fleet"] = fleet;
            }
            json_response(StatusCode::CREATED, &body)
        }
        (&Method::GET, "/runs") => {
            let (runs, dropped) = app.runs().list();
            let runs: Vec<Value> = runs.iter().map(|run| run.summary()).collect();
            json_response(StatusCode::OK, &json!({"runs": runs, "dropped": dropped}))
        }
        (method, path) if path.starts_with("/runs/") => run_endpoint(app, method, path).await,
        (&Method::GET, "/timeline") => json_response(StatusCode::OK, &crate::timeline::report(app)),
        (&Method::POST, "/timeline/start") => {
            let origin = crate::app::TimelineOrigin::Started(tokio::time::Instant::now());
            app.timeline().set(origin);
            crate::timeline::advance(app).await;
            json_response(StatusCode::OK, &crate::timeline::report(app))
        }
        (&Method::DELETE, "/timeline") => {
            app.timeline().set(crate::app::TimelineOrigin::Stopped);
            crate::timeline::advance(app).await;
            json_response(StatusCode::OK, &crate::timeline::report(app))
        }
        (
            _,
            "/health" | "/ready" | "/metrics" | "/config" | "/reload" | "/faults" | "/rate-limits"
            | "/capacity" | "/timeline" | "/timeline/start" | "/runs",
        ) => error(StatusCode::METHOD_NOT_ALLOWED, &format!("method {method} is not allowed here")),
        (_, path) => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no admin endpoint {path}: GET /health, /ready, /metrics, /config, /capacity, /timeline, /runs, /runs/{{id}}/report, /runs/{{id}}/report.html; POST /reload, /timeline/start, /runs, /runs/{{id}}/end; PUT or DELETE /faults; GET or DELETE /rate-limits; DELETE /timeline"
            ),
        ),
    }
}
