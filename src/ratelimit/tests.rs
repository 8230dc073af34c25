//! The limiter on tokio's paused clock: exact admissions, levels and waits.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::headers::{headers, millis_up, seconds_up};
use super::*;
use crate::dialect::Dialect;

fn per_minute(requests: u64, burst: u64) -> RateLimits {
    RateLimits { requests_per_minute: Some(requests), burst: Some(burst), ..RateLimits::default() }
}

fn id(client: u64) -> SetId {
    SetId::new(LimitKey::ApiKey, "default", Some(&ClientKey { id: client }), None)
}

fn admitted(decision: &Decision) -> bool {
    matches!(decision, Decision::Admitted(_))
}

/// At 60 requests a minute with a burst of 10, a client that asks every
/// 100 ms gets exactly 10 at once, then exactly one a second; the levels
/// and the waits are exact.
#[tokio::test(start_paused = true)]
async fn sixty_a_minute_with_a_burst_of_ten_admits_exactly_one_a_second_after_the_burst() {
    let limiter = Limiter::default();
    let limits = per_minute(60, 10);
    let start = Instant::now();
    let mut admitted_at = Vec::new();
    let mut refused = 0;
    for tick in 0..=300u64 {
        let now = start + Duration::from_millis(100 * tick);
        match limiter.admit(&limits, id(1), "default", Charge::default(), now) {
            Decision::Admitted(levels) => {
                let level = levels.get(LimitKind::Requests).unwrap();
                assert_eq!(level.limit, 60);
                admitted_at.push((tick, level.remaining));
            }
            Decision::Refused(levels, limited) => {
                refused += 1;
                assert_eq!(levels.get(LimitKind::Requests).unwrap().remaining, 0);
                assert_eq!(limited.kind, LimitKind::Requests);
                assert_eq!((limited.limit, limited.used, limited.requested), (60, 10, 1));
                // Until the next whole second since the burst was spent at 0.
                let next = Duration::from_secs(tick / 10 + 1) - Duration::from_millis(100 * tick);
                assert_eq!(limited.wait, Some(next), "tick {tick}");
            }
        }
    }
    // Ticks 0-9: the burst of 10, each leaving one fewer. Then one a second
    // (ticks 10, 20, ..., 300), each leaving none.
    let burst: Vec<(u64, u64)> = (0..10).map(|t| (t, 9 - t)).collect();
    assert_eq!(&admitted_at[..10], &burst[..]);
    let steady: Vec<(u64, u64)> = (1..=30).map(|s| (s * 10, 0)).collect();
    assert_eq!(&admitted_at[10..], &steady[..]);
    assert_eq!(refused, 301 - 40);
}

/// The window count a tester checks: in every minute after the first, at
/// 60 a minute exactly 60 pass, whatever the client's pace.
#[tokio::test(start_paused = true)]
async fn every_minute_after_the_burst_admits_exactly_the_rate() {
    let limiter = Limiter::default();
    let limits = per_minute(60, 10);
    let start = Instant::now();
    let mut by_minute = [0u32; 3];
    // A client that asks every 7 ms for three minutes.
    for tick in 0..(180_000 / 7) {
        let at = Duration::from_millis(7 * tick);
        if admitted(&limiter.admit(&limits, id(2), "default", Charge::default(), start + at)) {
            by_minute[usize::try_from(at.as_secs() / 60).unwrap()] += 1;
        }
    }
    assert_eq!(by_minute, [10 + 59, 60, 60]);
}

#[tokio::test(start_paused = true)]
async fn the_headers_report_exact_counts_and_resets() {
    let limiter = Limiter::default();
    let limits = per_minute(60, 10);
    let start = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000); // 2027-01-15T08:00:00Z
    for _ in 0..3 {
        limiter.admit(&limits, id(1), "default", Charge::default(), start);
    }
    let Decision::Admitted(levels) = limiter.admit(
        &limits,
        id(1),
        "default",
        Charge::default(),
        start + Duration::from_millis(500),
    ) else {
        panic!("the fourth of a burst of ten is admitted");
    };
    let level = levels.get(LimitKind::Requests).unwrap();
    // 3 taken, half a token back, 1 taken: 6.5 left, 3.5 s until full.
    assert_eq!(level.remaining, 6);
    assert_eq!(level.until_full, Duration::from_millis(3500));
    let anthropic = headers(Dialect::Anthropic, &levels, wall);
    let text: Vec<(String, String)> =
        anthropic.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect();
    assert_eq!(
        text,
        [
            ("anthropic-ratelimit-requests-limit".into(), "60".into()),
            ("anthropic-ratelimit-requests-remaining".into(), "6".into()),
            ("anthropic-ratelimit-requests-reset".into(), "2027-01-15T08:00:04Z".into()),
        ]
    );
    let openai = headers(Dialect::OpenAiChat, &levels, wall);
    assert_eq!(openai[2].0, "x-ratelimit-reset-requests");
    assert_eq!(openai[2].1, "3.5s");
}

#[tokio::test(start_paused = true)]
async fn tokens_are_charged_at_admission_and_output_is_settled_at_the_end() {
    let limiter = std::sync::Arc::new(Limiter::default());
    let limits = RateLimits {
        input_tokens_per_minute: Some(1000),
        output_tokens_per_minute: Some(600),
        tokens_per_minute: Some(1500),
        ..RateLimits::default()
    };
    let now = Instant::now();
    let charge = Charge { input_tokens: 100, output_tokens: 500 };
    let Decision::Admitted(levels) = limiter.admit(&limits, id(1), "default", charge, now) else {
        panic!("a full bucket admits it");
    };
    assert_eq!(levels.get(LimitKind::InputTokens).unwrap().remaining, 900);
    assert_eq!(levels.get(LimitKind::OutputTokens).unwrap().remaining, 100);
    assert_eq!(levels.get(LimitKind::Tokens).unwrap().remaining, 900);
    assert_eq!(levels.get(LimitKind::Requests), None, "no request limit set");
    // The same again does not fit the output bucket: 400 more at 10 a second.
    let Decision::Refused(_, limited) = limiter.admit(&limits, id(1), "default", charge, now)
    else {
        panic!("500 output tokens do not fit in 100");
    };
    assert_eq!(limited.kind, LimitKind::OutputTokens);
    assert_eq!(limited.wait, Some(Duration::from_secs(40)));
    assert_eq!(
        (seconds_up(Duration::from_millis(39_001)), millis_up(Duration::from_nanos(1))),
        (40, 1)
    );
    // The reply produced 20 tokens: 480 go back.
    let mut settlement = Settlement::new(
        std::sync::Arc::clone(&limiter) as std::sync::Arc<dyn super::Settle>,
        limits,
        id(1),
        500,
    );
    settlement.produced(20);
    drop(settlement);
    let Decision::Admitted(levels) = limiter.admit(&limits, id(1), "default", charge, now) else {
        panic!("after settling, 580 output tokens are left");
    };
    assert_eq!(levels.get(LimitKind::OutputTokens).unwrap().remaining, 80);
    assert_eq!(levels.get(LimitKind::Tokens).unwrap().remaining, 1500 - 600 + 480 - 600);
    // More than a full bucket can hold: never.
    let huge = Charge { input_tokens: 0, output_tokens: 601 };
    let Decision::Refused(_, limited) = limiter.admit(&limits, id(1), "default", huge, now) else {
        panic!("601 output tokens never fit in 600");
    };
    assert_eq!((limited.kind, limited.wait), (LimitKind::OutputTokens, None));
}

#[tokio::test(start_paused = true)]
async fn keys_have_their_own_buckets_and_route_and_global_share_one() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let limits = per_minute(1, 1);
    assert!(admitted(&limiter.admit(&limits, id(1), "default", Charge::default(), now)));
    assert!(!admitted(&limiter.admit(&limits, id(1), "default", Charge::default(), now)));
    assert!(
        admitted(&limiter.admit(&limits, id(2), "default", Charge::default(), now)),
        "another key"
    );
    let other_route = SetId::new(LimitKey::ApiKey, "other", Some(&ClientKey { id: 1 }), None);
    assert!(admitted(&limiter.admit(&limits, other_route, "default", Charge::default(), now)));
    for key in [LimitKey::Route, LimitKey::Global] {
        let a = SetId::new(key, "r", Some(&ClientKey { id: 1 }), None);
        let b = SetId::new(key, if key == LimitKey::Global { "s" } else { "r" }, None, None);
        assert!(admitted(&limiter.admit(&limits, a, "default", Charge::default(), now)));
        assert!(
            !admitted(&limiter.admit(&limits, b, "default", Charge::default(), now)),
            "{key:?} is shared"
        );
    }
}

#[test]
fn per_model_keys_give_each_model_its_own_buckets() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let limits = RateLimits { key: LimitKey::ApiKeyAndModel, ..per_minute(1, 1) };
    let client = ClientKey { id: 7 };
    let on = |model| SetId::new(LimitKey::ApiKeyAndModel, "r", Some(&client), Some(model));
    let flash = SetName { route: "r", model: Some("gemini-2.5-flash") };
    assert!(admitted(&limiter.admit(
        &limits,
        on("gemini-2.5-flash"),
        flash,
        Charge::default(),
        now
    )));
    assert!(!admitted(&limiter.admit(
        &limits,
        on("gemini-2.5-flash"),
        flash,
        Charge::default(),
        now
    )));
    let pro = SetName { route: "r", model: Some("gemini-2.5-pro") };
    assert!(
        admitted(&limiter.admit(&limits, on("gemini-2.5-pro"), pro, Charge::default(), now)),
        "another model, the same key"
    );
    let other = SetId::new(
        LimitKey::ApiKeyAndModel,
        "r",
        Some(&ClientKey { id: 8 }),
        Some("gemini-2.5-flash"),
    );
    assert!(admitted(&limiter.admit(&limits, other, flash, Charge::default(), now)), "another key");
    // Under `api_key` the model does not split the set.
    assert_eq!(
        SetId::new(LimitKey::ApiKey, "r", Some(&client), Some("a")),
        SetId::new(LimitKey::ApiKey, "r", Some(&client), Some("b"))
    );
    let mut models: Vec<String> =
        limiter.report(10, now).into_iter().map(|set| set.model).collect();
    models.sort();
    assert_eq!(models, ["gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-pro"]);
}

#[tokio::test(start_paused = true)]
async fn the_map_is_bounded_and_forgets_full_buckets() {
    let limiter = Limiter::with_capacity(100);
    let limits = per_minute(60, 10);
    let start = Instant::now();
    for client in 1..=100 {
        limiter.admit(&limits, id(client), "default", Charge::default(), start);
    }
    assert_eq!(limiter.held(), 100);
    // Full of keys that used their buckets: a new key is never refused for
    // their use. Each new key is admitted from a full set of its own, which
    // is not kept (so the map stays at its bound).
    for client in 1..=100 {
        for _ in 0..9 {
            limiter.admit(&limits, id(client), "default", Charge::default(), start);
        }
    }
    for client in 1000..1200 {
        let first = limiter.admit(&limits, id(client), "default", Charge::default(), start);
        assert!(admitted(&first), "a brand-new key's first request");
    }
    assert_eq!(limiter.held(), 100);
    assert_eq!(limiter.untracked(), 200);
    // Ten seconds later every bucket is full again: the sweep forgets them.
    limiter.admit(&limits, id(102), "default", Charge::default(), start + Duration::from_secs(11));
    assert_eq!(limiter.held(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reload_changes_the_rates_and_keeps_the_levels() {
    let limiter = Limiter::default();
    let now = Instant::now();
    for _ in 0..10 {
        limiter.admit(&per_minute(60, 10), id(1), "default", Charge::default(), now);
    }
    // Now 120 a minute: the empty bucket refills at 2 a second.
    let faster = per_minute(120, 10);
    let Decision::Refused(_, limited) =
        limiter.admit(&faster, id(1), "default", Charge::default(), now)
    else {
        panic!("still empty");
    };
    assert_eq!(limited.wait, Some(Duration::from_millis(500)));
}

#[test]
fn a_client_is_a_hash_of_its_key_never_the_key() {
    let mut headers = HeaderMap::new();
    assert_eq!(ClientKey::of(&headers, None).label(), "anonymous");
    assert_eq!(ClientKey::of(&headers, Some("alt=sse&keys=1")).label(), "anonymous");
    headers.insert("authorization", "Bearer sk-test-1".parse().unwrap());
    let bearer = ClientKey::of(&headers, None);
    let mut other = HeaderMap::new();
    other.insert("x-api-key", "sk-test-1".parse().unwrap());
    assert_eq!(ClientKey::of(&other, None), bearer, "the same key, either header");
    let mut google = HeaderMap::new();
    google.insert("x-goog-api-key", "sk-test-1".parse().unwrap());
    assert_eq!(ClientKey::of(&google, None), bearer, "Google's header");
    let query = ClientKey::of(&HeaderMap::new(), Some("alt=sse&key=sk-test-1"));
    assert_eq!(query, bearer, "Google's ?key=");
    let mut signed = HeaderMap::new();
    let sigv4 = "AWS4-HMAC-SHA256 Credential=sk-test-1/20261207/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc";
    signed.insert("authorization", sigv4.parse().unwrap());
    assert_eq!(ClientKey::of(&signed, None), bearer, "a SigV4 access key id");
    // The label is the first 12 hex digits of the key's SHA-256.
    let digest = Sha256::digest(b"sk-test-1");
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(bearer.label(), format!("key:{hex}"));
    assert!(!bearer.label().contains("sk-test"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A token bucket's defining bound: from a full bucket, what is
        /// admitted by time T is at most its capacity plus T's refill.
        #[test]
        fn admissions_never_exceed_capacity_plus_refill(
            per_minute in 1u64..100_000,
            burst in 1u64..1_000,
            steps in proptest::collection::vec((0u64..5_000, 0u64..2_000), 1..200),
        ) {
            let limiter = Limiter::default();
            let limits = RateLimits {
                requests_per_minute: Some(per_minute),
                burst: Some(burst),
                input_tokens_per_minute: Some(per_minute),
                ..RateLimits::default()
            };
            let start = Instant::now();
            let (mut at_ms, mut requests, mut tokens) = (0u64, 0u64, 0u64);
            for (gap_ms, cost) in steps {
                at_ms += gap_ms;
                let charge = Charge { input_tokens: cost, output_tokens: 0 };
                let now = start + Duration::from_millis(at_ms);
                if let Decision::Admitted(levels) = limiter.admit(&limits, id(1), "r", charge, now) {
                    requests += 1;
                    tokens += cost;
                    let level = levels.get(LimitKind::Requests).unwrap();
                    prop_assert!(level.remaining <= burst);
                }
                let refill = |capacity: u64| {
                    u128::from(capacity) + u128::from(per_minute) * u128::from(at_ms) / 60_000
                };
                prop_assert!(u128::from(requests) <= refill(burst));
                prop_assert!(u128::from(tokens) <= refill(per_minute));
            }
        }

        /// The wait a refusal names is exact: a nanosecond sooner the same
        /// request is refused again, at the wait it is admitted.
        #[test]
        fn the_wait_of_a_refusal_is_exact(
            per_minute in 1u64..10_000,
            burst in 1u64..50,
            taken in 1u64..50,
            after_ms in 0u64..10_000,
        ) {
            let limits = super::per_minute(per_minute, burst);
            let start = Instant::now();
            let limiter = Limiter::default();
            for _ in 0..taken.min(burst) {
                limiter.admit(&limits, id(1), "r", Charge::default(), start);
            }
            let now = start + Duration::from_millis(after_ms);
            if let Decision::Refused(_, limited) = limiter.admit(&limits, id(1), "r", Charge::default(), now) {
                let wait = limited.wait.unwrap();
                prop_assert!(wait > Duration::ZERO);
                let probe = Limiter::default();
                for _ in 0..taken.min(burst) {
                    probe.admit(&limits, id(1), "r", Charge::default(), start);
                }
                let sooner = now + wait - Duration::from_nanos(1);
                prop_assert!(!admitted(&probe.admit(&limits, id(1), "r", Charge::default(), sooner)));
                prop_assert!(admitted(&probe.admit(&limits, id(1), "r", Charge::default(), now + wait)));
            }
        }
    }
}
