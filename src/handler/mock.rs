//! Mock mode: each API in [`mock::APIS`] is routed by its paths. Its
//! generating endpoint goes through the whole pipeline (an [`Exchange`] with
//! the mock's reply as an instant source, or with `[replay]` a recorded
//! cassette, `crate::cassette::replay`); its other endpoints are answered
//! at once; `GET /health` is answered; everything else is a 404 or a 405 in
//! the dialect of its path.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::debug;

use super::exchange::{Answer, Delivery, Exchange, other_request_id};
use super::refusal::{ErrorForm, Refusal};
use super::request_body::read_body;
use crate::cassette::replay::Found;
use crate::cassette::replay::Recorded;
use crate::config::{ReplayFallback, ReplayMatch, ReplayTiming};
use crate::dialect::Dialect;
use crate::dialect::StreamSoFar;
use crate::framing::{Framing, Record};
use crate::live::Snapshot;
use crate::mock::{self, Codec, HeadFacts, MockApi, Reply, Serve};
use crate::response::{self, BoxError};
use crate::route::BodyFacts;
use crate::shape::head::HeadHold;

/// Routes a request in mock mode.
pub(crate) async fn serve(
    app: &super::App,
    snapshot: &Snapshot,
    request: Request<Incoming>,
) -> Answer {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if path == "/health" {
        return match method {
            Method::GET | Method::HEAD => Answer::local(super::health()),
            _ => not_allowed(method, &path, "GET", Dialect::Anthropic),
        };
    }
    let mut allowed: Option<(&'static str, Dialect)> = None;
    // `GET /v1/models` is OpenAI's list and, with the v1 API, Gemini's: a
    // Google client (its key or client header) gets Google's.
    let google = (path == "/v1/models" || path.starts_with("/v1/models/"))
        && mock::gemini::is_google_client(request.headers());
    for api in mock::APIS.iter().filter(|api| !google || api.dialect == Dialect::Gemini) {
        for endpoint in api.endpoints.iter().filter(|e| e.matches(&path)) {
            let takes = method.as_str() == endpoint.method
                || (endpoint.method == "GET" && method == Method::HEAD);
            if !takes {
                allowed = Some((endpoint.method, api.dialect));
                continue;
            }
            return match endpoint.serve {
                Serve::Generate(codec) => generate(app, snapshot, api, codec, request).await,
                Serve::Whole(answer) => whole(app, snapshot, api, answer, request).await,
                Serve::Instant(answer) => instant(snapshot, api, answer, request).await,
            };
        }
    }
    if let Some((allowed, dialect)) = allowed {
        return not_allowed(method, &path, allowed, dialect);
    }
    let mut served = mock::endpoints();
    served.push("GET /health".to_string());
    let message = format!("no route for {method} {path}: sluice mock serves {}", list(&served));
    Answer::unrouted(Refusal::NotFound(message), Dialect::for_path(&path))
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn not_allowed(method: Method, path: &str, allowed: &'static str, dialect: Dialect) -> Answer {
    let refusal = Refusal::MethodNotAllowed { method, path: path.to_string(), allowed };
    Answer::unrouted(refusal, dialect)
}

/// Reads the whole body (within its bounds) and begins the exchange: what
/// every endpoint through the pipeline does first. The mock's clock starts
/// when the request is whole, as a model's does: the first-token delay does
/// not run while a large prompt, or an HTTP/2 body frame sent after the
/// head, is still on its way.
async fn admit<'a>(
    app: &'a super::App,
    snapshot: &Snapshot,
    api: &MockApi,
    request: Request<Incoming>,
) -> Result<(bytes::Bytes, Exchange<'a>), Box<Answer>> {
    let (head, body) = request.into_parts();
    let form = ErrorForm::of(api.dialect, head.uri.path());
    let body = read_body(body, &head.headers, &snapshot.config)
        .await
        .map_err(|refusal| Box::new(Answer::unrouted(refusal, form)))?;
    // Counted before anything reads it, facts included: a body over the
    // budget is refused after a walk of its first values, not of all of them.
    let counted = body.clone();
    let path = head.uri.path().to_owned();
    let facts = off_shard(body.len(), move || {
        let over = crate::mock::request::over_value_budget(&counted);
        (!over).then(|| BodyFacts::read_request(&path, &counted))
    })
    .await
    .map_err(|refusal| Box::new(Answer::unrouted(refusal, form)))?;
    let Some(facts) = facts else {
        let refusal = Refusal::InvalidRequest(crate::mock::request::over_budget_message());
        return Err(Box::new(Answer::unrouted(refusal, form)));
    };
    let arrival = Instant::now();
    let exchange =
        Exchange::begin(app, snapshot, &head, Some(&facts), api.dialect, arrival).await?;
    let exchange = exchange.enter_service().await?;
    Ok((body, exchange))
}

/// Bodies larger than this are counted and parsed on tokio's blocking pool,
/// not on the thread that paces other streams: a 20 MB body under the value
/// budget parses for tens of milliseconds (docs/reliability.md).
const OFF_SHARD_BODY: usize = 256 * 1024;

/// Runs `work` (a walk or parse of a `body_len`-byte body) here when the
/// body is small, else on the blocking pool.
async fn off_shard<T: Send + 'static>(
    body_len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    if body_len <= OFF_SHARD_BODY {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Refusal::BodyUnreadable(format!("the body was not read: {error}")))
}

/// A reply through the whole pipeline.
async fn generate(
    app: &super::App,
    snapshot: &Snapshot,
    api: &MockApi,
    codec: Codec,
    request: Request<Incoming>,
) -> Answer {
    let path = request.uri().path().to_owned();
    let head_facts = HeadFacts::read(request.uri(), request.headers());
    let (body, mut exchange) = match admit(app, snapshot, api, request).await {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let library = snapshot.replay.as_ref().filter(|_| snapshot.config.replay.is_some()).cloned();
    let (read, find_path) = (body.clone(), path.clone());
    let (parse, dialect) = (codec.parse, api.dialect);
    let read = off_shard(body.len(), move || {
        let parsed = parse(&read, &head_facts)?;
        let framing = match (parsed.stream, parsed.array_stream) {
            (false, _) => None,
            (true, false) => Some(dialect.framing()),
            (true, true) => Some(Framing::JsonArray),
        };
        let found = library.and_then(|library| library.find(&find_path, framing, &read));
        Ok::<_, mock::InvalidRequest>((parsed, found))
    });
    let (parsed, found) = match read.await {
        Ok(Ok(read)) => read,
        Ok(Err(invalid)) => return exchange.refuse(Refusal::InvalidRequest(invalid.0)),
        Err(refusal) => return exchange.refuse(refusal),
    };
    if let (Some(library), Some(replay)) = (&snapshot.replay, &snapshot.config.replay) {
        let metrics = app.metrics();
        match found {
            Some((recorded, found)) => {
                metrics.replay(match found {
                    Found::ByRule => "replayed",
                    Found::ByPosition => "replayed_by_position",
                });
                return play(exchange, &recorded, replay.timing).await;
            }
            None if replay.fallback == ReplayFallback::NotFound => {
                metrics.replay("not_found");
                let message = format!(
                    "sluice replay: no recorded exchange matches this request, so there is no \
                     answer to replay. None of the {} cassettes in {} was recorded for {path} \
                     with this stream choice and this {} (ids, timings and dates ignored{}); \
                     record this exchange through sluice proxy, add a [replay] ignore pattern \
                     for what changes between runs, or set [replay] fallback = \"generate\"",
                    library.len(),
                    replay.dir.display(),
                    match replay.matching {
                        ReplayMatch::Body => "body",
                        ReplayMatch::LastUserMessage => {
                            "last user message (nor at this place in the conversation)"
                        }
                        ReplayMatch::Conversation => "place in the conversation",
                        ReplayMatch::ModelPath => "model",
                        ReplayMatch::RoundRobin => "path",
                    },
                    if replay.ignore.is_empty() { "" } else { ", and [replay] ignore" },
                );
                return exchange.refuse(Refusal::NoCassette(message));
            }
            None => metrics.replay("generated"),
        }
    }
    let (profile, rng) = exchange.profile_and_rng();
    let length = profile.tokens_per_response.draw(rng);
    let knobs = (&profile.tool_use, &profile.thinking);
    let reply = match Reply::generate(&parsed, length, knobs.0, knobs.1, rng) {
        Ok(reply) => reply,
        Err(invalid) => {
            debug!(request = exchange.number(), error = %invalid, "schema refused: past the budget or unsatisfiable");
            return exchange.refuse(Refusal::InvalidRequest(invalid.0));
        }
    };
    exchange.produces(u64::try_from(reply.output_tokens()).unwrap_or(u64::MAX));
    if let Some(thought) = &reply.thought {
        exchange.thinks_unseen(thought.unseen());
    }
    if !parsed.stream {
        let message = (codec.message)(&reply, &parsed);
        let response =
            response::json_in(api.dialect, StatusCode::OK, message, exchange.request_id());
        return exchange.whole_after(records(codec, reply, &parsed), response).await;
    }
    let mut head = Response::new(()).into_parts().0;
    let headers = &mut head.headers;
    let framing = if parsed.array_stream { Framing::JsonArray } else { api.dialect.framing() };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(framing.content_type()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(id) = HeaderValue::from_str(exchange.request_id()) {
        headers.insert(api.dialect.request_id_header(), id);
    }
    let known = StreamSoFar::of(api.dialect, framing, &path);
    let so_far = match (codec.failure_at, exchange.planned_stream_error()) {
        (Some(failure_at), Some(after_tokens)) => {
            let failure = failure_at(&reply, &parsed, after_tokens);
            StreamSoFar { sequence: failure.sequence, response: failure.response, ..known }
        }
        _ => known,
    };
    let records = records(codec, reply, &parsed);
    exchange.stream(head, records, Delivery::Instant, HeadHold::MOCK, so_far).await
}

/// A recorded exchange through the pipeline: its head and events as
/// recorded, at the recorded offsets (or scaled, or on the profile's delays).
async fn play(mut exchange: Exchange<'_>, recorded: &Recorded, timing: ReplayTiming) -> Answer {
    exchange.produces(recorded.output_tokens);
    debug!(request = exchange.number(), cassette = %recorded.name, %timing, "replaying");
    let mut head = Response::new(()).into_parts().0;
    head.status = recorded.status;
    head.headers = recorded.headers.clone();
    let scale = |at: Duration| match timing {
        ReplayTiming::Scaled(factor) => at.mul_f64(factor),
        ReplayTiming::Recorded | ReplayTiming::Configured => at,
    };
    let Some(framing) = recorded.framing else {
        let delay = match timing {
            ReplayTiming::Configured => {
                let (profile, rng) = exchange.profile_and_rng();
                profile.timing.first_token_delay.sample(rng)
            }
            ReplayTiming::Recorded | ReplayTiming::Scaled(_) => scale(recorded.head_at),
        };
        let extra = delay.saturating_sub(exchange.served_at().elapsed());
        let body = Full::new(recorded.body.clone()).map_err(|never| match never {}).boxed_unsync();
        return exchange.whole(head, body, extra).await;
    };
    let delivery = match timing {
        ReplayTiming::Configured => Delivery::Instant,
        ReplayTiming::Recorded | ReplayTiming::Scaled(_) => {
            Delivery::Recorded(recorded.events.iter().map(|(at, _)| scale(*at)).collect())
        }
    };
    let records: Vec<Result<Record, BoxError>> =
        recorded.events.iter().map(|(_, record)| Ok(record.clone())).collect();
    let source = futures_util::stream::iter(records);
    let so_far = StreamSoFar { framing, ..StreamSoFar::default() };
    exchange.stream(head, source, delivery, HeadHold::MOCK, so_far).await
}

/// The reply's records as the shaper's source: made as they are pulled.
fn records(
    codec: Codec,
    reply: Reply,
    request: &mock::TurnRequest,
) -> impl futures_util::Stream<Item = Result<crate::framing::Record, BoxError>> + Send + 'static {
    futures_util::stream::iter((codec.events)(reply, request).map(Ok::<_, BoxError>))
}

/// A whole JSON body through the exchange: routes and HTTP faults apply, and
/// it goes out after a slow head and the profile's first-token delay.
async fn whole(
    app: &super::App,
    snapshot: &Snapshot,
    api: &MockApi,
    answer: mock::WholeAnswer,
    request: Request<Incoming>,
) -> Answer {
    let (body, mut exchange) = match admit(app, snapshot, api, request).await {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let (profile, rng) = exchange.profile_and_rng();
    let delay = profile.timing.first_token_delay.sample(rng);
    let json = match answer(&body, rng) {
        Ok(json) => json,
        Err(invalid) => return exchange.refuse(Refusal::InvalidRequest(invalid.0)),
    };
    let response = response::json_in(api.dialect, StatusCode::OK, json, exchange.request_id());
    let (head, body) = response.into_parts();
    // Timed from arrival, as a first token is: what the body took to make is part of it.
    let extra = delay.saturating_sub(exchange.served_at().elapsed());
    exchange.whole(head, body, extra).await
}

/// An endpoint answered at once with JSON (no route, no fault, no shaping).
async fn instant(
    snapshot: &Snapshot,
    api: &MockApi,
    answer: mock::InstantAnswer,
    request: Request<Incoming>,
) -> Answer {
    let path = request.uri().path().to_owned();
    let (head, body) = request.into_parts();
    let body = match read_body(body, &head.headers, &snapshot.config).await {
        Ok(body) => body,
        Err(refusal) => return Answer::unrouted(refusal, api.dialect),
    };
    let asked = mock::InstantRequest { path: &path, body: &body, config: &snapshot.config };
    match answer(&asked) {
        Ok(json) => {
            Answer::local(response::json_in(api.dialect, StatusCode::OK, json, &other_request_id()))
        }
        Err(mock::InstantError::Invalid(invalid)) => {
            Answer::unrouted(Refusal::InvalidRequest(invalid.0), api.dialect)
        }
        Err(mock::InstantError::NotFound(message)) => {
            Answer::unrouted(Refusal::NotFound(message), api.dialect)
        }
    }
}
