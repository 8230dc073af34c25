//! `[timeline]` over real sockets on the paused clock: each phase and each
//! ramp step at its exact offset, the phase in `x-sluice-phase`, `/config`
//! and the gauge, scheduled faults counted per phase, an admin start and
//! stop, and runtime overrides over the phase.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers panic on failure")]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Received, admin_json, messages, metric, ms, send, start_with_admin, text_request};
use tokio::time::Instant;

const STORY: &str = r#"
seed = 1
error_rate = 0
first_token_delay = "100ms"
token_interval = "10ms"
tokens_per_response = 3

[timeline]
[[timeline.phases]]
name = "baseline"
at = "0s"

[[timeline.phases]]
name = "degraded"
at = "10s"
ramp = "5s"
first_token_delay = "600ms"
faults = [{ kind = "http", status = 500, first_requests = 1 }]

[[timeline.phases]]
name = "outage"
at = "20s"
faults = [{ kind = "http", status = 529, first_requests = 2 }]

[[timeline.phases]]
name = "recovery"
at = "30s"
ramp = "2s"
error_rate = 0.2
"#;

/// The first content delta's arrival, from the request's sending.
fn first_token(received: &Received) -> Duration {
    received.events().into_iter().find(|(name, _, _)| name == "content_block_delta").unwrap().2
}

async fn config(admin: std::net::SocketAddr) -> Value {
    admin_json(admin, "GET", "/config", "").await.1
}

#[tokio::test(start_paused = true)]
async fn each_phase_and_ramp_step_is_in_force_at_its_offset() {
    let start = Instant::now();
    let sluice = start_with_admin(STORY).await;
    let at = |offset: u64| tokio::time::sleep_until(start + ms(offset));
    at(1000).await;
    let baseline = send(sluice.api, messages(&text_request())).await;
    assert_eq!(baseline.header("x-sluice-phase"), "baseline");
    assert_eq!(first_token(&baseline), ms(100));
    let gauge = |phase: &str| format!("sluice_timeline_phase{{phase=\"{phase}\"}}");
    assert_eq!(metric(sluice.admin, &gauge("baseline")).await, 1.0);

    // The degraded phase's first request draws its scheduled fault...
    at(10_000).await;
    let first = send(sluice.api, messages(&text_request())).await;
    assert_eq!((first.status.as_u16(), first.header("x-sluice-phase")), (500, "degraded"));
    // ... and later steps of its ramp count on: no second fault.
    at(12_499).await;
    assert_eq!(config(sluice.admin).await["first_token_delay"], "340ms", "steps of 100 ms");
    at(12_500).await;
    assert_eq!(config(sluice.admin).await["first_token_delay"], "350ms");
    let halfway = send(sluice.api, messages(&text_request())).await;
    assert_eq!(halfway.status, 200);
    assert_eq!(first_token(&halfway), ms(350), "half way from 100 ms to 600 ms");
    at(15_000).await;
    let degraded = send(sluice.api, messages(&text_request())).await;
    assert_eq!(first_token(&degraded), ms(600));
    assert_eq!(metric(sluice.admin, &gauge("baseline")).await, 0.0);
    assert_eq!(metric(sluice.admin, &gauge("degraded")).await, 1.0);

    // A new phase counts its scheduled faults from its start.
    at(20_000).await;
    for expected in [529, 529, 200] {
        let outage = send(sluice.api, messages(&text_request())).await;
        assert_eq!(outage.status, expected);
        assert_eq!(outage.header("x-sluice-phase"), "outage");
    }
    assert_eq!(first_token(&send(sluice.api, messages(&text_request())).await), ms(100));

    // Recovery ramps error_rate from the outage's 0 to 0.2 over 2 s.
    at(31_000).await;
    let recovering = config(sluice.admin).await;
    assert_eq!(
        (recovering["phase"].as_str(), recovering["error_rate"].as_f64()),
        (Some("recovery"), Some(0.1))
    );
    at(32_000).await;
    assert_eq!(config(sluice.admin).await["error_rate"], 0.2);
    let report = admin_json(sluice.admin, "GET", "/timeline", "").await.1;
    assert_eq!(report["phase"], "recovery");
    assert_eq!(report["ramp_step"], serde_json::json!([20, 20]));
    assert_eq!(report["next_change_in"], Value::Null, "the last phase stays");
}

#[tokio::test(start_paused = true)]
async fn an_admin_start_begins_the_story_and_a_stop_returns_to_the_baseline() {
    let story = STORY
        .replace("[timeline]\n", "[timeline]\nstart = \"admin\"\n")
        .replace("faults = [{ kind = \"http\", status = 500, first_requests = 1 }]\n", "");
    let start = Instant::now();
    let sluice = start_with_admin(&story).await;
    tokio::time::sleep_until(start + ms(15_000)).await;
    let waiting = send(sluice.api, messages(&text_request())).await;
    assert_eq!(waiting.header("x-sluice-phase"), "none");
    assert_eq!(first_token(&waiting), ms(100));

    let (status, started) = admin_json(sluice.admin, "POST", "/timeline/start", "").await;
    assert_eq!((status, started["phase"].as_str()), (200, Some("baseline")));
    let origin = Instant::now();
    tokio::time::sleep_until(origin + ms(15_000)).await;
    let degraded = send(sluice.api, messages(&text_request())).await;
    assert_eq!(degraded.header("x-sluice-phase"), "degraded");
    assert_eq!(first_token(&degraded), ms(600));

    // An operator's override wins over the phase, and gives it back.
    let patch = r#"{"first_token_delay": "50ms"}"#;
    assert_eq!(admin_json(sluice.admin, "PUT", "/faults", patch).await.0, 200);
    assert_eq!(first_token(&send(sluice.api, messages(&text_request())).await), ms(50));
    assert_eq!(admin_json(sluice.admin, "DELETE", "/faults", "").await.0, 200);
    assert_eq!(first_token(&send(sluice.api, messages(&text_request())).await), ms(600));

    let (_, stopped) = admin_json(sluice.admin, "DELETE", "/timeline", "").await;
    assert_eq!(
        (stopped["phase"].as_str(), stopped["origin"].as_str()),
        (Some("none"), Some("stopped"))
    );
    let after = send(sluice.api, messages(&text_request())).await;
    assert_eq!((after.header("x-sluice-phase"), first_token(&after)), ("none", ms(100)));
}

#[test]
fn a_timeline_out_of_order_or_naming_no_profile_is_refused_with_its_place() {
    let refuse =
        |text: &str| sluice::Config::from_toml_str(text, "t.toml").unwrap_err().to_string();
    assert_eq!(
        refuse(
            "[timeline]\n[[timeline.phases]]\nat = \"10s\"\nramp = \"5s\"\n[[timeline.phases]]\nat = \"12s\"\n"
        ),
        "t.toml:6:6: invalid timeline.phases.1.at 12s: expected an offset after the phase before's, and after the end of its ramp (at + ramp)"
    );
    assert_eq!(
        refuse(
            "[timeline]\n[[timeline.phases]]\nat = \"0s\"\n[timeline.phases.profiles.slow]\nerror_rate = 1.0\n"
        ),
        "t.toml:4:1: invalid timeline.phases.0.profiles.slow \"slow\": expected the name of a [profiles.NAME] table"
    );
    assert_eq!(
        refuse("[timeline]\n[[timeline.phases]]\nat = \"0s\"\nname = \"a b\"\n"),
        "t.toml:4:8: invalid timeline.phases.0.name \"a b\": expected a name of 1 to 64 letters, digits, '-', '_' or '.' used by no other phase"
    );
    assert!(refuse("[timeline]\nstart = \"now\"\n").contains("invalid timeline.start \"now\""));
}
