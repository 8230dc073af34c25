//! [`Exchange`]: one request and its answer, the same type in mock and proxy
//! mode. It owns the fault protocol, so each mode only says where its
//! answer comes from:
//!
//! ```text
//! Exchange::begin   route, profile, control headers, numbers, fault plan,
//!                   rate limits (with [fleet]: the fleet's numbers and leases)
//!                   ─▶ refused (bad control header, rate limit) or injected
//!                      HTTP fault: answered now
//! enter_service     a place under [capacity] (with [fleet]: the fleet's), or shed
//! then one of
//!   stream          records from any source ─▶ Shaper (timing, stream fault)
//!                   ─▶ head held (slow head, first token) ─▶ ShapedBody
//!   whole_after     a whole body, sent when a shaped stream of the same
//!                   records would have ended (the mock's non-streaming reply)
//!   whole           a whole body, its head held (slow head, extra delay)
//!   refuse          a typed Refusal, in the request's dialect
//! ```
//!
//! Each ending decides whether the planned fault applied, counts and logs it
//! once, marks the head (`x-sluice-route`, `x-sluice-config`,
//! `x-sluice-fault`), and reports the [`Outcome`] for the metrics. A new
//! fault kind is a file in `crate::fault` (what it does to a stream is its
//! `on_stream`); a new source is one more caller of [`Exchange::stream`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::{request, response};
use hyper::{HeaderMap, Response};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tracing::{info, warn};

use super::control::{self, ControlGuard};
use super::refusal::{ErrorForm, Outcome, Refusal};
use super::stream_body::{BodyParts, ShapedBody};
use super::{App, CONFIG_HEADER, FAULT_HEADER, ROUTE_HEADER};
use crate::capacity::{Entry, Slot};
use crate::config::{Profile, RateLimits};
use crate::dialect::{Dialect, StreamSoFar};
use crate::fault::{Fault, FaultPlan, OnStream, RequestClock};
use crate::fleet::places::{Entered, POLL_EVERY, Place};
use crate::framing::Record;
use crate::listener::connection::ResetHandle;
use crate::live::Snapshot;
use crate::metrics::OpenStream;
use crate::ratelimit::headers::{self, Header};
use crate::ratelimit::{Charge, ClientKey, Decision, Limited, SetId, SetName, Settle, Settlement};
use crate::report::{Answered, Arrived, InFlight, Run};
use crate::response::{Body, BoxError};
use crate::route::{BodyFacts, RouteState};
use crate::shape::head::{self, HeadHold, HeadTiming};
use crate::shape::request_rng;
use crate::shape::rng::{ID_LEN, push_random_id};
use crate::shape::{Arrival, Pacer, Shaper, Slowdown};

/// A request's answer, with what the metrics count it as.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The response.
    pub(crate) response: Response<Body>,
    /// How it is counted.
    pub(crate) outcome: Outcome,
    /// The route that took it; `None` when answered before routing.
    pub(crate) route: Option<String>,
    /// What its run records of it besides its route and outcome.
    pub(crate) report: Reported,
}

/// What a run records of an answer besides its route and outcome.
#[derive(Debug, Clone)]
pub(crate) struct Reported {
    /// Its API, `none` when answered before routing.
    pub(crate) api: &'static str,
    /// The `[timeline]` phase at its arrival.
    pub(crate) phase: Option<Arc<str>>,
    /// The fault, limit and tokens (its outcome is the answer's).
    pub(crate) answered: Answered,
}

impl Default for Reported {
    fn default() -> Self {
        Self { api: "none", phase: None, answered: Answered::default() }
    }
}

impl Answer {
    /// A refusal made before the request was admitted (no route, no seeded id).
    pub(crate) fn unrouted(refusal: Refusal, form: impl Into<ErrorForm>) -> Self {
        let outcome = refusal.outcome();
        let response = refusal.into_response(form, &other_request_id());
        Self { response, outcome, route: None, report: Reported::default() }
    }

    /// A local answer before routing (health, count_tokens).
    pub(crate) fn local(response: Response<Body>) -> Self {
        let outcome = Outcome::of_status(response.status());
        Self { response, outcome, route: None, report: Reported::default() }
    }
}

/// How a source's records reach sluice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// All at once (the mock): the schedule runs from the head's release time.
    Instant,
    /// As the source sends them (an upstream).
    Live,
    /// A recording (replay): each record at its offset from the head's
    /// release time, in place of the profile's delays.
    Recorded(Vec<Duration>),
}

/// One request from its admission to its answer; see the module docs.
pub(crate) struct Exchange<'a> {
    app: &'a App,
    dialect: Dialect,
    /// How its errors are written (Vertex AI wraps a stream's in an array).
    error_form: ErrorForm,
    head_timing: HeadTiming,
    arrival: Instant,
    /// When its service began: its arrival, or when it left the
    /// `[capacity]` queue. Its schedule counts from here.
    served_at: Instant,
    /// Its place in service under `[capacity]`, held to the end of its response.
    slot: Option<Slot>,
    /// Its delays grow with its route's load (`[capacity] factor_at_capacity`).
    slowdown: Option<Slowdown>,
    /// Added to its first-token delay for its input (`[capacity] prefill_per_1k_tokens`).
    prefill: Duration,
    reset: Option<ResetHandle>,
    /// Its number since start (0, 1, ...), the key of its random stream.
    number: u64,
    /// Its random stream, for whatever the source draws next.
    rng: ChaCha8Rng,
    route: String,
    profile: Arc<Profile>,
    plan: FaultPlan,
    /// The id of responses sluice makes itself.
    request_id: String,
    /// The config version that serves it (`x-sluice-config`).
    version: HeaderValue,
    /// The `[timeline]` phase in force at its arrival (`x-sluice-phase`).
    phase: Option<Arc<str>>,
    /// Held while a header-driven fault is in flight.
    guard: Option<ControlGuard>,
    /// Counts it in `sluice_open_streams` from admission to the end of its response.
    open: Option<OpenStream>,
    /// Its client, when rate limits or the verdict need to know it.
    client: Option<ClientKey>,
    /// Whether `[rate_limits]` limit it (its headers replace an upstream's).
    limited_here: bool,
    /// The rate-limit headers of its buckets after admission.
    limit_headers: Vec<Header>,
    /// `x-sluice-client-verdict`: what it did wrong after being told to wait.
    verdict: Option<String>,
    /// Settles its output tokens when its response ends.
    settlement: Option<Settlement>,
    /// Thinking tokens its source does not stream ([`Self::thinks_unseen`]).
    unseen_thinking: u32,
    /// The run it belongs to, and its place among the run's requests in flight.
    run: Option<Arc<Run>>,
    in_flight: Option<InFlight>,
    /// Its input tokens (the estimate) and the output its source produces.
    input_tokens: u64,
    output_tokens: u64,
    /// How long it waited for its place in service (`[capacity]`).
    queue_wait: Duration,
}

/// Header naming what a request did wrong after being told to wait
/// (`early_retry`, `immediate_retry`, `retry_storm`, `ignored_should_retry`).
pub(crate) const VERDICT_HEADER: &str = "x-sluice-client-verdict";

/// What sluice planned for a response (the W3C Server-Timing header).
pub(crate) const SERVER_TIMING: &str = "server-timing";

/// Header naming the `[timeline]` phase in force when a request arrived.
pub(crate) const PHASE_HEADER: &str = "x-sluice-phase";

/// What `[rate_limits]` made of a request at admission.
#[derive(Default)]
struct Admission {
    limit_headers: Vec<Header>,
    settlement: Option<Settlement>,
    limited: Option<Limited>,
}

/// Phase 1, route: which route and profile, and the request's number and
/// random stream.
struct Routed {
    route: String,
    profile: Arc<Profile>,
    number: u64,
    rng: ChaCha8Rng,
    clock: RequestClock,
}

/// Phase 2, plan: control headers applied, the fault drawn, the id made.
struct Planned {
    plan: FaultPlan,
    guard: Option<ControlGuard>,
    /// A bad control header: the request is answered with a 400 naming it.
    refused: Option<String>,
    request_id: String,
}

/// Phase 3, admit: who the client is, its verdict, and its rate limits.
struct Admitted {
    client: Option<ClientKey>,
    verdict: Option<String>,
    admission: Admission,
}

impl Routed {
    /// The first route that matches wins; its profile, and the request's
    /// place in sluice's and in its route's count.
    async fn route(
        app: &App,
        snapshot: &Snapshot,
        head: &request::Parts,
        body: Option<&BodyFacts>,
    ) -> Self {
        let route = snapshot.router.select(&head.method, head.uri.path(), &head.headers, body);
        let route_request = route_number(app, snapshot, route).await;
        let number = app.next_request();
        let since_start = app.window_clock(snapshot.config.epoch);
        Self {
            route: route.name.clone(),
            profile: Arc::clone(&route.profile),
            number,
            rng: request_rng(app.seed(), number),
            clock: RequestClock { route_request, since_start },
        }
    }
}

impl Planned {
    /// Control headers may change the profile and force a fault; the draws
    /// are the same, in the same order, whatever the outcome, so a seed
    /// replays whatever the headers said.
    fn plan(app: &App, snapshot: &Snapshot, head: &request::Parts, routed: &mut Routed) -> Self {
        let control = control::apply(snapshot, head, &mut routed.profile, app.active_controlled());
        let profile = &routed.profile;
        let (plan, guard, refused) = match control {
            Ok(control) => {
                let mut plan = FaultPlan::draw(
                    profile.error_rate,
                    &profile.faults,
                    routed.clock,
                    &mut routed.rng,
                );
                if control.fault.is_some() {
                    plan.fault = control.fault;
                }
                (plan, control.guard, None)
            }
            Err(message) => (FaultPlan::default(), None, Some(message)),
        };
        let request_id = request_id(&mut routed.rng);
        Self { plan, guard, refused, request_id }
    }
}

impl Admitted {
    /// Rate limits and the verdict come after the draws, which they never
    /// change: the client is known when limits, a fault that tells it to
    /// wait, or the verdict need it.
    async fn admit(
        app: &App,
        head: &request::Parts,
        body: Option<&BodyFacts>,
        dialect: Dialect,
        routed: &Routed,
        planned: &Planned,
    ) -> Self {
        let limits = routed.profile.rate_limits;
        let tells = matches!(&planned.plan.fault, Some(Fault::Http(http))
            if http.retry_after.is_some() || http.should_retry == Some(false));
        // A stream that breaks makes its run follow who asks again.
        let breaks = planned.plan.fault.as_ref().is_some_and(Fault::breaks_stream);
        let run = head.extensions.get::<Arc<Run>>();
        let repeats = run.is_some_and(|run| run.watching_repeats());
        let known = limits.is_active() || tells || breaks || repeats || app.verdicts().watching();
        let client = known.then(|| ClientKey::of(&head.headers, head.uri.query()));
        let now = Instant::now();
        let mut verdict = None;
        let mut admission = Admission::default();
        if let (Some(client), None) = (&client, &planned.refused) {
            let flags = app.verdicts().arrive(client, now);
            app.metrics().discipline(&flags);
            verdict = flags.header();
            if let Some(run) = run {
                let kinds: Vec<&'static str> = flags.kinds().collect();
                let label = client.label();
                run.arrived(&label, now, &Arrived { kinds, early_by: flags.early_by });
                run.asked_again(&label, now, body.map_or(0, |facts| facts.input_tokens));
            }
            if limits.is_active() {
                admission = admit(app, &limits, &routed.route, client, body, dialect, now).await;
            }
        }
        Self { client, verdict, admission }
    }
}

impl<'a> Exchange<'a> {
    /// Decides everything about a request at its arrival, in three phases:
    /// [`Routed::route`] (route, profile, the request's number and random
    /// stream), [`Planned::plan`] (control headers, the fault, the id) and
    /// [`Admitted::admit`] (verdict and rate limits). Then the request is
    /// answered now, or handed back to its source.
    ///
    /// # Errors
    /// The answer, when the request is answered now: a bad control header
    /// (400 naming it), a rate limit (429), or an injected HTTP fault (the
    /// source is never asked).
    pub(crate) async fn begin(
        app: &'a App,
        snapshot: &Snapshot,
        head: &request::Parts,
        body: Option<&BodyFacts>,
        dialect: Dialect,
        arrival: Instant,
    ) -> Result<Self, Box<Answer>> {
        let mut routed = Routed::route(app, snapshot, head, body).await;
        let planned = Planned::plan(app, snapshot, head, &mut routed);
        let admitted = Admitted::admit(app, head, body, dialect, &routed, &planned).await;
        let Planned { plan, guard, refused, request_id } = planned;
        let Admitted { client, verdict, admission } = admitted;
        let limited_here = routed.profile.rate_limits.is_active();
        let input_tokens = body.map_or(0, |facts| facts.input_tokens);
        let run = head.extensions.get::<Arc<Run>>().cloned();
        let phase = snapshot.phase.as_deref();
        let in_flight = run.as_ref().map(|run| run.arrive(&head.headers, phase, arrival));
        let prefill = prefill(routed.profile.capacity.prefill_per_1k_tokens, input_tokens);
        let exchange = Self {
            app,
            dialect,
            error_form: ErrorForm::of(dialect, head.uri.path()),
            head_timing: snapshot.config.head,
            arrival,
            served_at: arrival,
            slot: None,
            slowdown: None,
            prefill,
            reset: head.extensions.get::<ResetHandle>().cloned(),
            number: routed.number,
            rng: routed.rng,
            route: routed.route,
            profile: routed.profile,
            plan,
            request_id,
            version: snapshot.version.label().clone(),
            phase: snapshot.phase.clone(),
            guard,
            open: refused.is_none().then(|| app.metrics().stream_opened()),
            client,
            limited_here,
            limit_headers: admission.limit_headers,
            verdict,
            settlement: admission.settlement,
            unseen_thinking: 0,
            run,
            in_flight,
            input_tokens,
            output_tokens: 0,
            queue_wait: Duration::ZERO,
        };
        exchange.answer_now(refused, admission.limited)
    }

    /// The answer at admission, if there is one: a bad control header, a
    /// rate limit, or an injected HTTP fault; otherwise the exchange goes on.
    fn answer_now(
        self,
        refused: Option<String>,
        limited: Option<Limited>,
    ) -> Result<Self, Box<Answer>> {
        if let Some(message) = refused {
            return Err(Box::new(self.refuse(Refusal::BadControlHeader(message))));
        }
        if let Some(limited) = limited {
            self.app.metrics().rate_limited(limited.kind.label());
            return Err(Box::new(self.refuse(Refusal::RateLimited(limited))));
        }
        if let Some(Fault::Http(http)) = &self.plan.fault {
            let refusal = Refusal::Injected(http.clone());
            return Err(Box::new(self.refuse(refusal)));
        }
        Ok(self)
    }

    /// Takes its place in service under its profile's `[capacity]`: at once,
    /// after its turn in the queue, or never (shed). Without
    /// `max_concurrent` it goes on at once. Its schedule counts from the
    /// end of the wait, as a model's time to first token counts from when
    /// it starts on a request.
    ///
    /// # Errors
    /// The shed answer: the queue was full, the request waited
    /// `queue_timeout`, or shutdown's grace ended while it waited.
    pub(crate) async fn enter_service(mut self) -> Result<Self, Box<Answer>> {
        let capacity = self.profile.capacity;
        let Some(limit) = capacity.max_concurrent else {
            return Ok(self);
        };
        let metrics = self.app.metrics();
        let pool = self.app.pools().pool(&self.route, |route| metrics.pool_gauges(route));
        let entered = Instant::now();
        let mut place = None;
        if let Some(fleet) = self.app.fleet_up() {
            let fleet = Arc::clone(fleet);
            match self.fleet_place(&fleet, limit, entered).await {
                Ok(taken) => place = taken,
                Err(()) => return Err(self.shed()),
            }
        }
        let slot = match pool.enter(limit, capacity.queue()) {
            Entry::Served(slot) => slot,
            Entry::Queued(queued) => {
                let end = self.app.stream_end().clone();
                tokio::select! {
                    slot = queued.wait() => slot,
                    () = tokio::time::sleep(capacity.queue_timeout) => return Err(self.shed()),
                    () = end.ended() => return Err(self.shed()),
                }
            }
            Entry::Full => return Err(self.shed()),
        };
        self.served_at = Instant::now();
        self.queue_wait = self.served_at.saturating_duration_since(entered);
        metrics.queue_wait(self.queue_wait);
        if capacity.factor_at_capacity > 1.0 {
            self.slowdown = Some(Slowdown {
                in_service: Arc::clone(slot.pool().in_service()),
                limit,
                at_capacity: capacity.factor_at_capacity,
            });
        }
        let place = place.map(|place| Box::new(place) as Box<dyn std::fmt::Debug + Send + Sync>);
        self.slot = Some(slot.holding(place));
        Ok(self)
    }

    /// A place in the fleet's service: at once, after asking again while
    /// the fleet is full (within `queue_timeout`, with at most `max_queue`
    /// of the fleet's requests waiting), or `Ok(None)` when the store does
    /// not answer (this replica's pool alone decides).
    ///
    /// # Errors
    /// Shed: the wait was full, or too long, or shutdown came first.
    async fn fleet_place(
        &self,
        fleet: &Arc<crate::fleet::Fleet>,
        limit: u32,
        entered: Instant,
    ) -> Result<Option<Place>, ()> {
        let capacity = self.profile.capacity;
        let mut waiting = None;
        loop {
            match fleet.places.enter(fleet, &self.route, limit).await {
                Ok(Entered::Place(place)) => return Ok(Some(place)),
                Ok(Entered::Untracked) => return Ok(None),
                Ok(Entered::Full) => {}
                Err(error) => {
                    fleet.failed("capacity", &error);
                    return Ok(None);
                }
            }
            if waiting.is_none() {
                waiting =
                    Some(fleet.places.wait(fleet, &self.route, capacity.queue()).await.ok_or(())?);
            }
            let deadline = entered + capacity.queue_timeout;
            if Instant::now() >= deadline {
                return Err(());
            }
            let end = self.app.stream_end().clone();
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = tokio::time::sleep_until(deadline) => return Err(()),
                () = end.ended() => return Err(()),
            }
        }
    }

    /// Sheds it: counted by route and API, answered in the API's words.
    fn shed(self) -> Box<Answer> {
        self.app.metrics().shed(&self.route, self.dialect.api_name());
        let shed = self.profile.capacity.shed;
        Box::new(self.refuse(Refusal::Shed(shed)))
    }

    /// The profile it gets, and its random stream, for the source's draws.
    pub(crate) fn profile_and_rng(&mut self) -> (&Profile, &mut ChaCha8Rng) {
        (&self.profile, &mut self.rng)
    }

    /// After how many tokens a planned `stream_error` or `stop` fires, if one
    /// is planned (a source that numbers its events, or names its stream,
    /// gives the event that ends it its number and name).
    pub(crate) fn planned_stream_error(&self) -> Option<u32> {
        match &self.plan.fault {
            Some(Fault::StreamError(error)) => Some(error.after_tokens),
            Some(Fault::Stop(stop)) => Some(stop.after_tokens),
            _ => None,
        }
    }

    /// Whether its plan has nothing to do to a stream after the first visible
    /// token: no fault, no delay between tokens (text, tool calls, thinking),
    /// no slowdown under load, no output to settle. The proxy then passes
    /// the rest of the stream through unread (`crate::proxy::Records`).
    pub(crate) fn plans_nothing_after_first_text(&self) -> bool {
        let timing = &self.profile.timing;
        self.plan.fault.is_none()
            && self.settlement.is_none()
            && self.slowdown.is_none()
            && timing.token_interval.is_zero()
            && timing.tool_call_delay.is_zero()
            && timing.thinking_pace().is_zero()
    }

    /// When its service began, as its timing counts it: its arrival, or
    /// when it left the `[capacity]` queue.
    pub(crate) fn served_at(&self) -> Instant {
        self.served_at
    }

    /// The prefill its input adds to its first-token delay (`[capacity]`).
    pub(crate) fn prefill(&self) -> Duration {
        self.prefill
    }

    /// Its number since start.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The id of the responses sluice makes for it.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The settlement of its output tokens, for a source that learns its
    /// usage as it goes (an upstream's stream); `None` when nothing settles.
    pub(crate) fn take_settlement(&mut self) -> Option<Settlement> {
        self.settlement.take()
    }

    /// The source will produce `tokens` output tokens: what its rate limits
    /// settle to when the response ends.
    pub(crate) fn produces(&mut self, tokens: u64) {
        self.output_tokens = tokens;
        if let Some(settlement) = self.settlement.as_mut() {
            settlement.produced(tokens);
        }
    }

    /// The source thinks `tokens` tokens it does not stream (a reasoning
    /// model behind Chat Completions, a redacted thinking block): their time
    /// goes before the first visible output.
    pub(crate) fn thinks_unseen(&mut self, tokens: usize) {
        self.unseen_thinking = u32::try_from(tokens).unwrap_or(u32::MAX);
    }

    /// Answers with `refusal` in the request's dialect. An injected HTTP
    /// fault is counted and logged as a fault; an upstream failure as one.
    pub(crate) fn refuse(mut self, refusal: Refusal) -> Answer {
        let injected = matches!(refusal, Refusal::Injected(_));
        // Told to wait, or not to retry: the verdict judges what comes next.
        let told = match &refusal {
            Refusal::RateLimited(limited) => Some((
                limited.wait.map(|wait| Duration::from_millis(headers::millis_up(wait))),
                Some(limited.wait.is_some()),
            )),
            Refusal::Injected(http) => Some((http.retry_after, http.should_retry)),
            _ => None,
        };
        if let (Some((retry_after, should_retry)), Some(client)) = (told, &self.client) {
            let now = Instant::now();
            self.app.verdicts().told(client, now, retry_after, should_retry);
            if let Some(run) = &self.run {
                let status = match &refusal {
                    Refusal::Injected(http) => http.status,
                    _ => 429,
                };
                run.told(client.label(), now, status, retry_after);
            }
        }
        let rate_limited = match &refusal {
            Refusal::RateLimited(limited) => Some(limited.kind.label()),
            _ => None,
        };
        // Nothing was produced: the output charged at admission goes back.
        self.produces(0);
        if injected {
            self.record_fault();
        }
        if let Refusal::Upstream(failure) = &refusal {
            warn!(request = self.number, error = %failure, "upstream failed");
            self.app.metrics().upstream_error(failure.marker());
        }
        let outcome = refusal.outcome();
        let mut response = refusal.into_response(self.error_form, &self.request_id);
        self.mark(response.headers_mut(), injected);
        let mut report = self.reported(injected);
        report.answered.rate_limited = rate_limited;
        Answer { response, outcome, route: Some(self.route), report }
    }

    /// Shapes `source`'s records into the answer: the profile's timing, the
    /// planned stream fault, and the head held until its release time (a
    /// slow head) and, by `[server] head`, until the first token, within
    /// `hold`.
    pub(crate) async fn stream<S>(
        mut self,
        mut head: response::Parts,
        source: S,
        delivery: Delivery,
        hold: HeadHold,
        so_far: StreamSoFar,
    ) -> Answer
    where
        S: Stream<Item = Result<Record, BoxError>> + Send + 'static,
    {
        let slow = self.slow_head();
        let fault = self.plan.fault.as_ref().and_then(|fault| {
            let request_id = &self.request_id;
            fault.on_stream(&OnStream { dialect: self.dialect, request_id, so_far: &so_far })
        });
        let applies = slow > Duration::ZERO || fault.is_some();
        if let (Some(_), Some(run), Some(client), Some(planned)) =
            (&fault, &self.run, &self.client, &self.plan.fault)
        {
            run.broke(client.label(), Instant::now(), planned.kind(), self.input_tokens);
        }
        let outcome = self.outcome(applies, head.status);
        self.mark(&mut head.headers, applies);
        // A slow head: an instant source's whole schedule starts that much
        // later; a live source's events wait in its socket meanwhile.
        let mut timing = self.profile.timing;
        let mut load = (self.slowdown.take(), self.prefill);
        let (release, arrival) = match delivery {
            Delivery::Instant => {
                let release = crate::shape::later(self.served_at, slow);
                (release, Arrival::AtRequestStart(release))
            }
            Delivery::Live => (crate::shape::later(Instant::now(), slow), Arrival::WhenReceived),
            Delivery::Recorded(offsets) => {
                let release = crate::shape::later(self.served_at, slow);
                // A recording keeps its own times: no profile delay applies.
                timing = crate::shape::Timing::default();
                load = (None, Duration::ZERO);
                (release, Arrival::Recorded { start: release, offsets: offsets.into_iter() })
            }
        };
        let metrics = Arc::clone(self.app.metrics());
        let pacer = Pacer::new(timing, self.rng.clone())
            .with_unseen_thinking(self.unseen_thinking)
            .under_load(load.0, load.1);
        let late_run = self.run.clone();
        let mut shaped =
            Box::pin(Shaper::new(source, pacer, arrival).with_fault(fault).with_lateness(
                Box::new(move |late| {
                    metrics.release_lateness(late);
                    if let Some(run) = &late_run {
                        run.lateness(late);
                    }
                }),
            ));
        // A head still held when shutdown's grace ends goes out at once, and
        // the body then ends with the farewell event as every other stream.
        let end = self.app.stream_end().clone();
        head::hold_until(release, end.ended()).await;
        let released =
            head::gather_first_token(&mut shaped, self.head_timing, hold, end.ended()).await;
        let parts = BodyParts {
            reset: self.reset.take(),
            guard: self.guard.take(),
            open: self.open.take(),
            metrics: Arc::clone(self.app.metrics()),
            arrival: self.arrival,
            end: self.app.stream_end().clone(),
            farewell: farewell(self.dialect, self.request_id.clone()),
            settlement: self.settlement.take(),
            slot: self.slot.take(),
            run: self.run.clone(),
            in_flight: self.in_flight.take(),
        };
        let body = http_body_util::BodyExt::boxed_unsync(ShapedBody::new(released, shaped, parts));
        self.answer(Response::from_parts(head, body), outcome, applies)
    }

    /// Sends `response` whole when a shaped stream of `source`'s records
    /// would have ended (a non-streaming reply takes as long as the stream
    /// would have); only a slow head applies of the planned faults.
    pub(crate) async fn whole_after<S>(mut self, source: S, mut response: Response<Body>) -> Answer
    where
        S: Stream<Item = Result<Record, BoxError>> + Send,
    {
        let slow = self.slow_head();
        let applies = slow > Duration::ZERO;
        let release = crate::shape::later(self.served_at, slow);
        let pacer = Pacer::new(self.profile.timing, self.rng.clone())
            .with_unseen_thinking(self.unseen_thinking)
            .under_load(self.slowdown.take(), self.prefill);
        let shaped = Shaper::new(source, pacer, Arrival::AtRequestStart(release));
        // At the end of shutdown's grace the reply goes out at once.
        tokio::select! {
            () = shaped.for_each(|_| async {}) => {}
            () = self.app.stream_end().ended() => {}
        }
        let outcome = self.outcome(applies, response.status());
        self.mark(response.headers_mut(), applies);
        self.answer(response, outcome, applies)
    }

    /// Sends `body` whole after its head, held by a slow head and `extra`
    /// (both added to the source's own time to its head). Stream faults do
    /// not apply to a body that is not a stream.
    pub(crate) async fn whole(
        self,
        mut head: response::Parts,
        body: Body,
        extra: Duration,
    ) -> Answer {
        let slow = self.slow_head();
        let applies = slow > Duration::ZERO;
        let outcome = self.outcome(applies, head.status);
        self.mark(&mut head.headers, applies);
        let release = crate::shape::later(Instant::now(), slow.saturating_add(extra));
        head::hold_until(release, self.app.stream_end().ended()).await;
        self.answer(Response::from_parts(head, body), outcome, applies)
    }

    /// The answer `response`, counted as `outcome`, with what its run records
    /// (the planned fault when it `applies`).
    fn answer(self, response: Response<Body>, outcome: Outcome, applies: bool) -> Answer {
        let report = self.reported(applies);
        Answer { response, outcome, route: Some(self.route), report }
    }

    /// What its run records of its answer: its API, phase, tokens, and the
    /// planned fault's kind when it `applies`.
    fn reported(&self, applies: bool) -> Reported {
        let fault = self.plan.fault.as_ref().filter(|_| applies).map(Fault::kind);
        Reported {
            api: self.dialect.api_name(),
            phase: self.phase.clone(),
            answered: Answered {
                outcome: "",
                fault,
                rate_limited: None,
                input_tokens: self.input_tokens,
                output_tokens: self.output_tokens,
            },
        }
    }

    /// The extra wait of a `slow_head` fault, if that is the plan.
    fn slow_head(&self) -> Duration {
        match &self.plan.fault {
            Some(Fault::SlowHead(slow)) => slow.duration,
            _ => Duration::ZERO,
        }
    }

    /// Counts and logs the planned fault when it `applies`, and gives the outcome.
    fn outcome(&self, applies: bool, status: hyper::StatusCode) -> Outcome {
        if applies {
            self.record_fault();
            Outcome::Fault
        } else {
            Outcome::of_status(status)
        }
    }

    /// Counts and logs the planned fault, which is being applied.
    fn record_fault(&self) {
        if let Some(fault) = &self.plan.fault {
            self.app.metrics().fault(fault.kind());
            info!(fault = %fault.label(), route = %self.route, request = self.number, config = self.version.to_str().unwrap_or_default(), "injected fault");
        }
    }

    /// Adds `x-sluice-route`, `x-sluice-config`, and `x-sluice-fault` when
    /// `fault_applies`; the rate-limit headers of its buckets, in place of
    /// any a source sent, when sluice limits it; and the client verdict.
    fn mark(&self, headers: &mut HeaderMap, fault_applies: bool) {
        if self.limited_here {
            // sluice's figures replace a source's for the families it limits;
            // a family it does not limit keeps the upstream's figures, or
            // reports no limit (`docs/rate-limits.md`).
            // `insert` replaces every value a source sent under that name.
            for (name, value) in &self.limit_headers {
                headers.insert(name.clone(), value.clone());
            }
            crate::ratelimit::headers::complete(self.dialect, headers, SystemTime::now());
        }
        if let Some(verdict) = self.verdict.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(VERDICT_HEADER, verdict);
        }
        // Names made once: a `&str` name is checked and lowercased on every
        // insert, and every response carries these.
        static ROUTE: HeaderName = HeaderName::from_static(ROUTE_HEADER);
        static CONFIG: HeaderName = HeaderName::from_static(CONFIG_HEADER);
        static TIMING: HeaderName = HeaderName::from_static(SERVER_TIMING);
        if let Ok(route) = HeaderValue::from_str(&self.route) {
            headers.insert(&ROUTE, route);
        }
        headers.insert(&CONFIG, self.version.clone());
        if let Some(phase) = self.phase.as_deref().and_then(|p| HeaderValue::from_str(p).ok()) {
            headers.insert(PHASE_HEADER, phase);
        }
        if let (true, Some(fault)) = (fault_applies, &self.plan.fault)
            && let Ok(label) = HeaderValue::from_str(&fault.label())
        {
            headers.insert(FAULT_HEADER, label);
        }
        if let Ok(planned) = HeaderValue::from_str(&self.server_timing(fault_applies)) {
            headers.append(&TIMING, planned);
        }
    }

    /// `Server-Timing`: what sluice planned for this response (docs/report.md,
    /// "Server-Timing"): the delays it adds (typical values of a
    /// distribution; the first token's with its prefill), the wait for its
    /// place in service, the load factor, and the fault that applies.
    fn server_timing(&self, fault_applies: bool) -> String {
        let timing = &self.profile.timing;
        let first = timing.first_token_delay.typical().saturating_add(self.prefill);
        let mut planned = String::with_capacity(128);
        planned.push_str("sluice-first-token;dur=");
        push_millis(&mut planned, first);
        planned.push_str(", sluice-interval;dur=");
        push_millis(&mut planned, timing.token_interval.typical());
        planned.push_str(", sluice-tool-call;dur=");
        push_millis(&mut planned, timing.tool_call_delay.typical());
        if self.slot.is_some() {
            planned.push_str(", sluice-queue;dur=");
            push_millis(&mut planned, self.queue_wait);
        }
        if let Some(slowdown) = &self.slowdown {
            let _ = write!(planned, ", sluice-load;desc=\"x{:.3}\"", slowdown.factor());
        }
        if let (true, Some(fault)) = (fault_applies, &self.plan.fault) {
            let label: String = fault.label().chars().filter(|c| *c != '"' && *c != '\\').collect();
            let _ = write!(planned, ", sluice-fault;desc=\"{label}\"");
        }
        planned
    }
}

/// Appends `duration` in milliseconds with three decimals (to the nearest
/// microsecond), as `{:.3}` of the float would, without float formatting:
/// every response's `Server-Timing` has three, and the float's exact
/// formatting was 1.5 % of the proxy's CPU.
fn push_millis(out: &mut String, duration: Duration) {
    // In u64 and u32: `as_nanos` is a u128, whose division and formatting
    // cost more than the float's.
    let rounded = duration.saturating_add(Duration::from_nanos(500));
    let (secs, micros) = (rounded.as_secs(), rounded.subsec_micros());
    let _ = match secs.checked_mul(1000).and_then(|ms| ms.checked_add(u64::from(micros / 1000))) {
        Some(millis) => write!(out, "{millis}.{:03}", micros % 1000),
        // Past u64 milliseconds: the seconds, then the milliseconds' digits.
        None => write!(out, "{secs}{:03}.{:03}", micros / 1000, micros % 1000),
    };
}

/// Charges a request to its buckets: the headers of their levels, the
/// settlement of its output tokens, or why it is refused.
async fn admit(
    app: &App,
    limits: &RateLimits,
    route: &str,
    client: &ClientKey,
    body: Option<&BodyFacts>,
    dialect: Dialect,
    now: Instant,
) -> Admission {
    let model = body.and_then(|facts| facts.model.as_deref());
    let id = SetId::new(limits.key, route, Some(client), model);
    let charge = Charge {
        input_tokens: body.map_or(0, |facts| facts.input_tokens),
        output_tokens: body.and_then(|facts| facts.max_tokens).unwrap_or(0),
    };
    let mut admission = Admission::default();
    let name = SetName { route, model };
    // With a fleet whose store answers, the fleet's buckets decide; else
    // this replica's, and what they admit is owed to the fleet's.
    let mut settler: Arc<dyn Settle> = Arc::clone(app.limiter()) as Arc<dyn Settle>;
    let decided = match app.fleet_up() {
        Some(fleet) => match fleet.limits.admit(fleet, limits, id, charge, now).await {
            Ok(decision) => {
                settler = Arc::clone(fleet) as Arc<dyn Settle>;
                Some(decision)
            }
            Err(error) => {
                fleet.failed("rate_limits", &error);
                None
            }
        },
        None => None,
    };
    let decision = decided.unwrap_or_else(|| {
        let decision = app.limiter().admit(limits, id, name, charge, now);
        if let (Some(fleet), Decision::Admitted(_)) = (app.fleet(), &decision) {
            fleet.limits.owe(id, limits, charge);
        }
        decision
    });
    let levels = match decision {
        Decision::Admitted(levels) => {
            let settles =
                limits.output_tokens_per_minute.is_some() || limits.tokens_per_minute.is_some();
            if settles {
                admission.settlement =
                    Some(Settlement::new(settler, *limits, id, charge.output_tokens));
            }
            levels
        }
        Decision::Refused(levels, mut limited) => {
            limited.model = body.and_then(|facts| facts.model.clone());
            admission.limited = Some(limited);
            levels
        }
    };
    admission.limit_headers = headers::headers(dialect, &levels, SystemTime::now());
    admission
}

/// The request's number in its route, for schedules: the fleet's when the
/// route's profile has a `first_requests` or `every` schedule and the
/// store answers (docs/fleet.md, "Schedules"), else this replica's.
async fn route_number(app: &App, snapshot: &Snapshot, route: &RouteState) -> u64 {
    let (Some(fleet), Some(exact_until)) = (app.fleet(), route.counted_until) else {
        return route.next_request();
    };
    let phase = snapshot.phase.as_deref();
    if fleet.is_up() {
        match fleet.counts.number(fleet, phase, &route.name, exact_until).await {
            Ok(number) => {
                route.follow(number);
                return number;
            }
            Err(error) => fleet.failed("schedules", &error),
        }
    }
    fleet.counts.owe(phase, &route.name);
    route.next_request()
}

/// `per_1k` for every 1,000 of `input_tokens`, at most [`crate::shape::MAX_DURATION`].
fn prefill(per_1k: Duration, input_tokens: u64) -> Duration {
    if per_1k.is_zero() {
        return Duration::ZERO;
    }
    let nanos = per_1k.as_nanos().saturating_mul(u128::from(input_tokens)) / 1000;
    u64::try_from(nanos)
        .map_or(crate::shape::MAX_DURATION, Duration::from_nanos)
        .min(crate::shape::MAX_DURATION)
}

/// The event that ends a stream cut short by shutdown: the dialect's error
/// event, so a client can tell it from a complete answer.
fn farewell(dialect: Dialect, request_id: String) -> super::stream_body::Farewell {
    Box::new(move || {
        dialect.error_event(
            "api_error",
            "sluice is shutting down; this stream was ended early",
            &request_id,
            &StreamSoFar::default(),
        )
    })
}

/// `req_` and a [`random_id`](crate::shape::rng::random_id), written into one string.
fn request_id(rng: &mut impl rand::Rng) -> String {
    let mut id = String::with_capacity(4 + ID_LEN);
    id.push_str("req_");
    push_random_id(&mut id, rng);
    id
}

/// A request id for responses outside the seeded pipeline.
pub(crate) fn other_request_id() -> String {
    request_id(&mut rand::rng())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn millis(duration: Duration) -> String {
        let mut out = String::new();
        push_millis(&mut out, duration);
        out
    }

    #[test]
    fn millis_have_three_decimals_rounded_to_the_microsecond() {
        assert_eq!(millis(Duration::ZERO), "0.000");
        assert_eq!(millis(Duration::from_millis(100)), "100.000");
        assert_eq!(millis(Duration::from_micros(20_250)), "20.250");
        assert_eq!(millis(Duration::from_nanos(1_499)), "0.001");
        assert_eq!(millis(Duration::from_nanos(1_500)), "0.002");
        assert_eq!(millis(Duration::from_nanos(999_999_600)), "1000.000");
        // No overflow at the end of the range (where rounding saturates).
        assert_eq!(millis(Duration::MAX), "18446744073709551615999.999");
        assert_eq!(millis(Duration::from_secs(u64::MAX / 1000 + 1)), "18446744073709552000.000");
    }

    proptest! {
        /// The same text as formatting the float, away from a tie at half a
        /// microsecond (where the float's rounding depends on its last bit).
        #[test]
        fn millis_match_the_float_formatting(ns in 0u64..10_000_000_000_000) {
            prop_assume!((ns % 1000).abs_diff(500) > 1);
            let duration = Duration::from_nanos(ns);
            prop_assert_eq!(millis(duration), format!("{:.3}", duration.as_secs_f64() * 1000.0));
        }
    }
}
