//! The fleet's channel: what one replica's admin port changed, told to
//! every other replica (publish/subscribe on `N:events`). A replica applies
//! what it hears (`src/fleet_sync.rs`); on every (re)subscription it is told
//! to [`Heard::Resync`], to read the state it may have missed while
//! unsubscribed (the fleet's `PUT /faults`, its runs).

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::debug;

use super::Fleet;
use super::store::StoreError;

/// The largest message a replica reads; larger ones are ignored.
const MAX_MESSAGE: usize = 2 * 1024 * 1024;

/// A change made on one replica, for all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// `PUT /faults` with this body (JSON, as sent).
    Faults {
        /// The patch, as sent.
        text: String,
    },
    /// `DELETE /faults`.
    FaultsCleared,
    /// `POST /runs`.
    RunStarted {
        /// The fleet's id for it.
        id: String,
        /// Its name.
        name: Option<String>,
    },
    /// `POST /runs/{id}/end`.
    RunEnded {
        /// The run.
        id: String,
    },
    /// `DELETE /rate-limits` or a fresh run: the fleet's buckets are new.
    LimitsCleared {
        /// How many times they have been cleared.
        clears: u64,
    },
    /// A replica's heartbeat: traffic on the channel every second, so that
    /// a subscription that went silent (a connection dead without a reset)
    /// is noticed and made again.
    Beat,
}

/// A subscription that hears nothing for this long (every replica, this
/// one included, publishes a [`Event::Beat`] a second) subscribes again.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// An event and who sent it.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    from: String,
    #[serde(flatten)]
    event: Event,
}

/// What the subscriber hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Another replica's change.
    Event(Event),
    /// Subscribed (again): read what may have been missed.
    Resync,
}

/// Tells every other replica of `event`.
///
/// # Errors
/// The store did not take it.
pub(crate) async fn publish(fleet: &Fleet, event: Event) -> Result<(), StoreError> {
    let message = Message { from: fleet.replica().to_string(), event };
    let text = serde_json::to_string(&message).unwrap_or_default();
    fleet.store().publish(&fleet.channel(), &text).await
}

/// Listens on the fleet's channel for as long as `heard` has a receiver,
/// subscribing again a heartbeat after the connection is lost.
pub(crate) async fn listen(fleet: std::sync::Arc<Fleet>, heard: mpsc::Sender<Heard>) {
    loop {
        let subscribed = async {
            let mut pubsub = fleet.store().client().get_async_pubsub().await?;
            pubsub.subscribe(fleet.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(fleet.store().timeout(), subscribed).await {
            Ok(Ok(pubsub)) => {
                if heard.send(Heard::Resync).await.is_err() {
                    return;
                }
                let mut messages = pubsub.into_on_message();
                while let Ok(Some(message)) = tokio::time::timeout(SILENCE, messages.next()).await {
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    if payload.len() > MAX_MESSAGE {
                        continue;
                    }
                    let Ok(message) = serde_json::from_slice::<Message>(&payload) else {
                        debug!("ignored a message on the fleet's channel that is not sluice's");
                        continue;
                    };
                    if message.from == fleet.replica() || message.event == Event::Beat {
                        continue;
                    }
                    if heard.send(Heard::Event(message.event)).await.is_err() {
                        return;
                    }
                }
                debug!("the fleet's channel closed or went silent; subscribing again");
            }
            Ok(Err(error)) => debug!(%error, "cannot subscribe to the fleet's channel"),
            Err(_) => debug!("subscribing to the fleet's channel timed out"),
        }
        tokio::time::sleep(super::HEARTBEAT_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written() {
        for event in [
            Event::Faults { text: "error_rate = 1".into() },
            Event::FaultsCleared,
            Event::RunStarted { id: "run-3".into(), name: Some("soak".into()) },
            Event::RunEnded { id: "run-3".into() },
            Event::LimitsCleared { clears: 2 },
            Event::Beat,
        ] {
            let text =
                serde_json::to_string(&Message { from: "a".into(), event: event.clone() }).unwrap();
            let back: Message = serde_json::from_str(&text).unwrap();
            assert_eq!(back.event, event);
            assert_eq!(back.from, "a");
        }
    }
}
