//! Mock mode's endpoints: `POST /v1/messages` through the whole pipeline,
//! `POST /v1/messages/count_tokens`, `GET /health`, and provider-shaped 404
//! and 405 for everything else.

use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::debug;

use super::reply::{self, ResetHandle, read_body};
use super::{App, slow_head};
use crate::dialect::Dialect;
use crate::live::Snapshot;
use crate::mock::request::Endpoint;
use crate::mock::{MessagesRequest, Reply};
use crate::response::{self, Body, BoxError, REQUEST_ID};
use crate::route::BodyFacts;
use crate::shape::{Arrival, Fault, Pacer, Shaper};

/// Routes a request in mock mode.
pub async fn serve(
    app: &App,
    snapshot: &Snapshot,
    request: Request<Incoming>,
    arrival: Instant,
) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::POST, "/v1/messages") => messages(app, snapshot, request, arrival).await,
        (&Method::POST, "/v1/messages/count_tokens") => count_tokens(snapshot, request).await,
        (&Method::GET | &Method::HEAD, "/health") => reply::health(),
        (_, "/v1/messages" | "/v1/messages/count_tokens") => {
            reply::method_not_allowed(&method, &path, "POST")
        }
        (_, "/health") => reply::method_not_allowed(&method, &path, "GET"),
        _ => response::error(
            StatusCode::NOT_FOUND,
            &format!(
                "no route for {method} {path}: sluice mock serves POST /v1/messages, \
                 POST /v1/messages/count_tokens and GET /health"
            ),
            &reply::other_request_id(),
        ),
    }
}

async fn messages(
    app: &App,
    snapshot: &Snapshot,
    request: Request<Incoming>,
    arrival: Instant,
) -> Response<Body> {
    let reset = request.extensions().get::<ResetHandle>().cloned();
    let (head, body) = request.into_parts();
    let body = match read_body(body, &head.headers, &snapshot.config).await {
        Ok(body) => body,
        Err(refusal) => return refusal(&reply::other_request_id()),
    };
    let facts = BodyFacts::read(&body);
    let mut admitted = match app.admit(snapshot, &head, Some(&facts), Dialect::Anthropic) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    if let Some(fault @ Fault::Http(http)) = &admitted.plan.fault {
        app.record_fault(&admitted, fault);
        let mut response = reply::http_fault(http, Dialect::Anthropic, &admitted.request_id);
        admitted.mark(response.headers_mut(), true);
        return response;
    }
    let parsed = match MessagesRequest::parse(&body, Endpoint::Messages) {
        Ok(parsed) => parsed,
        Err(invalid) => {
            let mut response =
                response::error(StatusCode::BAD_REQUEST, &invalid.0, &admitted.request_id);
            admitted.mark(response.headers_mut(), false);
            return response;
        }
    };

    let profile = &admitted.profile;
    let reply = match Reply::generate(
        &parsed,
        profile.tokens_per_response,
        &profile.tool_use,
        &mut admitted.rng,
    ) {
        Ok(reply) => reply,
        Err(invalid) => {
            debug!(request = admitted.number, error = %invalid, "schema refused: past the budget or unsatisfiable");
            let mut response =
                response::error(StatusCode::BAD_REQUEST, &invalid.0, &admitted.request_id);
            admitted.mark(response.headers_mut(), false);
            return response;
        }
    };
    let message = (!parsed.stream).then(|| reply.to_message());
    // A slow head shifts the whole reply: its schedule starts that much later.
    let wait = slow_head(&admitted.plan);
    let start = crate::shape::later(arrival, wait);
    let stream_fault = match (&admitted.plan.fault, parsed.stream) {
        (Some(fault), true) => reply::stream_fault(fault, Dialect::Anthropic, &admitted.request_id),
        _ => None,
    };
    let applies = wait > std::time::Duration::ZERO || stream_fault.is_some();
    if let (true, Some(fault)) = (applies, &admitted.plan.fault) {
        app.record_fault(&admitted, fault);
    }
    let source = futures_util::stream::iter(reply.into_events().map(Ok::<_, BoxError>));
    let pacer = Pacer::new(profile.timing, admitted.rng.clone());
    let shaped = Shaper::new(source, pacer, Arrival::AtRequestStart(start))
        .with_fault(stream_fault)
        .with_lateness(app.lateness_observer());
    match message {
        Some(message) => {
            // A non-streaming reply takes as long as the stream would have.
            futures_util::StreamExt::for_each(shaped, |_| async {}).await;
            let mut response =
                response::json(StatusCode::OK, message.to_string(), &admitted.request_id);
            admitted.mark(response.headers_mut(), applies);
            response
        }
        None => {
            let mut head = Response::new(()).into_parts().0;
            let headers = &mut head.headers;
            headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if let Ok(id) = HeaderValue::from_str(&admitted.request_id) {
                headers.insert(REQUEST_ID, id);
            }
            admitted.mark(headers, applies);
            tokio::time::sleep_until(start).await;
            let farewell = reply::farewell(Dialect::Anthropic, &admitted.request_id);
            let parts = app.body_parts(arrival, reset, &mut admitted, farewell);
            reply::shaped_response(head, shaped, snapshot.config.head, reply::HeadHold::MOCK, parts)
                .await
        }
    }
}

async fn count_tokens(snapshot: &Snapshot, request: Request<Incoming>) -> Response<Body> {
    let request_id = reply::other_request_id();
    let (head, body) = request.into_parts();
    let body = match read_body(body, &head.headers, &snapshot.config).await {
        Ok(body) => body,
        Err(refusal) => return refusal(&request_id),
    };
    match MessagesRequest::parse(&body, Endpoint::CountTokens) {
        Ok(parsed) => response::json(
            StatusCode::OK,
            serde_json::json!({"input_tokens": parsed.input_tokens}).to_string(),
            &request_id,
        ),
        Err(invalid) => response::error(StatusCode::BAD_REQUEST, &invalid.0, &request_id),
    }
}
