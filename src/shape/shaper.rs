//! [`Shaper`]: the `Stream` that releases a source's records on the pacer's
//! schedule, and applies the request's stream fault. The only thing on the
//! data path that waits.
//!
//! It holds at most one record. While that record waits for its release time
//! the source is not polled, so a proxied upstream is slowed by backpressure
//! rather than buffered, and dropping the shaper (the client left) drops the
//! source at once. No task, no channel.
//!
//! A stream fault fires "after N tokens": in place of the (N+1)-th token, at
//! the moment that token would have been released (or at the end of the
//! source if it has no more tokens). `Malformed` instead sends that token
//! corrupted and goes on.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::pacer::Pacer;
use super::timer::Gate;
use crate::framing::Framing;
use crate::framing::Record;
use crate::response::BoxError;

/// When a record counts as having arrived from its source.
#[derive(Debug, Clone)]
pub(crate) enum Arrival {
    /// The source is instant (the mock): every record is taken to arrive at
    /// this instant (the request's arrival), so the configured schedule is
    /// exactly what the client sees, however long the source itself took.
    AtRequestStart(Instant),
    /// The source takes real time (an upstream): a record arrives when the
    /// shaper receives it.
    WhenReceived,
    /// A recording (replay): the n-th record arrives at `start` plus the
    /// n-th offset (records past the last offset, at `start`).
    Recorded {
        /// The request's arrival (after a slow head).
        start: Instant,
        /// Each record's offset from it, in order.
        offsets: std::vec::IntoIter<Duration>,
    },
}

/// What a stream fault does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamAction {
    /// Send this record, then end the stream: the provider's error event,
    /// or its own end of a turn the model stopped early.
    EndWith(Record),
    /// Fail the body with [`InjectedReset`]; the server resets the connection.
    Reset,
    /// End the stream cleanly, without its final event.
    Truncate,
    /// Send nothing more; end cleanly after the duration, or never.
    Stall(Option<Duration>),
    /// Send the token corrupted, then go on.
    Malformed(Framing),
}

/// A stream fault: what, and after how many tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamFault {
    /// Tokens released before it fires.
    pub(crate) after_tokens: u32,
    /// What it does.
    pub(crate) action: StreamAction,
}

/// The error a [`StreamAction::Reset`] ends the body with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection reset by sluice (injected fault)")]
pub(crate) struct InjectedReset;

#[derive(Debug)]
enum Held {
    Record(Record),
    Fire(StreamAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Flowing,
    /// Stalled; `true` while a timed stall's gate is set.
    Stalled(bool),
    Ended,
}

pin_project! {
    /// Releases records on `pacer`'s schedule and applies one stream fault.
    pub(crate) struct Shaper<S> {
        #[pin]
        source: S,
        gate: Gate,
        held: Option<Held>,
        pacer: Pacer,
        arrival: Arrival,
        fault: Option<StreamFault>,
        released_tokens: u32,
        state: State,
        // When the held record is due: its lateness is counted from here.
        due: Instant,
        lateness: Option<LatenessObserver>,
    }
}

/// Told how late each token was released against its schedule.
pub(crate) type LatenessObserver = Box<dyn FnMut(Duration) + Send>;

impl<S> Shaper<S> {
    /// Shapes `source` with `pacer`.
    pub(crate) fn new(source: S, pacer: Pacer, arrival: Arrival) -> Self {
        Self {
            source,
            gate: Gate::new(Instant::now()),
            held: None,
            pacer,
            arrival,
            fault: None,
            released_tokens: 0,
            state: State::Flowing,
            due: Instant::now(),
            lateness: None,
        }
    }

    /// Tells `observe` how late each token is released against its schedule
    /// (zero when exact; sluice's own view, before the write).
    pub(crate) fn with_lateness(mut self, observe: LatenessObserver) -> Self {
        self.lateness = Some(observe);
        self
    }

    /// Applies `fault` to the stream.
    pub(crate) fn with_fault(mut self, fault: Option<StreamFault>) -> Self {
        self.fault = fault;
        self
    }
}

impl<S, E> Stream for Shaper<S>
where
    S: Stream<Item = Result<Record, E>>,
    E: Into<BoxError>,
{
    type Item = Result<Record, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            match *this.state {
                State::Ended => return Poll::Ready(None),
                State::Stalled(false) => return Poll::Pending, // until the client leaves
                State::Stalled(true) => {
                    ready!(this.gate.poll(cx));
                    *this.state = State::Ended;
                    return Poll::Ready(None);
                }
                State::Flowing => {}
            }
            // When the gate was found open (read once per release).
            let opened: Option<Instant>;
            if this.held.is_none() {
                let now = Instant::now();
                let (held, at) = match ready!(this.source.as_mut().poll_next(cx)) {
                    Some(Ok(mut record)) => {
                        let arrived = match this.arrival {
                            Arrival::AtRequestStart(start) => *start,
                            Arrival::WhenReceived => now,
                            Arrival::Recorded { start, offsets } => {
                                super::later(*start, offsets.next().unwrap_or_default())
                            }
                        };
                        let at = this.pacer.release_at(arrived, record.kind);
                        let fires = record.kind.is_content()
                            && this
                                .fault
                                .as_ref()
                                .is_some_and(|f| f.after_tokens == *this.released_tokens);
                        match this.fault.take_if(|_| fires).map(|f| f.action) {
                            Some(StreamAction::Malformed(framing)) => {
                                record = framing.corrupt(&record)
                            }
                            Some(action) => {
                                this.gate.reset(at);
                                *this.held = Some(Held::Fire(action));
                                continue;
                            }
                            None => {}
                        }
                        (Held::Record(record), at)
                    }
                    Some(Err(error)) => {
                        *this.state = State::Ended;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => match this.fault.take().map(|f| f.action) {
                        Some(action) if !matches!(action, StreamAction::Malformed(_)) => {
                            (Held::Fire(action), now)
                        }
                        _ => {
                            *this.state = State::Ended;
                            return Poll::Ready(None);
                        }
                    },
                };
                *this.due = at;
                if at <= now {
                    // Due already: skip the timer.
                    *this.held = Some(held);
                    opened = Some(now);
                } else {
                    this.gate.reset(at);
                    *this.held = Some(held);
                    // `at` is after `now`: wait without reading the clock again.
                    ready!(this.gate.poll_known_ahead(cx));
                    opened = None;
                }
            } else {
                opened = Some(ready!(this.gate.poll_open(cx)));
            }
            match this.held.take() {
                Some(Held::Record(record)) => {
                    if record.kind.is_content() {
                        *this.released_tokens += 1;
                        if this.lateness.is_some() || this.pacer.stretches() {
                            let opened = opened.unwrap_or_else(Instant::now);
                            let late = opened.saturating_duration_since(*this.due);
                            if let Some(observe) = this.lateness {
                                observe(late);
                            }
                            this.pacer.released(super::later(*this.due, late));
                        }
                    }
                    return Poll::Ready(Some(Ok(record)));
                }
                Some(Held::Fire(action)) => match action {
                    StreamAction::EndWith(record) => {
                        *this.state = State::Ended;
                        return Poll::Ready(Some(Ok(record)));
                    }
                    StreamAction::Reset => {
                        *this.state = State::Ended;
                        return Poll::Ready(Some(Err(Box::new(InjectedReset))));
                    }
                    StreamAction::Truncate | StreamAction::Malformed(_) => {
                        *this.state = State::Ended;
                        return Poll::Ready(None);
                    }
                    StreamAction::Stall(Some(duration)) => {
                        this.gate.reset(super::later(Instant::now(), duration));
                        *this.state = State::Stalled(true);
                    }
                    StreamAction::Stall(None) => *this.state = State::Stalled(false),
                },
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
