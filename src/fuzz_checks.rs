//! The properties the fuzz targets (`fuzz/`) check, one function per
//! target, so that the corpora can be replayed by an ordinary test
//! (`tests/fuzz_corpora.rs`) in CI without a fuzzer. Each function takes
//! arbitrary bytes and panics only when a property fails.
//!
//! Not part of sluice's API: hidden from its docs.

use crate::config::{self, value};
use crate::dialect::Dialect;
use crate::framing::{Framing, Record};
use crate::mock::anthropic::{self, Endpoint};
use crate::mock::openai;
use crate::mock::schema;
use crate::mock::{self, Reply, text};
use crate::shape::request_rng;

/// The SSE splitter under every dialect's classifier, fed `data` in chunks
/// whose sizes come from the data itself: the records re-join into exactly
/// the bytes given, and no record but an oversized one's parts outgrows the
/// limit by more than one chunk; the same when passing through after the
/// first text (a seed bit chooses), and then every record of an SSE stream
/// ends where the splitter that reads every event cuts too. Each record's
/// usage is read as the proxy reads it to settle `[rate_limits]`.
pub fn sse_split(data: &[u8]) {
    let Some((&cut_seed, stream)) = data.split_first() else { return };
    let dialects = [
        Dialect::Anthropic,
        Dialect::OpenAiChat,
        Dialect::OpenAiResponses,
        Dialect::Gemini,
        Dialect::Bedrock,
    ];
    for (framing, dialect) in Framing::ALL.into_iter().flat_map(|f| dialects.map(|d| (f, d))) {
        let max_event = 64;
        let split = |pass_through: bool| {
            let mut splitter = framing.splitter(dialect.classifier(), max_event);
            if pass_through {
                splitter.pass_through_after_first_text();
            }
            let mut records: Vec<Record> = Vec::new();
            let mut at = 0;
            let mut step = usize::from(cut_seed % 17) + 1;
            while at < stream.len() {
                let end = (at + step).min(stream.len());
                splitter.push(bytes::Bytes::copy_from_slice(&stream[at..end]), &mut records);
                at = end;
                step = step % 13 + 1;
            }
            records.extend(splitter.finish());
            records
        };
        let pass_through = cut_seed & 0x80 != 0;
        let records = split(pass_through);
        if pass_through && framing == Framing::Sse {
            let ends = |records: &[Record]| {
                let mut end = 0;
                records
                    .iter()
                    .map(|r| {
                        end += r.raw.len();
                        end
                    })
                    .collect::<std::collections::BTreeSet<usize>>()
            };
            let every_event = ends(&split(false));
            let missing: Vec<usize> = ends(&records).difference(&every_event).copied().collect();
            assert!(missing.is_empty(), "records end inside events at {missing:?}");
        }
        let joined: Vec<u8> = records.iter().flat_map(|r| r.raw.iter().copied()).collect();
        assert_eq!(joined, stream, "the records re-join into the bytes given");
        for record in &records {
            assert!(record.raw.len() <= max_event + 17, "a record of {} bytes", record.raw.len());
            // What the proxy settles rate limits by never panics on an upstream's event.
            std::hint::black_box(crate::ratelimit::usage::output_tokens(&record.raw));
        }
    }
}

/// A request body, parsed and validated by every mocked API's endpoints; a
/// valid one is answered in each API's encoding, and the answer stays within
/// its bounds: at most `tokens_per_response` text tokens, or a tool input
/// within the schema budget. An embeddings request is answered within its
/// own bound (2^20 numbers).
pub fn request(data: &[u8]) {
    let _ = anthropic::parse(data, &mock::HeadFacts::default(), Endpoint::CountTokens);
    let mut rng = request_rng(0, 0);
    if let Ok(json) = openai::embeddings::answer(data, &mut rng) {
        assert!(json.len() < 40 * (1 << 20), "{} bytes of embeddings", json.len());
    }
    let codecs = [
        mock::anthropic::API.endpoints[0].serve,
        mock::openai::CHAT.endpoints[0].serve,
        mock::openai::RESPONSES.endpoints[0].serve,
        mock::gemini::API.endpoints[0].serve,
        mock::bedrock::API.endpoints[0].serve,
    ];
    for serve in codecs {
        let mock::Serve::Generate(codec) = serve else { continue };
        let Ok(request) = (codec.parse)(data, &mock::HeadFacts::default()) else { continue };
        let mut rng = request_rng(0, 0);
        let Ok(reply) = Reply::generate(
            &request,
            50,
            &crate::config::ToolUse::DEFAULT,
            &crate::config::Thinking::DEFAULT,
            &mut rng,
        ) else {
            continue;
        };
        let message = (codec.message)(&reply, &request);
        // A completion echoes the request's echoed fields (the Responses API's tools).
        let bound = 2 * schema::Budget::DEFAULT.bytes + 64 * 1024 + 2 * data.len();
        assert!(message.len() < bound, "{}", message.len());
        if let Some(failure_at) = codec.failure_at {
            failure_at(&reply, &request, 3);
        }
        let events = (codec.events)(reply, &request).count();
        assert!(events < 2 * schema::Budget::DEFAULT.bytes, "{events} events");
    }
}

/// A JSON Schema (when the bytes are JSON): a sample within the budget, or
/// a refusal that names a path.
pub fn schema_sample(data: &[u8]) {
    let Ok(schema) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match schema::sample(&schema, &mut request_rng(1, 2)) {
        Ok(value) => {
            let size = value.to_string().len();
            // Strings and copies are counted exactly; keys, quotes and
            // separators add a bounded amount per value.
            let bound = schema::Budget::DEFAULT.bytes + 16 * schema::Budget::DEFAULT.values;
            assert!(size <= bound, "an input of {size} bytes");
        }
        Err(refusal) => assert!(!refusal.path().is_empty()),
    }
}

/// A config file: parsed and validated, never a panic; a valid one
/// describes itself.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = config::Config::from_toml_str(text, "fuzz.toml") {
        let _ = config::describe(&config, None);
        let _ = crate::banner(&config, ([127, 0, 0, 1], 1).into(), None);
        let _ = config.profile.tokens_per_response.draw(&mut request_rng(1, 2));
        // Every position a timeline takes, laid over the config, is a config
        // whose timing and lengths still draw within their bounds.
        if let Some(timeline) = &config.timeline {
            let offsets = timeline.phases.iter().flat_map(|phase| {
                [phase.at, phase.at + phase.ramp / 2, phase.at.saturating_add(phase.ramp)]
            });
            for offset in offsets {
                let (position, next) = timeline.position_at(offset);
                assert!(next.is_none_or(|next| next > offset), "{offset:?} -> {next:?}");
                if let Some(position) = position {
                    let mut phased = config.clone();
                    timeline.apply(&mut phased, position);
                    let profile = &phased.profile;
                    let mut rng = request_rng(5, 6);
                    let first = profile.timing.first_token_delay.sample(&mut rng);
                    assert!(first <= crate::shape::MAX_DURATION);
                    assert!((0.0..=1.0).contains(&profile.error_rate), "{}", profile.error_rate);
                    let _ = profile.tokens_per_response.draw(&mut rng);
                }
            }
        }
    }
}

/// A control header value (`x-sluice-inject`) and a runtime override body.
pub fn control(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = config::parse_fault_header(text);
    let _ = config::parse_runtime_patch(text);
}

/// Durations, sizes, rates and addresses, in every form a knob takes: what
/// is accepted is within its bound.
pub fn values(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [value::duration(text), value::env_duration(text)].into_iter().flatten() {
        assert!(parsed <= value::MAX_DURATION, "{text:?} gave {parsed:?}");
    }
    let _ = value::size(text);
    if let Ok(rate) = value::rate_text(text) {
        assert!((0.0..=1.0).contains(&rate));
    }
    let _ = value::listen(text);
    let _ = value::upstream_url(text);
    let _ = text::tokens(text.len() % 64, &mut request_rng(3, 4));
}

/// A cassette file (`crate::cassette`): what is read writes back to text
/// that reads as the same cassette, every offset within its bound; the
/// replay key, the redaction of its pieces and of its path never panic.
pub fn cassette(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::cassette::Redaction::default().path(text);
    let Ok(cassette) = crate::cassette::Cassette::parse(text) else { return };
    for piece in &cassette.pieces {
        assert!(piece.at <= crate::shape::MAX_DURATION, "offset {:?}", piece.at);
    }
    assert_eq!(crate::cassette::Cassette::parse(&cassette.to_text()).as_ref(), Ok(&cassette));
    let _ = crate::cassette::replay::last_user_message(&cassette.head.request.body);
    let redaction = crate::cassette::Redaction {
        headers: vec![],
        fields: vec!["id".into(), "message.content.0".into()],
        keep: vec![],
    };
    let stream = cassette.head.response.is_event_stream();
    for piece in cassette.pieces {
        let _ = redaction.payload(piece.bytes, stream);
    }
}
