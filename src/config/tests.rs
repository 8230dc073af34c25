//! Config parsing, validation and layering: every error path names its origin,
//! key, value and the accepted form.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::layer::Overrides;
use super::raw::*;
use super::*;
use crate::fault::{
    Malformed, Reset, STATUS_FORM, SlowHead, Stall, Stop, StopReason, StreamError, Truncate,
    kind_form,
};

/// A file as start-up reads it, with no environment or flags.
fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = crate::live::Source::File { path: path.to_path_buf(), layers: Vec::new() };
    source.load().map(|loaded| loaded.config)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, "test.toml")
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn an_empty_file_gives_the_node_mocks_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.listen.to_string(), "0.0.0.0:3456");
    assert_eq!(config.profile.timing.first_token_delay, ms(100).into());
    assert_eq!(config.profile.timing.token_interval, ms(20).into());
    assert_eq!(config.profile.timing.tool_call_delay, ms(500).into());
    assert_eq!(config.profile.tokens_per_response, Length::Fixed(50));
    assert_eq!(config.profile.error_rate, 0.005);
    assert_eq!(config.head, HeadTiming::FirstToken);
}

#[test]
fn the_shipped_config_file_is_valid_and_documents_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml");
    let mut config = load(Path::new(path)).unwrap();
    assert_eq!(config.source, ConfigSource::File(PathBuf::from(path)));
    config.source = ConfigSource::Defaults;
    assert_eq!(config, Config::default());
}

#[test]
fn the_shipped_upstream_example_is_valid_once_uncommented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("# [upstream]").unwrap();
    let uncommented: String = text[start..]
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let config = parse(&format!("{}\n{uncommented}\n", &text[..start])).unwrap();
    let upstream = config.upstream.unwrap();
    assert_eq!(upstream.url, "https://api.anthropic.com/");
    assert_eq!(upstream.ca_file, Some(PathBuf::from("/etc/sluice/ca.pem")));
    assert_eq!(
        Upstream { ca_file: None, ..upstream },
        Upstream::new("https://api.anthropic.com".parse().unwrap())
    );
}

/// The block of the shipped file that starts at `header`, up to the next
/// blank line, with one level of `# ` taken off each line.
fn shipped_block(header: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find(header).unwrap();
    text[start..]
        .lines()
        .take_while(|line| !line.is_empty())
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_shipped_rate_limits_tls_record_and_replay_examples_are_valid_once_uncommented() {
    let limits = parse(&shipped_block("# [rate_limits]")).unwrap().profile.rate_limits;
    assert_eq!(limits.requests_per_minute, Some(1000));
    assert_eq!(limits.burst, Some(50));
    assert_eq!(limits.tokens_per_minute, Some(400_000));
    let tls = parse(&shipped_block("# [tls]")).unwrap().tls.unwrap();
    assert_eq!(
        tls.certificate,
        TlsCertificate::Files {
            cert: PathBuf::from("/etc/sluice/tls/cert.pem"),
            key: PathBuf::from("/etc/sluice/tls/key.pem"),
        }
    );
    assert_eq!(tls.alpn, [Alpn::H2, Alpn::Http11]);
    let record = parse(&shipped_block("# [record]")).unwrap().record.unwrap();
    assert_eq!(record.dir, PathBuf::from("cassettes"));
    assert_eq!(record.redact_fields, ["metadata.user_id"]);
    let replay = parse(&shipped_block("# [replay]")).unwrap().replay.unwrap();
    assert_eq!(replay.matching, ReplayMatch::LastUserMessage);
    assert_eq!(replay.timing, ReplayTiming::Recorded);
}

#[test]
fn every_knob_is_read() {
    let config = parse(
        r#"
        listen = "127.0.0.1:8080"
        seed = 7
        max_request_body = "1KiB"
        head = "immediate"
        first_token_delay = "250ms"
        token_interval = "5ms"
        tool_call_delay = "1.5s"
        tokens_per_response = 12
        error_rate = 0.25

        [[faults]]
        kind = "http"
        status = 503
        weight = 2
        retry_after = "3s"
        message = "try later"
        "#,
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.seed, Some(7));
    assert_eq!(config.max_request_body, 1024);
    assert_eq!(config.head, HeadTiming::Immediate);
    assert_eq!(
        config.profile.timing,
        Timing {
            first_token_delay: ms(250).into(),
            token_interval: ms(5).into(),
            tool_call_delay: ms(1500).into(),
            overload: crate::shape::Overload::CatchUp,
            ..Timing::default()
        }
    );
    assert_eq!(config.profile.tokens_per_response, Length::Fixed(12));
    assert_eq!(config.profile.error_rate, 0.25);
    assert_eq!(
        config.profile.faults,
        [WeightedFault {
            weight: 2,
            fault: Fault::Http(HttpFault {
                status: 503,
                retry_after: Some(ms(3000)),
                message: Some("try later".into()),
                should_retry: None,
                rate_limit_headers: false,
                error_type: None,
            }),
            schedule: Schedule::Random,
        }]
    );
}

#[test]
fn sizes_may_be_bytes() {
    assert_eq!(parse("max_request_body = 100").unwrap().max_request_body, 100);
}

#[test]
fn a_bad_value_names_file_line_column_key_value_and_the_accepted_form() {
    assert_eq!(
        error("listen = \"0.0.0.0:3456\"\nerror_rate = 1.5\n"),
        "test.toml:2:14: invalid error_rate 1.5: expected a fraction from 0 to 1, such as 0.005 for 0.5 %"
    );
    assert_eq!(
        error("first_token_delay = \"100\""),
        format!("test.toml:1:21: invalid first_token_delay \"100\": expected {DELAY_FORM}")
    );
    assert_eq!(
        error("listen = \"localhost\""),
        format!("test.toml:1:10: invalid listen \"localhost\": expected {}", value::LISTEN_FORM)
    );
    assert_eq!(
        error("tokens_per_response = 0"),
        "test.toml:1:23: invalid tokens_per_response 0: expected a whole number from 1 to 100000"
    );
    assert_eq!(
        error("head = \"late\""),
        format!("test.toml:1:8: invalid head \"late\": expected {HEAD_FORM}")
    );
    assert_eq!(error("seed = -1"), format!("test.toml:1:8: invalid seed -1: expected {SEED_FORM}"));
    assert_eq!(
        error("max_request_body = \"lots\""),
        format!(
            "test.toml:1:20: invalid max_request_body Text(\"lots\"): expected {}",
            value::SIZE_FORM
        )
    );
}

#[test]
fn bad_faults_are_located() {
    assert_eq!(
        error("[[faults]]\nkind = \"http\"\nstatus = 200\n"),
        format!("test.toml:3:10: invalid faults.status 200: expected {STATUS_FORM}")
    );
    assert_eq!(
        error("[[faults]]\nkind = \"explode\"\nstatus = 500\n"),
        format!("test.toml:2:8: invalid faults.kind \"explode\": expected {}", kind_form())
    );
    assert_eq!(
        error("[[faults]]\nkind = \"http\"\n"),
        format!("test.toml:2:8: invalid faults.status (missing): expected {STATUS_FORM}")
    );
    assert_eq!(
        error("[[faults]]\nkind = \"http\"\nstatus = 500\nweight = 0\n"),
        format!("test.toml:4:10: invalid faults.weight 0: expected {WEIGHT_FORM}")
    );
    assert_eq!(
        error("[[faults]]\nkind = \"http\"\nstatus = 429\nretry_after = \"soon\"\n"),
        format!(
            "test.toml:4:15: invalid faults.retry_after \"soon\": expected {}",
            value::DURATION_FORM
        )
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_toml_location() {
    let message = error("first_tokn_delay = \"100ms\"");
    assert!(message.starts_with("test.toml: TOML parse error at line 1, column 1"), "{message}");
    assert!(
        message.contains("unknown field `first_tokn_delay`, expected one of `listen`"),
        "{message}"
    );

    let message = error("\n\nseed = \"many\"");
    assert!(message.contains("line 3, column 8"), "{message}");
    assert!(message.contains("invalid type: string \"many\", expected i64"), "{message}");

    let message = error("listen = ");
    assert!(message.contains("line 1, column 10"), "{message}");
}

#[test]
fn an_unreadable_file_names_the_path() {
    let error = load(Path::new("/nonexistent/sluice.toml")).unwrap_err();
    assert_eq!(error.to_string(), "cannot read config file /nonexistent/sluice.toml");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("No such file or directory"), "{cause}");
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn the_node_mocks_environment_variables_override_the_file() {
    let mut config =
        parse("listen = \"127.0.0.1:9000\"\nfirst_token_delay = \"1s\"\nerror_rate = 0.5").unwrap();
    let overrides = Overrides::from_env(env(&[
        ("PORT", "8080"),
        ("FIRST_TOKEN_DELAY", "250"),
        ("TOKEN_INTERVAL", "5ms"),
        ("TOKENS_PER_RESPONSE", "10"),
        ("TOOL_CALL_DELAY", "1500"),
        ("ERROR_RATE", "0.01"),
        ("SLUICE_SEED", "99"),
    ]))
    .unwrap();
    overrides.apply(&mut config);
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080", "PORT keeps the host");
    assert_eq!(
        config.profile.timing,
        Timing {
            first_token_delay: ms(250).into(),
            token_interval: ms(5).into(),
            tool_call_delay: ms(1500).into(),
            overload: crate::shape::Overload::CatchUp,
            ..Timing::default()
        }
    );
    assert_eq!(config.profile.tokens_per_response, Length::Fixed(10));
    assert_eq!(config.profile.error_rate, 0.01);
    assert_eq!(config.seed, Some(99));
}

#[test]
fn flags_override_the_environment() {
    let mut config = Config::default();
    Overrides::from_env(env(&[("FIRST_TOKEN_DELAY", "250"), ("PORT", "8080")]))
        .unwrap()
        .apply(&mut config);
    Overrides {
        profile: ProfilePatch { first_token_delay: Some(ms(7).into()), ..ProfilePatch::default() },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Overrides::default()
    }
    .apply(&mut config);
    assert_eq!(config.profile.timing.first_token_delay, ms(7).into());
    assert_eq!(config.listen.to_string(), "127.0.0.1:0");
}

#[test]
fn empty_or_unset_variables_change_nothing() {
    let overrides = Overrides::from_env(env(&[("PORT", ""), ("ERROR_RATE", "  ")])).unwrap();
    assert_eq!(overrides, Overrides::default());
}

#[test]
fn a_bad_variable_is_named_with_its_value_and_the_accepted_form() {
    let cases = [
        ("PORT", "http", "invalid port \"http\": expected a port number from 0 to 65535"),
        (
            "FIRST_TOKEN_DELAY",
            "soon",
            "invalid first_token_delay \"soon\": expected milliseconds such as 100",
        ),
        ("TOKEN_INTERVAL", "-3", "invalid token_interval \"-3\": expected milliseconds"),
        ("TOOL_CALL_DELAY", "x", "invalid tool_call_delay \"x\": expected milliseconds"),
        (
            "TOKENS_PER_RESPONSE",
            "0",
            "invalid tokens_per_response \"0\": expected a whole number from 1 to 100000",
        ),
        (
            "ERROR_RATE",
            "5",
            "invalid error_rate \"5\": expected a fraction from 0 to 1 such as 0.005",
        ),
        ("SLUICE_SEED", "abc", "invalid seed \"abc\": expected a whole number"),
    ];
    for (name, value, expected) in cases {
        let message = Overrides::from_env(env(&[(name, value)])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("environment variable {name}: {expected}")),
            "{name}={value}: {message}"
        );
    }
}

#[test]
fn the_upstream_table_is_read_with_defaults_for_what_it_omits() {
    let config = parse("[upstream]\nurl = \"https://api.anthropic.com\"\n").unwrap();
    let upstream = config.upstream.unwrap();
    assert_eq!(upstream, Upstream::new("https://api.anthropic.com".parse().unwrap()));
    assert_eq!(upstream.connect_timeout, ms(5000));
    assert!(upstream.delay_non_sse);
    assert!(upstream.pass_through);

    let config = parse(
        "[upstream]\nurl = \"http://127.0.0.1:9/v1beta\"\nconnect_timeout = \"250ms\"\nheader_timeout = \"2s\"\n\
         ca_file = \"/etc/ca.pem\"\ndelay_non_sse = false\npass_through = false\nmax_event_size = \"64KiB\"\n",
    )
    .unwrap();
    let upstream = config.upstream.unwrap();
    assert_eq!(upstream.url.path(), "/v1beta");
    assert_eq!(upstream.connect_timeout, ms(250));
    assert_eq!(upstream.header_timeout, ms(2000));
    assert_eq!(upstream.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(!upstream.delay_non_sse);
    assert!(!upstream.pass_through);
    assert_eq!(upstream.max_event_size, 64 * 1024);
}

#[test]
fn bad_upstreams_are_located() {
    assert_eq!(
        error("[upstream]\nurl = \"api.anthropic.com\"\n"),
        format!(
            "test.toml:2:7: invalid upstream.url \"api.anthropic.com\": expected {}",
            value::URL_FORM
        )
    );
    assert_eq!(
        error("[upstream]\nconnect_timeout = \"1s\"\n"),
        format!("test.toml:1:1: invalid upstream.url (missing): expected {}", value::URL_FORM)
    );
    assert_eq!(
        error("[upstream]\nurl = \"http://x\"\nheader_timeout = \"never\"\n"),
        format!(
            "test.toml:3:18: invalid upstream.header_timeout \"never\": expected {}",
            value::DURATION_FORM
        )
    );
    let message = error("[upstream]\nurl = \"http://x\"\nretries = 3\n");
    assert!(message.contains("unknown field `retries`"), "{message}");
}

#[test]
fn the_environment_and_flags_set_the_upstream() {
    let mut config = Config::default();
    Overrides::from_env(env(&[("SLUICE_UPSTREAM", "http://127.0.0.1:8080")]))
        .unwrap()
        .apply(&mut config);
    assert_eq!(config.upstream.as_ref().unwrap().url, "http://127.0.0.1:8080/");
    let message =
        Overrides::from_env(env(&[("SLUICE_UPSTREAM", "localhost")])).unwrap_err().to_string();
    assert!(
        message.starts_with(
            "environment variable SLUICE_UPSTREAM: invalid upstream.url \"localhost\""
        ),
        "{message}"
    );
}

#[test]
fn delays_may_be_distributions() {
    let config = parse(
        r#"
        first_token_delay = { dist = "lognormal", p50 = "300ms", p99 = "1.2s" }
        token_interval = { dist = "uniform", min = "10ms", max = "30ms" }
        tool_call_delay = { dist = "normal", mean = "500ms", stddev = "100ms" }
        "#,
    )
    .unwrap();
    let timing = config.profile.timing;
    assert_eq!(timing.first_token_delay, Delay::LogNormal { p50: ms(300), p99: ms(1200) });
    assert_eq!(timing.token_interval, Delay::Uniform { min: ms(10), max: ms(30) });
    assert_eq!(timing.tool_call_delay, Delay::Normal { mean: ms(500), stddev: ms(100) });
}

#[test]
fn bad_distributions_are_named() {
    let cases = [
        (
            "first_token_delay = 100",
            "invalid first_token_delay 100: expected a duration such as \"100ms\", or a distribution",
        ),
        (
            "first_token_delay = { dist = \"pareto\" }",
            "invalid first_token_delay { dist = \"pareto\" }: expected \"uniform\" (min, max)",
        ),
        (
            "first_token_delay = { dist = \"uniform\", min = \"5ms\" }",
            "invalid first_token_delay.max (missing): expected a duration",
        ),
        (
            "first_token_delay = { dist = \"uniform\", min = \"5ms\", max = \"1ms\" }",
            "expected max at least min",
        ),
        (
            "first_token_delay = { dist = \"normal\", mean = \"5ms\", stddev = \"1ms\", skew = 2 }",
            "invalid first_token_delay.skew 2: expected only dist, mean and stddev for a normal delay",
        ),
        (
            "first_token_delay = { dist = \"lognormal\", p50 = \"5ms\", p99 = \"1ms\" }",
            "expected p99 at least p50",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.starts_with("test.toml:1:21: "), "{text}: {message}");
        assert!(message.contains(expected), "{text}: {message}");
    }
}

fn only_fault(text: &str) -> WeightedFault {
    let mut faults = parse(text).unwrap().profile.faults;
    assert_eq!(faults.len(), 1);
    faults.remove(0)
}

#[test]
fn every_fault_kind_is_read() {
    let table = [
        (
            "kind = \"http\"\nstatus = 429\nretry_after = \"2s\"\nshould_retry = false\nrate_limit_headers = true",
            Fault::Http(HttpFault {
                status: 429,
                retry_after: Some(ms(2000)),
                message: None,
                should_retry: Some(false),
                rate_limit_headers: true,
                error_type: None,
            }),
        ),
        (
            "kind = \"stream_error\"\nafter_tokens = 5",
            Fault::StreamError(StreamError {
                after_tokens: 5,
                error_type: "overloaded_error".into(),
                message: None,
            }),
        ),
        (
            "kind = \"stream_error\"\nerror_type = \"api_error\"\nmessage = \"boom\"",
            Fault::StreamError(StreamError {
                after_tokens: 0,
                error_type: "api_error".into(),
                message: Some("boom".into()),
            }),
        ),
        ("kind = \"reset\"\nafter_tokens = 3", Fault::Reset(Reset { after_tokens: 3 })),
        ("kind = \"truncate\"\nafter_tokens = 10", Fault::Truncate(Truncate { after_tokens: 10 })),
        (
            "kind = \"stall\"\nafter_tokens = 2\nduration = \"30s\"",
            Fault::Stall(Stall { after_tokens: 2, duration: Some(ms(30_000)) }),
        ),
        ("kind = \"stall\"", Fault::Stall(Stall { after_tokens: 0, duration: None })),
        (
            "kind = \"slow_head\"\nduration = \"2s\"",
            Fault::SlowHead(SlowHead { duration: ms(2000) }),
        ),
        ("kind = \"malformed\"\nafter_tokens = 1", Fault::Malformed(Malformed { after_tokens: 1 })),
        (
            "kind = \"stop\"\nafter_tokens = 4",
            Fault::Stop(Stop { after_tokens: 4, stop_reason: StopReason::Refusal }),
        ),
        (
            "kind = \"stop\"\nstop_reason = \"pause_turn\"",
            Fault::Stop(Stop { after_tokens: 0, stop_reason: StopReason::PauseTurn }),
        ),
        (
            "kind = \"stop\"\nstop_reason = \"recitation\"",
            Fault::Stop(Stop { after_tokens: 0, stop_reason: StopReason::Recitation }),
        ),
    ];
    for (body, expected) in table {
        assert_eq!(only_fault(&format!("[[faults]]\n{body}\n")).fault, expected, "{body}");
    }
}

#[test]
fn schedules_are_read() {
    let schedule =
        |extra: &str| only_fault(&format!("[[faults]]\nkind = \"reset\"\n{extra}\n")).schedule;
    assert_eq!(schedule(""), Schedule::Random);
    assert_eq!(schedule("first_requests = 2"), Schedule::FirstRequests(2));
    assert_eq!(schedule("every = 10"), Schedule::Every(10));
    assert_eq!(
        schedule("from = \"30s\"\nuntil = \"40s\""),
        Schedule::Window { from: ms(30_000), until: ms(40_000) }
    );
    assert_eq!(
        schedule("from = \"30s\""),
        Schedule::Window { from: ms(30_000), until: Duration::MAX }
    );
}

#[test]
fn fault_keys_that_do_not_fit_the_kind_or_schedule_are_refused() {
    let cases = [
        (
            "kind = \"reset\"\nstatus = 500",
            "test.toml:3:10: invalid faults.status (given): expected no status for kind \"reset\"; it takes after_tokens",
        ),
        (
            "kind = \"slow_head\"",
            "test.toml:2:8: invalid faults.duration (missing): expected a duration",
        ),
        (
            "kind = \"http\"\nstatus = 500\nafter_tokens = 2",
            "invalid faults.after_tokens (given): expected no after_tokens for kind \"http\"",
        ),
        (
            "kind = \"reset\"\nfirst_requests = 2\nevery = 3",
            "invalid faults.schedule (several): expected one schedule per fault",
        ),
        (
            "kind = \"reset\"\nfrom = \"40s\"\nuntil = \"30s\"",
            "test.toml:4:9: invalid faults.until 30s: expected a time after from",
        ),
        ("kind = \"reset\"\nevery = 0", "invalid faults.every 0: expected a whole number from 1"),
        (
            "kind = \"reset\"\nafter_tokens = -1",
            "invalid faults.after_tokens -1: expected a whole number of tokens",
        ),
    ];
    for (body, expected) in cases {
        let message = error(&format!("[[faults]]\n{body}\n"));
        assert!(message.contains(expected), "{body}:\n{message}");
    }
}

const ROUTED: &str = r#"
    [profiles.slow]
    first_token_delay = "2s"
    error_rate = 0.5

    [[profiles.slow.faults]]
    kind = "stall"
    after_tokens = 3

    [[routes]]
    name = "slow-scenario"
    headers = { x-scenario = "slow" }
    profile = "slow"

    [[routes]]
    name = "haiku"
    model = "claude-*-haiku*"
    method = "post"
    path = "/v1/*"
    stream = true
    has_tools = false

    [control]
    headers = true
    max_active = 5
"#;

#[test]
fn profiles_routes_and_control_are_read() {
    let config = parse(ROUTED).unwrap();
    let slow = config.profile_named("slow").unwrap();
    assert_eq!(slow.timing.first_token_delay, ms(2000).into());
    assert_eq!(slow.timing.token_interval, ms(20).into(), "inherited from the default profile");
    assert_eq!(slow.error_rate, 0.5);
    assert_eq!(slow.faults[0].fault, Fault::Stall(Stall { after_tokens: 3, duration: None }));
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[0].name, "slow-scenario");
    assert_eq!(config.routes[0].profile.as_deref(), Some("slow"));
    let haiku = &config.routes[1].matcher;
    assert_eq!(haiku.method, Some(hyper::Method::POST));
    assert!(haiku.model.as_ref().unwrap().matches("claude-3-5-haiku-latest"));
    assert_eq!((haiku.stream, haiku.has_tools), (Some(true), Some(false)));
    assert!(haiku.needs_body());
    assert_eq!(config.control, Control { headers: true, max_active: 5 });
}

#[test]
fn environment_changes_reach_profiles_that_do_not_name_the_knob() {
    let mut config = parse(ROUTED).unwrap();
    Overrides::from_env(env(&[("TOKEN_INTERVAL", "7")])).unwrap().apply(&mut config);
    assert_eq!(config.profile_named("slow").unwrap().timing.token_interval, ms(7).into());
}

#[test]
fn bad_routes_are_located() {
    let message = error("[[routes]]\nname = \"r\"\nprofile = \"nope\"\n");
    assert_eq!(
        message,
        "test.toml:3:11: invalid routes.profile \"nope\": expected the name of a [profiles.NAME] table (none is defined)"
    );
    let message = error("[profiles.a]\n[[routes]]\nname = \"r\"\nprofile = \"b\"\n");
    assert!(message.ends_with("expected one of the profiles: a"), "{message}");
    let message = error("[[routes]]\nname = \"r\"\npath = \"[\"\n");
    assert!(
        message.starts_with("test.toml:3:8: invalid routes.path \"[\": expected a glob"),
        "{message}"
    );
    let message = error("[[routes]]\nname = \"r\"\n[[routes]]\nname = \"r\"\n");
    assert!(message.starts_with("test.toml:4:8: invalid routes.name \"r\": expected a non-empty name used by no other route"), "{message}");
    let message = error("[[routes]]\nname = \"r\"\nmethod = \"GE T\"\n");
    assert!(message.contains("invalid routes.method"), "{message}");
    let message = error("[[routes]]\nname = \"r\"\nheaders = { \"bad header\" = \"x\" }\n");
    assert!(message.contains("invalid routes.headers \"bad header\""), "{message}");
    let message = error("[profiles.a]\nfirst_token_delay = \"x\"\n");
    assert!(
        message.starts_with("test.toml:2:21: invalid profiles.a.first_token_delay"),
        "{message}"
    );
}

#[test]
fn a_fault_can_be_written_as_a_header_value() {
    assert_eq!(
        parse_fault_header("stream_error; after_tokens=3").unwrap(),
        Fault::StreamError(StreamError {
            after_tokens: 3,
            error_type: "overloaded_error".into(),
            message: None
        })
    );
    assert_eq!(
        parse_fault_header("slow_head;duration=250ms").unwrap(),
        Fault::SlowHead(SlowHead { duration: ms(250) })
    );
    let message = parse_fault_header("http; status=700").unwrap_err().to_string();
    assert!(
        message.starts_with(
            "header x-sluice-inject: invalid status 700: expected an HTTP error status"
        ),
        "{message}"
    );
    let message = parse_fault_header("explode").unwrap_err().to_string();
    assert!(message.contains("invalid kind \"explode\""), "{message}");
    let message = parse_fault_header("reset; after_tokens").unwrap_err().to_string();
    assert!(message.contains("kind; key=value"), "{message}");
}

/// `x-sluice-fault` names a fault with every parameter it was given, in the
/// form `x-sluice-inject` takes: sent back, it is the same fault.
#[test]
fn a_faults_label_is_a_control_header_for_the_same_fault() {
    let faults = [
        "http; status=429; error_type=insufficient_quota; retry_after=2s; should_retry=false; \
         rate_limit_headers=true; message=You are out of quota",
        "http; status=529",
        "http; status=503; retry_after=1.5s",
        "stream_error; after_tokens=3; error_type=rate_limit_error; message=slow down",
        "stream_error; after_tokens=0; error_type=overloaded_error",
        "reset; after_tokens=4",
        "truncate; after_tokens=2",
        "malformed; after_tokens=1",
        "stall; after_tokens=5; duration=30s",
        "stall; after_tokens=5",
        "slow_head; duration=250ms",
    ];
    for header in faults {
        let fault = parse_fault_header(header).unwrap();
        assert_eq!(fault.label(), header.split_whitespace().collect::<Vec<_>>().join(" "));
        assert_eq!(parse_fault_header(&fault.label()).unwrap(), fault, "{header}");
    }
    // A message the header form cannot carry is left out, and the rest stays.
    let fault = Fault::Http(HttpFault {
        status: 500,
        retry_after: None,
        message: Some("a; b".into()),
        should_retry: None,
        rate_limit_headers: false,
        error_type: None,
    });
    assert_eq!(fault.label(), "http; status=500");
}

#[test]
fn every_example_config_is_valid() {
    let folder = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples"));
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for route in &config.routes {
                if let Some(profile) = &route.profile {
                    assert!(config.profile_named(profile).is_some());
                }
            }
            checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "agent-loop.toml",
            "busy-provider.toml",
            "degrading-provider.toml",
            "flaky-first-requests.toml",
            "k6-scenarios.toml",
            "mid-stream-failures.toml",
            "outage-window.toml",
            "overload-storm.toml",
            "rate-limits.toml",
            "reasoning.toml",
            "slow-tool-calls.toml"
        ]
    );
}

#[test]
fn limits_watch_and_the_new_upstream_keys_are_read_and_checked() {
    let config = parse(
        r#"
        [limits]
        header_read_timeout = "2s"
        idle_timeout = "30s"
        body_read_timeout = "3s"
        max_connections = 500
        max_request_head = "64KiB"
        [watch]
        poll = "1s"
        [upstream]
        url = "http://127.0.0.1:9"
        head_hold_bytes = "64KiB"
        head_hold_time = "5s"
        max_idle_per_host = 8
        "#,
    )
    .unwrap();
    assert_eq!(
        config.limits,
        Limits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(3),
            max_connections: 500,
            max_request_head: 64 * 1024,
        }
    );
    assert_eq!(config.watch.poll, Some(Duration::from_secs(1)));
    let upstream = config.upstream.unwrap();
    assert_eq!(
        (upstream.head_hold_bytes, upstream.head_hold_time, upstream.max_idle_per_host),
        (64 * 1024, Duration::from_secs(5), 8)
    );
    for (bad, expected) in [
        ("[limits]\nheader_read_timeout = \"0s\"", "invalid limits.header_read_timeout"),
        ("[limits]\nmax_connections = 0", "invalid limits.max_connections 0"),
        ("[limits]\nmax_request_head = \"4KiB\"", "invalid limits.max_request_head"),
        ("[limits]\nmax_request_head = \"2MiB\"", "invalid limits.max_request_head"),
        ("[watch]\npoll = \"8d\"", "invalid watch.poll"),
        ("[limits]\nidle_timeout = \"169h\"", "at most 7 days"),
    ] {
        let message = parse(bad).unwrap_err().to_string();
        assert!(message.contains(expected), "{bad}: {message}");
    }
}

#[test]
fn tool_use_is_read_at_the_top_level_in_profiles_and_at_runtime() {
    let config = parse(
        "[tool_use]\nprobability = 0.5\nchoice = \"uniform\"\nmax_rounds = 3\nparallel_calls = 2\n\
         web_search = 0.25\n\
         [profiles.search.tool_use]\nchoice = \"search_*\"\n[profiles.plain]\nerror_rate = 0.1\n",
    )
    .unwrap();
    let top = &config.profile.tool_use;
    assert_eq!(
        *top,
        ToolUse {
            probability: 0.5,
            choice: ToolPick::Uniform,
            max_rounds: 3,
            parallel_calls: 2,
            web_search: 0.25
        }
    );
    let search = config.profile_named("search").unwrap().tool_use;
    assert_eq!(search.choice, ToolPick::Named(glob::Pattern::new("search_*").unwrap()));
    assert_eq!((search.probability, search.max_rounds, search.parallel_calls), (0.5, 3, 2));
    assert_eq!(config.profile_named("plain").unwrap().tool_use, *top);
    assert_eq!(Config::default().profile.tool_use, ToolUse::DEFAULT);

    let patch =
        parse_runtime_patch(r#"{"tool_use": {"max_rounds": 5, "choice": "first"}}"#).unwrap();
    assert_eq!(patch.tool_use.max_rounds, Some(5));
    assert_eq!(patch.tool_use.choice, Some(ToolPick::First));
    assert_eq!(patch.tool_use.probability, None);
    let described = describe(&config, Some(&patch));
    assert_eq!(
        described["runtime_overrides"]["tool_use"],
        serde_json::json!({"max_rounds": 5, "choice": "first"})
    );
    assert_eq!(described["tool_use"]["choice"], serde_json::json!("uniform"));
}

#[test]
fn bad_tool_use_keys_are_named() {
    assert_eq!(
        error("[tool_use]\nprobability = 2.0"),
        "test.toml:2:15: invalid tool_use.probability 2.0: expected a fraction from 0 to 1, such as 0.005 for 0.5 %"
    );
    assert_eq!(
        error("[profiles.a.tool_use]\nparallel_calls = 0"),
        format!(
            "test.toml:2:18: invalid profiles.a.tool_use.parallel_calls 0: expected {PARALLEL_FORM}"
        )
    );
    assert_eq!(
        error("[tool_use]\nmax_rounds = -1"),
        format!("test.toml:2:14: invalid tool_use.max_rounds -1: expected {ROUNDS_FORM}")
    );
    assert_eq!(
        error("[tool_use]\nchoice = \"\""),
        format!("test.toml:2:10: invalid tool_use.choice \"\": expected {CHOICE_FORM}")
    );
    assert!(error("[tool_use]\nsometimes = true").contains("unknown field `sometimes`"));
}

/// `layer::build` stacks defaults < file < environment < flags < runtime
/// overrides, and each knob comes from the highest layer that sets it.
#[test]
fn layers_stack_in_one_order() {
    use super::layer::{Base, build};
    let file = "tokens_per_response = 10\nerror_rate = 0.1\nseed = 1\nlisten = \"127.0.0.1:7000\"";
    let path = Path::new("layers.toml");
    let env = Overrides::from_env(|name| match name {
        "TOKENS_PER_RESPONSE" => Some("20".into()),
        "ERROR_RATE" => Some("0.2".into()),
        "PORT" => Some("7001".into()),
        _ => None,
    })
    .unwrap();
    let flags = Overrides {
        profile: ProfilePatch { error_rate: Some(0.3), ..ProfilePatch::default() },
        ..Overrides::default()
    };
    let runtime =
        ProfilePatch { tokens_per_response: Some(Length::Fixed(40)), ..ProfilePatch::default() };

    let defaults = build(Base::Defaults, &[], None, None).unwrap();
    assert_eq!(defaults, Config::default());
    let from_file = build(Base::File { path, text: file }, &[], None, None).unwrap();
    assert_eq!(from_file.profile.tokens_per_response, Length::Fixed(10));
    assert_eq!(from_file.source, ConfigSource::File(path.to_path_buf()));
    let layers = [env, flags];
    let all = build(Base::File { path, text: file }, &layers, None, Some(&runtime)).unwrap();
    assert_eq!(all.profile.tokens_per_response, Length::Fixed(40), "runtime over environment");
    assert_eq!(all.profile.error_rate, 0.3, "flags over environment over file");
    assert_eq!(all.listen.port(), 7001, "environment over file");
    assert_eq!(all.seed, Some(1), "the file's, where no layer sets it");
    let given = build(Base::Given(&from_file), &[], None, Some(&runtime)).unwrap();
    assert_eq!(given.profile.tokens_per_response, Length::Fixed(40));
    assert_eq!(given.profile.error_rate, 0.1);
}

#[test]
fn rate_limits_are_read_per_profile_replaced_whole_and_checked() {
    let config = parse(
        "[rate_limits]\nrequests_per_minute = 60\nburst = 10\n\
         [profiles.team]\nrate_limits = { input_tokens_per_minute = 40000, key = \"route\" }\n",
    )
    .unwrap();
    let top = config.profile.rate_limits;
    assert_eq!(
        (top.requests_per_minute, top.burst, top.key),
        (Some(60), Some(10), LimitKey::ApiKey)
    );
    assert!(top.is_active() && !top.limits_tokens());
    let team = config.profile_named("team").unwrap().rate_limits;
    assert_eq!(
        team,
        RateLimits {
            input_tokens_per_minute: Some(40000),
            key: LimitKey::Route,
            ..RateLimits::default()
        },
        "a profile's table replaces the default's whole"
    );
    assert!(!Config::default().profile.rate_limits.is_active());
    for (bad, expected) in [
        ("[rate_limits]\nrequests_per_minute = 0\n", "from 1 to 1000000000 a minute"),
        ("[rate_limits]\ntokens_per_minute = 1000000001\n", "from 1 to 1000000000 a minute"),
        ("[rate_limits]\nburst = -1\n", "a whole number of requests"),
        ("[rate_limits]\nkey = \"ip\"\n", "\"api_key\""),
        ("[rate_limits]\nrpm = 5\n", "unknown field"),
    ] {
        assert!(error(bad).contains(expected), "{bad}: {}", error(bad));
    }
    let patch = parse_runtime_patch(r#"{"rate_limits": {"requests_per_minute": 5}}"#).unwrap();
    assert_eq!(patch.rate_limits.unwrap().requests_per_minute, Some(5));
    let cleared = parse_runtime_patch(r#"{"rate_limits": {}}"#).unwrap();
    assert!(
        !cleared.over(&config.profile).rate_limits.is_active(),
        "an empty table lifts the limits"
    );
}

#[test]
fn record_and_replay_tables_are_validated_and_flags_set_their_folders() {
    let config = Config::from_toml_str(
        "[record]\ndir = \"tapes\"\nredact_headers = [\"X-User\"]\nredact_fields = [\"metadata.user_id\"]\n\
         [replay]\ndir = \"tapes\"\nmatch = \"body\"\ntiming = \"scaled\"\nscale = 0.5\nfallback = \"generate\"\n\
         ignore = [\"build #[0-9]+\"]\n",
        "t.toml",
    )
    .unwrap();
    let record = config.record.unwrap();
    assert_eq!(record.redact_headers, ["x-user"]);
    assert_eq!(record.redact_fields, ["metadata.user_id"]);
    let replay = config.replay.unwrap();
    assert_eq!(replay.matching, crate::config::ReplayMatch::Body);
    assert_eq!(replay.timing, crate::config::ReplayTiming::Scaled(0.5));
    assert_eq!(replay.fallback, crate::config::ReplayFallback::Generate);
    assert_eq!(replay.ignore, ["build #[0-9]+"]);
    let conversation = "[replay]\ndir = \"t\"\nmatch = \"conversation\"\n";
    let conversation = Config::from_toml_str(conversation, "t.toml").unwrap().replay.unwrap();
    assert_eq!(conversation.matching, crate::config::ReplayMatch::Conversation);
    let many = format!("[replay]\ndir = \"t\"\nignore = [{}]\n", vec!["\"a\""; 33].join(","));
    for (bad, key) in [
        ("[replay]\ndir = \"t\"\nignore = [\"(unclosed\"]\n", "replay.ignore"),
        ("[replay]\ndir = \"t\"\nignore = [\"\"]\n", "replay.ignore"),
        (many.as_str(), "replay.ignore"),
        ("[replay]\ndir = \"t\"\nscale = 2.0\n", "replay.scale"),
        ("[replay]\ndir = \"t\"\ntiming = \"scaled\"\n", "replay.timing"),
        ("[replay]\ndir = \"t\"\nmatch = \"fuzzy\"\n", "replay.match"),
        ("[replay]\nmatch = \"body\"\n", "replay.dir"),
        ("[record]\ndir = \"t\"\nredact_fields = [\"a..b\"]\n", "record.redact_fields"),
        ("[record]\ndir = \"t\"\nredact_headers = [\"bad header\"]\n", "record.redact_headers"),
    ] {
        match Config::from_toml_str(bad, "t.toml") {
            Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let mut config = Config::default();
    Overrides { record: Some("a".into()), replay: Some("b".into()), ..Overrides::default() }
        .apply(&mut config);
    assert_eq!(config.record.unwrap().dir, std::path::PathBuf::from("a"));
    let replay = config.replay.unwrap();
    assert_eq!(replay.dir, std::path::PathBuf::from("b"));
    assert_eq!(replay.timing, crate::config::ReplayTiming::Recorded);
}

#[test]
fn an_epoch_and_a_replica_come_from_the_file_or_the_environment() {
    let config = Config::from_toml_str("epoch = \"2026-12-01T10:00:00.250Z\"\n", "t.toml").unwrap();
    let epoch = config.epoch.unwrap();
    assert_eq!(
        epoch.duration_since(std::time::UNIX_EPOCH).unwrap(),
        Duration::from_millis(1_796_119_200_250)
    );
    match Config::from_toml_str("epoch = \"yesterday\"\n", "t.toml") {
        Err(ConfigError::Invalid { key, origin, .. }) => {
            assert_eq!(key, "epoch");
            assert_eq!(origin, "t.toml:1:9");
        }
        other => panic!("{other:?}"),
    }
    let overrides = Overrides::from_env(env(&[
        ("SLUICE_REPLICA", "sluice-7d9f-x2k"),
        ("SLUICE_EPOCH", "2026-12-01T10:00:00Z"),
    ]))
    .unwrap();
    let mut config = Config::default();
    overrides.apply(&mut config);
    assert_eq!(config.replica.as_deref(), Some("sluice-7d9f-x2k"));
    assert_eq!(
        config.epoch.unwrap().duration_since(std::time::UNIX_EPOCH).unwrap(),
        Duration::from_secs(1_796_119_200)
    );
    assert!(Overrides::from_env(env(&[("SLUICE_REPLICA", "a b")])).is_err());
}

#[test]
fn overload_is_a_profile_knob() {
    let config = Config::from_toml_str(
        "overload = \"stretch\"\n[profiles.steady]\noverload = \"catch_up\"\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(config.profile.timing.overload, crate::shape::Overload::Stretch);
    assert_eq!(config.profiles["steady"].overload, Some(crate::shape::Overload::CatchUp));
    match Config::from_toml_str("overload = \"drop\"\n", "t.toml") {
        Err(ConfigError::Invalid { key, expected, .. }) => {
            assert_eq!(key, "overload");
            assert!(expected.contains("\"stretch\""), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    let patch = parse_runtime_patch(r#"{"overload": "stretch"}"#).unwrap();
    assert_eq!(patch.overload, Some(crate::shape::Overload::Stretch));
}

/// The README's first k6 run starts sluice with `SLUICE_SEED=3875`: with the
/// default profile (0.5 % errors) that seed draws no fault in its first
/// 2,000 requests, so the run's `errors < 1%` threshold passes however many
/// requests a slow or fast machine makes. Without a seed, about 106
/// requests at 0.5 % give two errors or more (over 1 %) one run in ten.
#[test]
fn the_readmes_first_run_seed_draws_no_fault_in_its_first_two_thousand_requests() {
    use crate::fault::{FaultPlan, RequestClock};
    use crate::shape::request_rng;
    let profile = Config::default().profile;
    let faults_drawn = |seed: u64| {
        let faulted = (0..2_000u64).filter(|&number| {
            let clock = RequestClock { route_request: number, since_start: Some(Duration::ZERO) };
            let mut rng = request_rng(seed, number);
            FaultPlan::draw(profile.error_rate, &profile.faults, clock, &mut rng).fault.is_some()
        });
        faulted.count()
    };
    assert_eq!(faults_drawn(3875), 0);
    assert!(faults_drawn(64) > 0, "another seed does draw faults");
}

#[test]
fn a_capacity_table_is_read_whole_with_its_defaults_and_its_bounds() {
    let config = parse(
        "[capacity]\nmax_concurrent = 50\nfactor_at_capacity = 3\nprefill_per_1k_tokens = \"20ms\"\n\
         [profiles.busy.capacity]\nmax_concurrent = 2\nmax_queue = 0\nshed = \"rate_limited\"\n\
         queue_timeout = \"5s\"\n",
    )
    .unwrap();
    let capacity = config.profile.capacity;
    assert_eq!(capacity.max_concurrent, Some(50));
    assert_eq!(capacity.queue(), 50, "the queue is as long as the batch unless given");
    assert_eq!(capacity.queue_timeout, Duration::from_secs(60));
    assert_eq!(capacity.factor_at_capacity, 3.0);
    assert_eq!(capacity.prefill_per_1k_tokens, ms(20));
    assert_eq!(capacity.shed, Shed::Overloaded);
    // A profile's table replaces the default's whole.
    let busy = config.profile_named("busy").unwrap().capacity;
    assert_eq!(
        busy,
        Capacity {
            max_concurrent: Some(2),
            max_queue: Some(0),
            queue_timeout: Duration::from_secs(5),
            shed: Shed::RateLimited,
            ..Capacity::OFF
        }
    );
    assert_eq!(busy.queue(), 0);
    assert_eq!(
        error("[capacity]\nmax_concurrent = 0\n"),
        "test.toml:2:18: invalid capacity.max_concurrent 0: expected a whole number of requests from 1 to 1000000"
    );
    assert_eq!(
        error("[capacity]\nmax_concurrent = 5\nfactor_at_capacity = 0.5\n"),
        "test.toml:3:22: invalid capacity.factor_at_capacity 0.5: expected a factor from 1 to 100 (1: no slowdown under load)"
    );
    assert_eq!(
        error("[capacity]\nprefill_per_1k_tokens = \"2m\"\n"),
        "test.toml:2:25: invalid capacity.prefill_per_1k_tokens \"2m\": expected a duration from \"0ms\" to \"60s\" per 1,000 input tokens"
    );
    assert_eq!(
        error("[profiles.x.capacity]\nmax_queue = 10\n"),
        "test.toml:2:13: invalid profiles.x.capacity.max_queue (given): expected a [capacity] table that also sets max_concurrent"
    );
    // Prefill alone needs no limit, and a runtime patch takes the table too.
    assert!(parse("[capacity]\nprefill_per_1k_tokens = \"1s\"\n").is_ok());
    let patch = parse_runtime_patch(r#"{"capacity": {"max_concurrent": 7}}"#).unwrap();
    assert_eq!(patch.capacity.and_then(|c| c.max_concurrent), Some(7));
    let described = describe(&config, None);
    assert_eq!(
        described["capacity"],
        serde_json::json!({"max_concurrent": 50, "max_queue": 50, "queue_timeout": "60s",
                           "factor_at_capacity": 3.0, "shed": "overloaded",
                           "prefill_per_1k_tokens": "20ms"})
    );
}

#[test]
fn a_timeline_phase_lies_over_the_flags_and_under_the_runtime_overrides() {
    use super::layer::{Base, build};
    let path = Path::new("sluice.toml");
    let file = "tokens_per_response = 10\n[timeline]\n[[timeline.phases]]\nat = \"0s\"\n\
                tokens_per_response = 20\nerror_rate = 0.5\n";
    let flags = Overrides {
        profile: ProfilePatch {
            tokens_per_response: Some(Length::Fixed(30)),
            ..ProfilePatch::default()
        },
        ..Overrides::default()
    };
    let runtime = ProfilePatch { error_rate: Some(0.0), ..ProfilePatch::default() };
    let phase = Some(Position { phase: 0, step: 0 });
    let base = || Base::File { path, text: file };
    let flagged = build(base(), std::slice::from_ref(&flags), None, None).unwrap();
    assert_eq!(flagged.profile.tokens_per_response, Length::Fixed(30), "no phase: the flags");
    let phased = build(base(), std::slice::from_ref(&flags), phase, Some(&runtime)).unwrap();
    assert_eq!(phased.profile.tokens_per_response, Length::Fixed(20), "the phase over the flags");
    assert_eq!(phased.profile.error_rate, 0.0, "the runtime overrides over the phase");
}

#[test]
fn a_reply_length_is_a_count_or_a_distribution_of_counts() {
    let config =
        parse("tokens_per_response = { dist = \"uniform\", min = 10, max = 30 }\n").unwrap();
    assert_eq!(config.profile.tokens_per_response, Length::Uniform { min: 10, max: 30 });
    assert_eq!(
        describe(&config, None)["tokens_per_response"],
        serde_json::json!({"dist": "uniform", "min": 10, "max": 30})
    );
    assert_eq!(
        error("tokens_per_response = { dist = \"lognormal\", p50 = 200, p99 = 20 }\n"),
        "test.toml:1:23: invalid tokens_per_response { dist = \"lognormal\", p50 = 200, p99 = 20 }: expected p99 at least p50"
    );
    assert_eq!(
        error("tokens_per_response = { dist = \"normal\", mean = 0, stddev = 5 }\n"),
        "test.toml:1:23: invalid tokens_per_response.mean 0: expected a whole number from 1 to 100000"
    );
    assert!(error("tokens_per_response = \"many\"\n").contains("or a distribution such as"));
    let patch = parse_runtime_patch(
        r#"{"tokens_per_response": {"dist": "normal", "mean": 40, "stddev": 10}}"#,
    );
    assert_eq!(patch.unwrap().tokens_per_response, Some(Length::Normal { mean: 40, stddev: 10 }));
}

#[test]
fn fleet_reads_its_store_namespace_and_timeout_and_never_shows_the_password() {
    let config = Config::from_toml_str(
        "[fleet]\nstore = \"redis://:s3cret@redis.example:6379/2\"\nnamespace = \"load-test.1\"\ntimeout = \"100ms\"\n",
        "t.toml",
    )
    .unwrap();
    let fleet = config.fleet.as_ref().unwrap();
    let store = fleet.store.as_ref().unwrap();
    assert_eq!(store.expose(), "redis://:s3cret@redis.example:6379/2");
    assert_eq!(store.to_string(), "redis://<redacted>@redis.example:6379/2");
    assert_eq!(format!("{store:?}"), "StoreUrl(redis://<redacted>@redis.example:6379/2)");
    assert_eq!(
        (fleet.namespace.as_str(), fleet.timeout),
        ("load-test.1", Duration::from_millis(100))
    );
    let shown = crate::config::describe(&config, None).to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("redis://<redacted>@redis.example:6379/2"), "{shown}");
    // Without a password, the URL shows as written.
    let plain = value::store_url("redis://127.0.0.1:6379").unwrap();
    assert_eq!(plain.to_string(), "redis://127.0.0.1:6379");
    // A user and a password, and an '@' in the password.
    let both = value::store_url("redis://user:p@ss@host:1/0").unwrap();
    assert_eq!(both.to_string(), "redis://<redacted>@host:1/0");
}

#[test]
fn fleet_refuses_what_is_not_a_store_and_leaves_the_store_to_the_environment() {
    for (text, key) in [
        ("[fleet]\nstore = \"http://redis:6379\"\n", "fleet.store"),
        ("[fleet]\nstore = \"redis://h:1\"\nnamespace = \"a b\"\n", "fleet.namespace"),
        ("[fleet]\nstore = \"redis://\"\n", "fleet.store"),
        ("[fleet]\nstore = \"redis://h:1\"\ntimeout = \"20s\"\n", "fleet.timeout"),
        ("[fleet]\nstor = \"redis://h:1\"\n", "stor"),
    ] {
        let message = Config::from_toml_str(text, "t.toml").unwrap_err().to_string();
        assert!(message.contains(key), "{text}: {message}");
    }
    // No store in the file: none until the environment gives one.
    let mut config = Config::from_toml_str("[fleet]\nnamespace = \"n\"\n", "t.toml").unwrap();
    assert_eq!(config.fleet.as_ref().unwrap().store, None);
    let env = Overrides::from_env(env(&[("SLUICE_FLEET_STORE", "redis://10.0.0.1:6379")])).unwrap();
    env.apply(&mut config);
    let fleet = config.fleet.unwrap();
    assert_eq!(fleet.store.unwrap().expose(), "redis://10.0.0.1:6379");
    assert_eq!(fleet.namespace, "n");
    // The environment alone makes a fleet with the defaults.
    let mut config = Config::default();
    env.apply(&mut config);
    let fleet = config.fleet.unwrap();
    assert_eq!((fleet.namespace.as_str(), fleet.timeout), ("sluice", Duration::from_millis(250)));
}
