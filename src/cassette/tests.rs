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
    let redaction = Redaction { headers: vec!["x-user-email".into()], fields: vec![] };
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
        Redaction::path("/v1/models?key=secret7&page=2&API_KEY=secret8"),
        "/v1/models?key=[redacted]&page=2&API_KEY=[redacted]"
    );
    assert_eq!(Redaction::path("/v1/messages"), "/v1/messages");
}

#[test]
fn listed_fields_are_redacted_in_bodies_and_in_events() {
    let redaction = Redaction {
        headers: vec![],
        fields: vec!["metadata.user_id".into(), "messages.0.content".into(), "id".into()],
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
