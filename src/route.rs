//! Routing: which route, and so which profile, a request gets. Routes are
//! tried in order and the first match wins; no match is the `default` route
//! with the default profile. Profiles are resolved over the default profile
//! once, when the router is built, so a request only clones an `Arc`.
//!
//! Each route counts its own requests: a fault scheduled for "the first N
//! requests" or "every Nth request" counts within its route.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::{HeaderMap, Method};

use crate::config::{Api, Config, LimitKey, Profile, RouteMatch};
use crate::dialect::Dialect;
use crate::fault::Schedule;

/// The name of the route a request gets when no route matches.
pub(crate) const DEFAULT_ROUTE: &str = "default";

/// A route with its resolved profile and request counter.
#[derive(Debug)]
pub(crate) struct RouteState {
    /// Named in `x-sluice-route` and logs.
    pub(crate) name: String,
    /// The profile its requests get.
    pub(crate) profile: Arc<Profile>,
    matcher: RouteMatch,
    requests: AtomicU64,
    /// With a `first_requests` or `every` schedule in its profile: the
    /// largest `first_requests` (0 for `every` alone), below which a fleet
    /// numbers its requests one at a time (docs/fleet.md, "Schedules").
    pub(crate) counted_until: Option<u64>,
}

impl RouteState {
    /// This route's next request number, from 0.
    pub(crate) fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// The fleet numbered a request `number`: this route's own count goes
    /// on from at least there, so that numbering alone (the store down)
    /// does not start the schedules again.
    pub(crate) fn follow(&self, number: u64) {
        self.requests.fetch_max(number.saturating_add(1), Ordering::Relaxed);
    }
}

/// What routing can read from a JSON request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BodyFacts {
    /// `model`.
    pub(crate) model: Option<String>,
    /// `stream`.
    pub(crate) stream: bool,
    /// A non-empty `tools` list.
    pub(crate) has_tools: bool,
    /// The count_tokens estimate of its input (0 for a body not read).
    pub(crate) input_tokens: u64,
    /// Its cap on output tokens: `max_tokens`, `max_completion_tokens` or
    /// `max_output_tokens`, whichever the API uses.
    pub(crate) max_tokens: Option<u64>,
}

impl BodyFacts {
    /// Reads the facts leniently: a body that is not a JSON object has none,
    /// and a field of another type than expected reads as absent. Only the
    /// top-level fields named here are kept; everything else is skipped as
    /// it is read, so a body costs no parsed tree (a tree is about 40 bytes
    /// a value: 1.2 GB for 31 MiB of numbers).
    pub(crate) fn read(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Facts {
            #[serde(default)]
            model: Scalar,
            #[serde(default)]
            stream: Scalar,
            #[serde(default)]
            tools: Scalar,
            #[serde(default)]
            max_tokens: Scalar,
            #[serde(default)]
            max_completion_tokens: Scalar,
            #[serde(default)]
            max_output_tokens: Scalar,
            /// Gemini's cap is `generationConfig.maxOutputTokens`.
            #[serde(default, rename = "generationConfig", alias = "generation_config")]
            generation_config: Scalar,
            /// Bedrock Converse's is `inferenceConfig.maxTokens`.
            #[serde(default, rename = "inferenceConfig")]
            inference_config: Scalar,
        }
        let Ok(facts) = serde_json::from_slice::<Facts>(body) else {
            return Self::default();
        };
        let count = |scalar: &Scalar| match scalar {
            Scalar::Count(count) => Some(*count),
            _ => None,
        };
        Self {
            model: match facts.model {
                Scalar::Text(model) => Some(model),
                _ => None,
            },
            stream: matches!(facts.stream, Scalar::Flag(true)),
            has_tools: matches!(facts.tools, Scalar::Items(items) if items > 0),
            input_tokens: rough_tokens(body),
            max_tokens: count(&facts.max_tokens)
                .or_else(|| count(&facts.max_completion_tokens))
                .or_else(|| count(&facts.max_output_tokens))
                .or(match (facts.generation_config, facts.inference_config) {
                    (Scalar::Object { max_output_tokens: cap }, _)
                    | (_, Scalar::Object { max_output_tokens: cap }) => cap,
                    _ => None,
                }),
        }
    }

    /// The facts of a request to `path`: the body's, and for Gemini, whose
    /// path names the model and whether it streams, the path's
    /// (`docs/protocols.md` §7).
    pub(crate) fn read_request(path: &str, body: &[u8]) -> Self {
        let mut facts = Self::read(body);
        if let Some((model, method)) = crate::dialect::gemini::model_of(path) {
            facts.model.get_or_insert_with(|| model.to_string());
            facts.stream = method == "streamGenerateContent";
        } else if let Some((model, operation)) = crate::dialect::bedrock::model_of(path) {
            facts.model.get_or_insert_with(|| model.into_owned());
            facts.stream = matches!(operation, "converse-stream" | "invoke-with-response-stream");
        }
        facts
    }
}

/// One top-level field as [`BodyFacts`] reads it: a string, a flag, a whole
/// number, how many items an array has (each skipped unread), or anything
/// else (skipped unread).
#[derive(Debug, Default)]
enum Scalar {
    #[default]
    Other,
    Text(String),
    Flag(bool),
    Count(u64),
    Items(usize),
    /// An object, with its `maxOutputTokens` (or `max_output_tokens`, or
    /// Bedrock's `maxTokens`) when that is a whole number; every other member
    /// is skipped unread.
    Object {
        max_output_tokens: Option<u64>,
    },
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        json.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(text.to_owned()))
    }

    fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<Scalar, E> {
        Ok(Scalar::Flag(flag))
    }

    fn visit_u64<E: serde::de::Error>(self, count: u64) -> Result<Scalar, E> {
        Ok(Scalar::Count(count))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Scalar, A::Error> {
        let mut count = 0usize;
        while items.next_element::<serde::de::IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Scalar::Items(count))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut fields: A) -> Result<Scalar, A::Error> {
        let mut max_output_tokens = None;
        while let Some(name) = fields.next_key::<std::borrow::Cow<'de, str>>()? {
            if matches!(name.as_ref(), "maxOutputTokens" | "max_output_tokens" | "maxTokens") {
                // A nested value is skipped, not read into a tree.
                if let Scalar::Count(count) = fields.next_value::<Scalar>()? {
                    max_output_tokens = Some(count);
                }
            } else {
                fields.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(Scalar::Object { max_output_tokens })
    }
}

/// The routes of one config.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<RouteState>,
    default: RouteState,
    profiles: HashMap<String, Arc<Profile>>,
    needs_body: bool,
}

impl Router {
    /// Resolves `config`'s routes and profiles.
    pub(crate) fn new(config: &Config) -> Self {
        let profiles: HashMap<String, Arc<Profile>> = config
            .profiles
            .iter()
            .map(|(name, patch)| (name.clone(), Arc::new(patch.over(&config.profile))))
            .collect();
        let default_profile = Arc::new(config.profile.clone());
        let state = |name: &str, matcher: RouteMatch, profile: Arc<Profile>| RouteState {
            name: name.to_string(),
            counted_until: counted_until(&profile),
            profile,
            matcher,
            requests: AtomicU64::new(0),
        };
        let routes: Vec<RouteState> = config
            .routes
            .iter()
            .map(|route| {
                let profile = route
                    .profile
                    .as_ref()
                    .and_then(|name| profiles.get(name).cloned())
                    .unwrap_or_else(|| Arc::clone(&default_profile));
                state(&route.name, route.matcher.clone(), profile)
            })
            .collect();
        // A token limit charges the body's estimate, and a per-model key
        // needs the body's model, so admission reads it.
        // Prefill counts the body's input tokens too.
        let limits_tokens = std::iter::once(&default_profile).chain(profiles.values()).any(|p| {
            p.rate_limits.limits_tokens()
                || (p.rate_limits.is_active() && p.rate_limits.key == LimitKey::ApiKeyAndModel)
                || !p.capacity.prefill_per_1k_tokens.is_zero()
        });
        Self {
            needs_body: limits_tokens || routes.iter().any(|r| r.matcher.needs_body()),
            default: state(DEFAULT_ROUTE, RouteMatch::default(), default_profile),
            routes,
            profiles,
        }
    }

    /// Goes on counting each route's requests from where `previous`'s
    /// route of the same name stands.
    pub(crate) fn carry_counts(&self, previous: &Router) {
        let routes = self.routes.iter().chain(std::iter::once(&self.default));
        for route in routes {
            let before = previous
                .routes
                .iter()
                .chain(std::iter::once(&previous.default))
                .find(|r| r.name == route.name);
            if let Some(before) = before {
                route.requests.store(before.requests.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }

    /// Whether some route reads the request body (model, stream, tools), or
    /// some profile limits tokens, keys its limits by model or has a prefill.
    pub(crate) fn needs_body(&self) -> bool {
        self.needs_body
    }

    /// The first route that takes the request, or the default route.
    pub(crate) fn select(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Option<&BodyFacts>,
    ) -> &RouteState {
        self.routes
            .iter()
            .find(|route| matches(&route.matcher, method, path, headers, body))
            .unwrap_or(&self.default)
    }

    /// The named profile, for the `x-sluice-profile` control header.
    pub(crate) fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        self.profiles.get(name).cloned()
    }
}

fn matches(
    matcher: &RouteMatch,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Option<&BodyFacts>,
) -> bool {
    let empty = BodyFacts::default();
    let body = body.unwrap_or(&empty);
    matcher.path.as_ref().is_none_or(|glob| glob.matches(path))
        && matcher.method.as_ref().is_none_or(|m| m == method)
        && matcher.headers.iter().all(|(name, glob)| {
            headers.get_all(name).iter().any(|v| v.to_str().is_ok_and(|v| glob.matches(v)))
        })
        && matcher
            .model
            .as_ref()
            .is_none_or(|glob| body.model.as_deref().is_some_and(|m| glob.matches(m)))
        && matcher.stream.is_none_or(|want| want == body.stream)
        && matcher.has_tools.is_none_or(|want| want == body.has_tools)
        && matcher.api.is_none_or(|api| takes(api, Dialect::for_path(path)))
}

/// Whether a route for `api` takes a request of `dialect`.
fn takes(api: Api, dialect: Dialect) -> bool {
    matches!(
        (api, dialect),
        (Api::Anthropic, Dialect::Anthropic)
            | (Api::OpenAi, Dialect::OpenAiChat | Dialect::OpenAiResponses)
            | (Api::OpenAiChat, Dialect::OpenAiChat)
            | (Api::OpenAiResponses, Dialect::OpenAiResponses)
            | (Api::Gemini, Dialect::Gemini)
            | (Api::Bedrock, Dialect::Bedrock)
    )
}

/// The largest `first_requests` of `profile`'s schedules (0 with `every`
/// alone); `None` when it has neither, so its requests need no number of
/// the fleet's.
fn counted_until(profile: &Profile) -> Option<u64> {
    profile
        .faults
        .iter()
        .filter_map(|fault| match fault.schedule {
            Schedule::FirstRequests(n) => Some(n),
            Schedule::Every(_) => Some(0),
            _ => None,
        })
        .max()
}

/// A rough token count of a body (4 bytes a token), at least 1: the
/// estimate routes, limits and the mock's `count_tokens` all use.
pub(crate) fn rough_tokens(body: &[u8]) -> u64 {
    (body.len() as u64 / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts come from the top-level fields alone, leniently, and a
    /// large field they do not name is skipped, not parsed into a tree.
    #[test]
    fn body_facts_read_named_fields_leniently() {
        let facts = BodyFacts::read(
            br#"{"messages":[[1,2,{"a":[3]}]],"model":"claude-x","stream":true,"tools":[{},{}],"max_output_tokens":64}"#,
        );
        assert_eq!(facts.model.as_deref(), Some("claude-x"));
        assert!(facts.stream && facts.has_tools);
        assert_eq!(facts.max_tokens, Some(64));
        let odd = BodyFacts::read(br#"{"model":7,"stream":"yes","tools":[],"max_tokens":-1}"#);
        assert_eq!(
            (odd.model, odd.stream, odd.has_tools, odd.max_tokens),
            (None, false, false, None)
        );
        let first = BodyFacts::read(br#"{"max_tokens":8,"max_completion_tokens":9}"#);
        assert_eq!(first.max_tokens, Some(8));
        assert_eq!(BodyFacts::read(b"[1,2]").model, None);
    }

    fn router(toml: &str) -> Router {
        Router::new(&Config::from_toml_str(toml, "test.toml").unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    const ROUTES: &str = r#"
        [profiles.slow]
        first_token_delay = "2s"
        [profiles.tools]
        tool_call_delay = "1s"

        [[routes]]
        name = "by-header"
        headers = { x-scenario = "slow*" }
        profile = "slow"

        [[routes]]
        name = "haiku-tools"
        model = "claude-*-haiku*"
        has_tools = true
        profile = "tools"

        [[routes]]
        name = "non-streaming"
        method = "POST"
        path = "/v1/messages"
        stream = false
    "#;

    #[test]
    fn the_first_matching_route_wins() {
        let router = router(ROUTES);
        let post = Method::POST;
        let haiku_tools = BodyFacts {
            model: Some("claude-3-5-haiku-latest".into()),
            stream: true,
            has_tools: true,
            ..BodyFacts::default()
        };
        let pick = |h: &HeaderMap, body: Option<&BodyFacts>| {
            router.select(&post, "/v1/messages", h, body).name.clone()
        };
        assert_eq!(
            pick(&headers(&[("x-scenario", "slow-start")]), Some(&haiku_tools)),
            "by-header"
        );
        assert_eq!(pick(&headers(&[]), Some(&haiku_tools)), "haiku-tools");
        let sonnet = BodyFacts {
            model: Some("claude-sonnet-4".into()),
            has_tools: true,
            ..BodyFacts::default()
        };
        assert_eq!(pick(&headers(&[]), Some(&sonnet)), "non-streaming");
        let sonnet_streaming = BodyFacts { stream: true, ..sonnet };
        assert_eq!(pick(&headers(&[]), Some(&sonnet_streaming)), DEFAULT_ROUTE);
        assert_eq!(
            router.select(&Method::GET, "/v1/models", &headers(&[]), None).name,
            DEFAULT_ROUTE
        );
        assert!(router.needs_body());
    }

    #[test]
    fn a_route_gets_its_profile_over_the_default() {
        let router = router(ROUTES);
        let slow = router.select(&Method::POST, "/", &headers(&[("x-scenario", "slow")]), None);
        assert_eq!(slow.profile.timing.first_token_delay, std::time::Duration::from_secs(2).into());
        assert_eq!(
            slow.profile.timing.token_interval,
            std::time::Duration::from_millis(20).into(),
            "inherited"
        );
        let default = router.select(&Method::GET, "/", &headers(&[]), None);
        assert_eq!(
            default.profile.timing.first_token_delay,
            std::time::Duration::from_millis(100).into()
        );
    }

    #[test]
    fn each_route_counts_its_own_requests() {
        let router = router(ROUTES);
        let slow = router.select(&Method::POST, "/", &headers(&[("x-scenario", "slow")]), None);
        let default = router.select(&Method::GET, "/", &headers(&[]), None);
        assert_eq!([slow.next_request(), slow.next_request(), default.next_request()], [0, 1, 0]);
    }

    #[test]
    fn body_facts_are_read_leniently() {
        let body = br#"{"model":"m","stream":true,"tools":[{"name":"t"}],"max_tokens":64}"#;
        let facts = BodyFacts::read(body);
        let expected = BodyFacts {
            model: Some("m".into()),
            stream: true,
            has_tools: true,
            input_tokens: body.len() as u64 / 4,
            max_tokens: Some(64),
        };
        assert_eq!(facts, expected);
        let chat = BodyFacts::read(br#"{"max_completion_tokens":9}"#);
        assert_eq!(chat.max_tokens, Some(9));
        let responses = BodyFacts::read(br#"{"max_output_tokens":7}"#);
        assert_eq!(responses.max_tokens, Some(7));
        assert_eq!(BodyFacts::read(b"not json"), BodyFacts::default());
        assert!(!BodyFacts::read(br#"{"tools":[]}"#).has_tools);
    }

    #[test]
    fn a_gemini_requests_facts_come_from_its_path_and_generation_config() {
        let body = br#"{"contents":[],"tools":[{}],"generationConfig":{"temperature":1,"maxOutputTokens":256}}"#;
        let facts =
            BodyFacts::read_request("/v1beta/models/gemini-2.5-flash:streamGenerateContent", body);
        assert_eq!(facts.model.as_deref(), Some("gemini-2.5-flash"));
        assert!(facts.stream && facts.has_tools);
        assert_eq!(facts.max_tokens, Some(256));
        let whole = BodyFacts::read_request(
            "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent",
            br#"{"generation_config":{"max_output_tokens":9}}"#,
        );
        assert_eq!((whole.model.as_deref(), whole.stream), (Some("gemini-2.5-pro"), false));
        assert_eq!(whole.max_tokens, Some(9));
        // Not Gemini: the body alone; a cap nested elsewhere is not one.
        let other =
            BodyFacts::read_request("/v1/messages", br#"{"metadata":{"maxOutputTokens":5}}"#);
        assert_eq!(other, BodyFacts { input_tokens: other.input_tokens, ..BodyFacts::default() });
        let odd = BodyFacts::read(br#"{"generationConfig":{"maxOutputTokens":"many"}}"#);
        assert_eq!(odd.max_tokens, None);
        let bedrock = BodyFacts::read_request(
            "/model/anthropic.claude-x-v1%3A0/converse-stream",
            br#"{"messages":[],"inferenceConfig":{"maxTokens":77}}"#,
        );
        assert_eq!(bedrock.model.as_deref(), Some("anthropic.claude-x-v1:0"));
        assert!(bedrock.stream);
        assert_eq!(bedrock.max_tokens, Some(77));
    }
}
