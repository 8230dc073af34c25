#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn head(content_type: &str) -> Head {
    Head {
        sluice_cassette: FORMAT,
        recorded_at: "2026-12-02T14:00:00.000Z".into(),
        request: RequestPart {
            method: "POST".into(),
            path: "/v1/messages".into(),
            headers: BTreeMap::from([("anthropic-version".into(), "2023-06-01".into())]),
            body: json!({"model": "m", "stream": true}),
        },
        response: ResponsePart {
            status: 200,
            head_ms: 12.5,
            headers: BTreeMap::from([("content-type".into(), content_type.into())]),
        },
    }
}

#[test]
fn a_cassette_reads_back_as_written_with_text_and_binary_pieces() {
    let cassette = Cassette {
        head: head("text/event-stream; charset=utf-8"),
        pieces: vec![
            Piece {
                at: Duration::from_micros(812_345),
                bytes: Bytes::from_static(b"event: a\ndata: {}\n\n"),
            },
            Piece {
                at: Duration::from_millis(900),
                bytes: Bytes::from_static(b"data: \xff\xfe\n\n"),
            },
        ],
    };
    let text = cassette.to_text();
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains(r#"{"at_ms":812.345,"sse":"event: a\ndata: {}\n\n"}"#), "{text}");
    assert!(text.contains("sse_base64"), "{text}");
    assert_eq!(Cassette::parse(&text).unwrap(), cassette);
}

#[test]
fn a_bad_cassette_is_refused_with_its_line() {
    let good = Cassette { head: head("application/json"), pieces: vec![] }.to_text();
    let cases = [
        ("", "line 1: empty"),
        ("{}", "line 1: not a cassette head"),
        (
            &*good.replace("\"sluice_cassette\":1", "\"sluice_cassette\":2"),
            "line 1: sluice_cassette 2",
        ),
        (&*format!("{good}{{\"at_ms\":-1,\"body\":\"x\"}}\n"), "line 2: at_ms"),
        (&*format!("{good}{{\"at_ms\":1,\"sse\":\"x\"}}\n"), "line 2: a body line"),
        (
            &*format!("{good}{{\"at_ms\":1,\"body\":\"x\",\"body_base64\":\"eA==\"}}\n"),
            "line 2: a body line",
        ),
        (&*format!("{good}{{\"at_ms\":1,\"body_base64\":\"!!\"}}\n"), "line 2: bad base64"),
        (&*format!("{good}\n\n{{\"at_ms\":1e300,\"body\":\"x\"}}\n"), "line 4: at_ms"),
        (&*format!("{good}not json\n"), "line 2:"),
    ];
    for (text, expected) in cases {
        let error = Cassette::parse(text).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{text:?}: {error}");
    }
    let huge = "x".repeat(MAX_CASSETTE_BYTES + 1);
    assert_eq!(Cassette::parse(&huge), Err(CassetteError::TooLarge));
}

#[test]
fn credentials_never_reach_a_cassette_in_any_header_form() {
    let mut headers = hyper::HeaderMap::new();
    for (name, value) in [
        ("x-api-key", "sk-ant-secret1"),
        ("authorization", "Bearer sk-secret2"),
        ("proxy-authorization", "Basic c2VjcmV0Mw=="),
        ("api-key", "secret4"),
        ("x-goog-api-key", "secret5"),
        ("cookie", "session=secret6"),
        ("x-user-email", "someone@example.com"),
        ("anthropic-version", "2023-06-01"),
        ("content-length", "12"),
        ("accept", "a"),
    ] {
        headers.append(hyper::header::HeaderName::from_static(name), value.parse().unwrap());
    }
    headers.append("accept", "b".parse().unwrap());
    let redaction =
        Redaction { headers: vec!["x-user-email".into()], fields: vec![], keep: vec![] };
    let kept = redaction.headers(&headers);
    assert_eq!(
        kept,
        BTreeMap::from([
            ("accept".to_string(), "a, b".to_string()),
            ("anthropic-version".to_string(), "2023-06-01".to_string()),
            ("x-user-email".to_string(), REDACTED.to_string()),
        ])
    );
    assert_eq!(
        redaction.path("/v1/models?key=secret7&page=2&API_KEY=secret8"),
        "/v1/models?key=[redacted]&page=2&API_KEY=[redacted]"
    );
    assert_eq!(redaction.path("/v1/messages"), "/v1/messages");
}

/// Every form a credential was seen to reach a cassette in: encoded query
/// names, `;` separators, headers the fixed list missed, and body fields.
#[test]
fn anything_that_looks_like_a_secret_is_kept_out_unless_configured() {
    let redaction = Redaction::default();
    assert_eq!(
        redaction.path("/v1/messages?api%5Fkey=S1&x=1;key=S2&Access%2DToken=S3&page=2"),
        "/v1/messages?api%5Fkey=[redacted]&x=1;key=[redacted]&Access%2DToken=[redacted]&page=2"
    );
    let mut headers = hyper::HeaderMap::new();
    for (name, value) in [
        ("anthropic-api-key", "S4"),
        ("openai-api-key", "S5"),
        ("x-auth-token", "S6"),
        ("openai-organization", "org-S7"),
        ("x-client-secret", "S8"),
        ("x-request-signature", "S9"),
        ("anthropic-version", "2023-06-01"),
        ("x-stainless-retry-count", "0"),
    ] {
        headers.append(hyper::header::HeaderName::from_static(name), value.parse().unwrap());
    }
    let kept = redaction.headers(&headers);
    let text = format!("{kept:?}");
    for secret in ["S4", "S5", "S6", "S7", "S8", "S9"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(kept["anthropic-version"], "2023-06-01");
    assert_eq!(kept["x-stainless-retry-count"], "0");
    assert_eq!(kept["x-auth-token"], REDACTED);
    let body = redaction.body(
        br#"{"model":"m","max_tokens":64,"api_key":"S10","metadata":{"clientSecret":"S11","user_id":"u"},
            "tools":[{"name":"login","input_schema":{"properties":{"password":{"type":"string"}}}}],
            "messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S12"}]}]}"#,
    );
    assert_eq!(body["api_key"], REDACTED);
    assert_eq!(body["metadata"]["clientSecret"], REDACTED);
    assert_eq!(body["messages"][0]["content"][0]["signature"], REDACTED);
    assert_eq!(body["max_tokens"], 64, "a count of tokens is no secret");
    assert_eq!(body["metadata"]["user_id"], "u");
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["password"],
        json!({"type": "string"}),
        "a schema's property names a field, it holds no value"
    );
    // `keep` names what only looks like a secret.
    let keeping = Redaction { keep: vec!["idempotency-key".into()], ..Redaction::default() };
    let mut headers = hyper::HeaderMap::new();
    headers.insert("idempotency-key", "k-1".parse().unwrap());
    assert_eq!(keeping.headers(&headers)["idempotency-key"], "k-1");
    assert_eq!(redaction.headers(&headers)["idempotency-key"], REDACTED);
}

#[test]
fn listed_fields_are_redacted_in_bodies_and_in_events() {
    let redaction = Redaction {
        headers: vec![],
        fields: vec!["metadata.user_id".into(), "messages.0.content".into(), "id".into()],
        keep: vec![],
    };
    let body = redaction.body(
        br#"{"model":"m","metadata":{"user_id":"u-42"},"messages":[{"role":"user","content":"secret"}]}"#,
    );
    assert_eq!(
        body,
        json!({"model":"m","metadata":{"user_id":REDACTED},"messages":[{"role":"user","content":REDACTED}]})
    );
    assert_eq!(redaction.body(b"not json"), json!("not json"));
    assert_eq!(redaction.body(b""), Value::Null);
    let event =
        Bytes::from_static(b"event: message_start\r\ndata: {\"id\":\"msg_1\",\"n\":1}\r\n\r\n");
    assert_eq!(
        redaction.payload(event, true),
        Bytes::from_static(
            b"event: message_start\r\ndata: {\"id\":\"[redacted]\",\"n\":1}\r\n\r\n"
        )
    );
    // Nothing listed is named: the bytes are not touched (not even re-encoded).
    let untouched = Bytes::from_static(b"data: {\"x\" : 1}\n\n");
    assert_eq!(redaction.payload(untouched.clone(), true), untouched);
    assert_eq!(Redaction::default().payload(untouched.clone(), true), untouched);
    assert_eq!(
        redaction.payload(Bytes::from_static(br#"{"id":"x"}"#), false),
        Bytes::from_static(br#"{"id":"[redacted]"}"#)
    );
}

proptest! {
    #[test]
    fn any_pieces_round_trip_exactly(
        pieces in proptest::collection::vec((0u64..10_000_000, proptest::collection::vec(any::<u8>(), 0..64)), 0..20),
        stream in any::<bool>(),
    ) {
        let content_type = if stream { "text/event-stream" } else { "application/json" };
        let cassette = Cassette {
            head: head(content_type),
            pieces: pieces
                .into_iter()
                .map(|(micros, bytes)| Piece { at: Duration::from_micros(micros), bytes: Bytes::from(bytes) })
                .collect(),
        };
        prop_assert_eq!(Cassette::parse(&cassette.to_text()).unwrap(), cassette);
    }

    #[test]
    fn any_text_is_read_or_refused_without_panic(text in ".{0,400}") {
        let _ = Cassette::parse(&text);
    }
}
