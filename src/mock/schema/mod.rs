//! A tool call's `input`, made from the tool's JSON Schema so that it
//! validates against that schema (the mock's reply calls a tool with it;
//! `super::reply` streams it as `input_json_delta`s).
//!
//! A value must satisfy a set of schemas at once (`Parts`): the schema
//! itself, what its `$ref` points at (`#/$defs/...` and `#/definitions/...`,
//! as pydantic, zod and older generators emit), every `allOf` member, and
//! one drawn option of each `anyOf`/`oneOf`. From those the sampler takes
//! the type (`type` arrays and `null` too), `const` and `enum` of any type,
//! numeric bounds in every draft's spelling and `multipleOf`, string
//! lengths, `format` and `pattern` (`pattern`), array lengths, tuples
//! (`prefixItems`, or `items` as an array with `additionalItems`),
//! `contains` and `uniqueItems`, and object `required`, `properties`,
//! `additionalProperties`, `patternProperties`, `propertyNames` and
//! `minProperties`/`maxProperties`. `not` is honoured on a best-effort basis
//! by drawing again. A schema no value can satisfy (contradictory bounds,
//! an empty `enum`, a required property that `additionalProperties: false`
//! forbids) is refused with the schema path. Constraints that clients move
//! into a `description` for strict schemas are read back (`hints`). Everything is paid for from a
//! [`Budget`], so a client's schema cannot make the mock do unbounded work.
//! Deterministic for a request's random stream.

mod hints;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use rand::{Rng, RngExt};
use serde_json::{Map, Number, Value, json};

use pattern::{Checker, Generator, PatternError, Stretch};

/// From this depth on, a value gets only what it must have: required
/// properties, `minItems` items, and the `null` option of a union, which
/// ends recursive schemas (a tree's children, a list's `next`).
const MAX_DEPTH: usize = 8;
/// Deeper than this a value is cut short whatever it must have (only a
/// schema that requires infinite nesting gets here, and it has no valid
/// input at all).
const HARD_DEPTH: usize = 32;
/// How often one value is drawn again to satisfy `not`, or an item to
/// differ from the others (`uniqueItems`): the one value in three that is
/// allowed is missed 32 times in a row once in 400,000.
const REDRAWS: usize = 32;
/// `$ref`s, `allOf` members and union options one value may expand.
const MAX_EXPANSIONS: usize = 64;
/// Draws of a `pattern` string before its length bounds are given up.
const PATTERN_DRAWS: usize = 64;
/// Steps of work one pattern's compilation is charged: at most a few
/// milliseconds of CPU, so the budget allows 50 of them.
const COMPILE_STEPS: usize = Budget::DEFAULT.steps / 50;

/// What one input may cost: values made, bytes of output, and steps of work
/// (values, options scanned, pointer lookups). A request's schema is the
/// client's, so without a budget one small request could ask for a hundred
/// million array items or a `$ref` fan-out that never ends, and stall every
/// stream beside it (`docs/reliability.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Values (objects, arrays, scalars) in the input.
    pub values: usize,
    /// Bytes of strings and copied constants.
    pub bytes: usize,
    /// Steps of work.
    pub steps: usize,
}

impl Budget {
    /// 10,000 values, 256 KiB (more than a model's largest output), 200,000 steps.
    pub const DEFAULT: Self = Self { values: 10_000, bytes: 256 * 1024, steps: 200_000 };
}

/// Why no input was made for a schema: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The input would not fit the [`Budget`].
    #[error(
        "an input for this schema would exceed the mock's budget ({} values, {} KiB, {} steps): at {path}, {reason}",
        Budget::DEFAULT.values,
        Budget::DEFAULT.bytes / 1024,
        Budget::DEFAULT.steps
    )]
    TooLarge {
        /// The schema path, such as `properties.items.items`.
        path: String,
        /// What ran out.
        reason: String,
    },
    /// No value satisfies the schema (or none the sampler could find).
    #[error("no input satisfies this schema: at {path}, {reason}")]
    Unsatisfiable {
        /// The schema path.
        path: String,
        /// The contradiction.
        reason: String,
    },
}

impl SchemaError {
    /// The schema path the error names.
    pub fn path(&self) -> &str {
        match self {
            Self::TooLarge { path, .. } | Self::Unsatisfiable { path, .. } => path,
        }
    }

    /// What went wrong there.
    pub fn reason(&self) -> &str {
        match self {
            Self::TooLarge { reason, .. } | Self::Unsatisfiable { reason, .. } => reason,
        }
    }
}

/// A value that satisfies `schema`, within [`Budget::DEFAULT`].
///
/// # Errors
/// [`SchemaError`] naming the schema path where the budget ran out or
/// where the schema contradicts itself.
pub fn sample(schema: &Value, rng: &mut impl Rng) -> Result<Value, SchemaError> {
    sample_within(schema, rng, Budget::DEFAULT)
}

/// [`sample`] with another budget.
///
/// # Errors
/// [`SchemaError`] naming the schema path where the budget ran out or
/// where the schema contradicts itself.
pub fn sample_within(
    schema: &Value,
    rng: &mut impl Rng,
    budget: Budget,
) -> Result<Value, SchemaError> {
    // Constraints a structured-output client described instead of stating.
    let hinted = hints::apply(schema);
    let schema = hinted.as_ref().unwrap_or(schema);
    let mut sampler = Sampler {
        root: schema,
        left: budget,
        full: budget,
        checkers: HashMap::new(),
        generators: HashMap::new(),
    };
    sampler.value(&[schema], rng, 0, "value", &SchemaPath::Root)
}

/// Where in the schema the sampler is, as a chain of borrowed segments (no
/// allocation unless an error names it).
enum SchemaPath<'p> {
    Root,
    Key(&'p SchemaPath<'p>, &'p str),
}

impl fmt::Display for SchemaPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("the schema's root"),
            Self::Key(Self::Root, key) => f.write_str(key),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

fn too_large(path: &SchemaPath<'_>, reason: impl Into<String>) -> SchemaError {
    SchemaError::TooLarge { path: path.to_string(), reason: reason.into() }
}

fn unsatisfiable(path: &SchemaPath<'_>, reason: impl Into<String>) -> SchemaError {
    SchemaError::Unsatisfiable { path: path.to_string(), reason: reason.into() }
}

/// Every schema object one value must satisfy at once, in the order found
/// (the schema first, then what it refers to and combines).
struct Parts<'a> {
    maps: Vec<&'a Map<String, Value>>,
}

impl<'a> Parts<'a> {
    /// The first part's `key`.
    fn first(&self, key: &str) -> Option<&'a Value> {
        self.maps.iter().find_map(|m| m.get(key))
    }

    /// Every part's `key`.
    fn all<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a Value> + use<'a, 'k, '_> {
        self.maps.iter().filter_map(move |m| m.get(key))
    }

    /// The largest `key` (for lower bounds such as `minItems`).
    fn max_u64(&self, key: &str) -> Option<u64> {
        self.all(key).filter_map(Value::as_u64).max()
    }

    /// The smallest `key` (for upper bounds such as `maxItems`).
    fn min_u64(&self, key: &str) -> Option<u64> {
        self.all(key).filter_map(Value::as_u64).min()
    }

    /// Whether any part has `key` set to `true`.
    fn any_true(&self, key: &str) -> bool {
        self.all(key).any(|v| v == &Value::Bool(true))
    }
}

struct Sampler<'a> {
    root: &'a Value,
    left: Budget,
    full: Budget,
    /// Compiled `pattern`s and `patternProperties` keys; `None` when
    /// unusable (then ignored).
    checkers: HashMap<&'a str, Option<Arc<Checker>>>,
    /// Generators for them, by pattern and stretch.
    generators: HashMap<(&'a str, Stretch), Option<Arc<Generator>>>,
}

impl<'a> Sampler<'a> {
    /// Spends `steps` of work.
    fn step(&mut self, steps: usize, path: &SchemaPath<'_>) -> Result<(), SchemaError> {
        self.left.steps =
            self.left.steps.checked_sub(steps).ok_or_else(|| {
                too_large(path, "the schema takes too much work (a $ref fan-out?)")
            })?;
        Ok(())
    }

    /// Spends one value and `bytes` of output.
    fn spend(&mut self, bytes: usize, path: &SchemaPath<'_>) -> Result<(), SchemaError> {
        self.step(1, path)?;
        self.left.values =
            self.left.values.checked_sub(1).ok_or_else(|| {
                too_large(path, "too many values (nested arrays or a $ref fan-out?)")
            })?;
        self.left.bytes = self
            .left
            .bytes
            .checked_sub(bytes)
            .ok_or_else(|| too_large(path, "too many bytes of output"))?;
        Ok(())
    }

    /// A copy of `value` from the schema (`const`, `enum`, `examples`), paid for.
    fn copy(&mut self, value: &Value, path: &SchemaPath<'_>) -> Result<Value, SchemaError> {
        let mut stack = vec![value];
        while let Some(next) = stack.pop() {
            let bytes = match next {
                Value::String(text) => text.len(),
                Value::Array(items) => {
                    stack.extend(items);
                    0
                }
                Value::Object(map) => {
                    stack.extend(map.values());
                    map.keys().map(String::len).sum()
                }
                _ => 8,
            };
            self.spend(bytes, path)?;
        }
        Ok(value.clone())
    }

    /// Optional properties are filled while less than half the budget is
    /// spent; after that a value gets only what it must have.
    fn can_afford_optional(&self) -> bool {
        self.left.values * 2 > self.full.values && self.left.bytes * 2 > self.full.bytes
    }

    /// A local JSON pointer such as `#/$defs/Address` or `#/definitions/Address`.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    /// `pattern`'s checker, from the cache; `None` when unusable.
    fn checker(
        &mut self,
        pattern: &'a str,
        path: &SchemaPath<'_>,
    ) -> Result<Option<&Checker>, SchemaError> {
        if !self.checkers.contains_key(pattern) {
            // Compiling costs up to a few milliseconds: a schema may use at
            // most 50 patterns. Charged whether or not the process-wide cache
            // has it, so what a schema may do never depends on other requests.
            self.step(COMPILE_STEPS + pattern.len(), path)?;
            self.checkers.insert(pattern, pattern::checker(pattern));
        }
        Ok(self.checkers.get(pattern).and_then(Option::as_deref))
    }

    /// A candidate for `pattern` with repeats narrowed by `stretch` (which
    /// its checker must still pass); `None` when the pattern is unusable.
    fn candidate(
        &mut self,
        pattern: &'a str,
        stretch: Stretch,
        rng: &mut impl Rng,
        path: &SchemaPath<'_>,
    ) -> Result<Option<String>, SchemaError> {
        if !self.generators.contains_key(&(pattern, stretch)) {
            self.step(COMPILE_STEPS / 10 + pattern.len(), path)?;
            let generator = match pattern::generator(pattern, stretch) {
                Ok(generator) => Some(generator),
                Err(PatternError::Unsupported) => None,
                Err(PatternError::TooLong) => {
                    return Err(too_large(path, "the matches of `pattern` are too long"));
                }
            };
            self.generators.insert((pattern, stretch), generator);
        }
        let Some(generator) = self.generators.get(&(pattern, stretch)).and_then(Option::as_ref)
        else {
            return Ok(None);
        };
        // A draw allocates the longest match: it must fit what is left.
        if generator.max_len > self.left.bytes {
            return Err(too_large(path, "the matches of `pattern` are too long"));
        }
        let text = generator.draw(rng);
        self.step(text.len() / 16 + 1, path)?;
        Ok(Some(text))
    }

    /// Whether `text` matches `pattern` (`true` when the pattern is unusable).
    fn matches(
        &mut self,
        pattern: &'a str,
        text: &str,
        path: &SchemaPath<'_>,
    ) -> Result<bool, SchemaError> {
        self.step(text.len() / 64 + 1, path)?;
        Ok(self.checker(pattern, path)?.is_none_or(|checker| checker.is_match(text)))
    }

    /// Gathers every schema a value must satisfy: `schemas`, what their
    /// `$ref`s point at, their `allOf` members, and one option of each
    /// `anyOf`/`oneOf` (at depth, the `null` one when there is one).
    fn parts(
        &mut self,
        schemas: &[&'a Value],
        rng: &mut impl Rng,
        depth: usize,
        path: &SchemaPath<'_>,
    ) -> Result<Parts<'a>, SchemaError> {
        let mut queue: Vec<&'a Value> = schemas.to_vec();
        let mut maps = Vec::with_capacity(queue.len());
        let mut expansions = 0;
        let mut at = 0;
        while let Some(&schema) = queue.get(at) {
            at += 1;
            let map = match schema {
                Value::Object(map) => map,
                Value::Bool(false) => return Err(unsatisfiable(path, "the schema is `false`")),
                _ => continue, // `true`, or a malformed schema: anything goes
            };
            self.step(1, path)?;
            maps.push(map);
            let mut expand = |more: &'a Value| {
                expansions += 1;
                if expansions <= MAX_EXPANSIONS {
                    queue.push(more);
                }
            };
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                self.step(reference.len(), path)?;
                if let Some(target) = self.resolve(reference) {
                    expand(target);
                }
            }
            if let Some(Value::Array(members)) = map.get("allOf") {
                self.step(members.len(), path)?;
                members.iter().for_each(&mut expand);
            }
            for union in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = map.get(union) {
                    self.step(options.len(), path)?;
                    if let Some(option) = choose_option(options, depth, rng) {
                        expand(option);
                    }
                }
            }
        }
        Ok(Parts { maps })
    }

    /// A value that satisfies every one of `schemas`.
    fn value(
        &mut self,
        schemas: &[&'a Value],
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, SchemaError> {
        // A value reached through a `$ref` is named through it.
        let reference = match schemas {
            [single] => single.get("$ref").and_then(Value::as_str),
            _ => None,
        };
        let via = reference.map(|r| SchemaPath::Key(path, r));
        let path = via.as_ref().unwrap_or(path);
        let parts = self.parts(schemas, rng, depth, path)?;
        let nots: Vec<&'a Value> = parts.all("not").collect();
        if nots.is_empty() {
            return self.typed(&parts, &[], rng, depth, name, path);
        }
        // Types a `not` rules out are never drawn; the rest is checked after.
        let excluded: Vec<&str> = nots.iter().filter_map(|n| only_types(n)).flatten().collect();
        for _ in 0..REDRAWS {
            let value = self.typed(&parts, &excluded, rng, depth, name, path)?;
            if !nots.iter().any(|not| surely_matches(not, &value)) {
                return Ok(value);
            }
        }
        Err(unsatisfiable(path, "every value drawn matches the schema under `not`"))
    }

    /// A value of the parts' type, or one of their `const`/`enum` values.
    fn typed(
        &mut self,
        parts: &Parts<'a>,
        excluded: &[&str],
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, SchemaError> {
        let consts: Vec<&Value> = parts.all("const").collect();
        if let Some((&constant, others)) = consts.split_first() {
            if others.iter().any(|other| *other != constant) {
                return Err(unsatisfiable(path, "two `const`s differ"));
            }
            return self.copy(constant, &SchemaPath::Key(path, "const"));
        }
        let enums: Vec<&Vec<Value>> = parts.all("enum").filter_map(Value::as_array).collect();
        if let Some((first, others)) = enums.split_first() {
            self.step(first.len().saturating_mul(enums.len()), path)?;
            // A value every `enum` lists and every `type` allows.
            let typed_as_declared = |option: &Value| {
                parts.all("type").all(|declared| match declared {
                    Value::String(k) => has_type(option, k),
                    Value::Array(ks) => {
                        ks.iter().filter_map(Value::as_str).any(|k| has_type(option, k))
                    }
                    _ => true,
                })
            };
            let allowed: Vec<&Value> = first
                .iter()
                .filter(|option| others.iter().all(|e| e.contains(option)))
                .filter(|option| typed_as_declared(option))
                .collect();
            if allowed.is_empty() {
                return Err(unsatisfiable(&SchemaPath::Key(path, "enum"), "no value is allowed"));
            }
            let chosen = allowed[rng.random_range(0..allowed.len())];
            return self.copy(chosen, &SchemaPath::Key(path, "enum"));
        }
        match kind(parts, excluded).map_err(|reason| unsatisfiable(path, reason))? {
            "object" => self.object(parts, rng, depth, path),
            "array" => self.array(parts, rng, depth, name, path),
            "integer" => {
                self.spend(8, path)?;
                integer(parts, rng).map_err(|reason| unsatisfiable(path, reason))
            }
            "number" => {
                self.spend(8, path)?;
                number(parts, rng).map_err(|reason| unsatisfiable(path, reason))
            }
            "boolean" => self.spend(1, path).map(|()| Value::Bool(rng.random())),
            "null" => self.spend(1, path).map(|()| Value::Null),
            _ => self.string(parts, rng, name, path),
        }
    }

    fn object(
        &mut self,
        parts: &Parts<'a>,
        rng: &mut impl Rng,
        depth: usize,
        path: &SchemaPath<'_>,
    ) -> Result<Value, SchemaError> {
        self.spend(0, path)?;
        let mut out = Map::new();
        if depth >= HARD_DEPTH {
            return Ok(Value::Object(out));
        }
        let min = parts.max_u64("minProperties").unwrap_or(0);
        let max = parts.min_u64("maxProperties").unwrap_or(u64::MAX);
        if min > max {
            return Err(unsatisfiable(
                path,
                format!("minProperties {min} is above maxProperties {max}"),
            ));
        }
        let here = SchemaPath::Key(path, "properties");
        let mut required: Vec<&'a str> = Vec::new();
        let mut seen = HashSet::new();
        for name in parts.all("required").filter_map(Value::as_array).flatten() {
            self.step(1, path)?;
            if let Some(name) = name.as_str()
                && seen.insert(name)
            {
                required.push(name);
            }
        }
        if required.len() as u64 > max {
            return Err(unsatisfiable(
                path,
                format!("{} required properties but maxProperties {max}", required.len()),
            ));
        }
        for &name in &required {
            let key_path = SchemaPath::Key(&here, name);
            let schemas = self.property_schemas(parts, name, &key_path)?;
            self.spend(name.len(), &key_path)?;
            let value = self.value(&schemas, rng, depth + 1, name, &key_path)?;
            out.insert(name.to_string(), value);
        }
        // Optional properties: all of them when nothing is required (what
        // frameworks' all-optional schemas expect), else only to reach
        // `minProperties`. None at depth: that is how recursion ends.
        let fill_optional = required.is_empty() && depth < MAX_DEPTH;
        let declared: Vec<(&'a String, &'a Value)> = parts
            .all("properties")
            .filter_map(Value::as_object)
            .flat_map(|properties| properties.iter())
            .collect();
        for (name, property) in declared {
            self.step(1, path)?;
            let wanted = (fill_optional && self.can_afford_optional()) || (out.len() as u64) < min;
            if !wanted || out.len() as u64 >= max {
                break;
            }
            if out.contains_key(name.as_str()) || property == &Value::Bool(false) {
                continue;
            }
            let key_path = SchemaPath::Key(&here, name);
            let schemas = self.property_schemas(parts, name, &key_path)?;
            self.spend(name.len(), &key_path)?;
            let value = self.value(&schemas, rng, depth + 1, name, &key_path)?;
            out.insert(name.clone(), value);
        }
        // A map type (`dict[str, int]`: no properties, a schema for the
        // rest) gets an entry or two; any object gets what minProperties needs.
        let is_map = out.is_empty()
            && parts.first("properties").is_none()
            && (parts.all("additionalProperties").any(Value::is_object)
                || parts.first("patternProperties").is_some());
        let wanted =
            if is_map && depth < MAX_DEPTH { min.max(rng.random_range(1..=2)) } else { min };
        let wanted = wanted.min(max);
        let mut attempts = 0usize;
        while (out.len() as u64) < wanted {
            attempts += 1;
            let Some(key) = self.extra_key(parts, rng, depth, out.len(), path)? else {
                return Err(unsatisfiable(
                    path,
                    format!(
                        "{} properties are needed (minProperties {min}), but no more are allowed",
                        wanted
                    ),
                ));
            };
            if out.contains_key(&key) {
                if attempts > REDRAWS + wanted as usize {
                    return Err(unsatisfiable(
                        path,
                        format!("only {} distinct property names could be drawn", out.len()),
                    ));
                }
                continue;
            }
            let key_path = SchemaPath::Key(path, "additionalProperties");
            let schemas = self.property_schemas(parts, &key, &key_path)?;
            self.spend(key.len(), &key_path)?;
            let value = self.value(&schemas, rng, depth + 1, &key, &key_path)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    /// The schemas property `name` must satisfy: each part's `properties`
    /// entry, else its matching `patternProperties`, else its
    /// `additionalProperties` (`false` there forbids the property).
    fn property_schemas(
        &mut self,
        parts: &Parts<'a>,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Vec<&'a Value>, SchemaError> {
        let mut schemas = Vec::new();
        for &part in &parts.maps {
            self.step(1, path)?;
            if let Some(schema) = part.get("properties").and_then(|p| p.get(name)) {
                schemas.push(schema);
                continue;
            }
            let mut matched = false;
            if let Some(Value::Object(patterns)) = part.get("patternProperties") {
                for (pattern, schema) in patterns {
                    if self.matches(pattern, name, path)? {
                        schemas.push(schema);
                        matched = true;
                    }
                }
            }
            if matched {
                continue;
            }
            match part.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    return Err(unsatisfiable(
                        path,
                        format!("property {name:?} is needed, but additionalProperties is false"),
                    ));
                }
                Some(schema) => schemas.push(schema),
                None => {}
            }
        }
        Ok(schemas)
    }

    /// A name for a property beyond the declared ones: drawn from
    /// `propertyNames` or a `patternProperties` key when there is one, else
    /// `key_N`. `None` when `additionalProperties: false` allows no more.
    fn extra_key(
        &mut self,
        parts: &Parts<'a>,
        rng: &mut impl Rng,
        depth: usize,
        taken: usize,
        path: &SchemaPath<'_>,
    ) -> Result<Option<String>, SchemaError> {
        if let Some(names) = parts.first("propertyNames") {
            let here = SchemaPath::Key(path, "propertyNames");
            if let Value::String(key) = self.value(&[names], rng, depth + 1, "key", &here)? {
                return Ok(Some(key));
            }
        }
        let closed = parts.all("additionalProperties").any(|a| a == &Value::Bool(false));
        let pattern = parts
            .all("patternProperties")
            .filter_map(Value::as_object)
            .find_map(|p| p.keys().next());
        if let Some(pattern) = pattern {
            let here = SchemaPath::Key(path, "patternProperties");
            for _ in 0..PATTERN_DRAWS {
                let Some(key) = self.candidate(pattern, Stretch::SHORT, rng, &here)? else {
                    break;
                };
                if self.matches(pattern, &key, &here)? {
                    return Ok(Some(key));
                }
            }
        }
        Ok((!closed).then(|| format!("key_{}", taken + 1)))
    }

    fn array(
        &mut self,
        parts: &Parts<'a>,
        rng: &mut impl Rng,
        depth: usize,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, SchemaError> {
        self.spend(0, path)?;
        if depth >= HARD_DEPTH {
            return Ok(Value::Array(Vec::new()));
        }
        let explicit_min = parts.max_u64("minItems");
        let min = explicit_min.unwrap_or(0);
        let max = parts.min_u64("maxItems").unwrap_or(u64::MAX);
        if min > max {
            return Err(unsatisfiable(path, format!("minItems {min} is above maxItems {max}")));
        }
        // Each part's tuple (`prefixItems`, or draft 7's `items` array) and
        // the schema of the items after it.
        let tuples: Vec<(&'a [Value], Option<&'a Value>)> = parts
            .maps
            .iter()
            .map(|part| match (part.get("prefixItems"), part.get("items")) {
                (Some(Value::Array(prefix)), rest) => (prefix.as_slice(), rest),
                (_, Some(Value::Array(prefix))) => (prefix.as_slice(), part.get("additionalItems")),
                (_, rest) => (&[][..], rest),
            })
            .collect();
        let prefix_len = tuples.iter().map(|(prefix, _)| prefix.len()).max().unwrap_or(0) as u64;
        let limit = tuples
            .iter()
            .filter(|(_, rest)| *rest == Some(&Value::Bool(false)))
            .map(|(prefix, _)| prefix.len() as u64)
            .min()
            .unwrap_or(u64::MAX)
            .min(max);
        let contains = parts.first("contains");
        // One or two items (the whole tuple, for a tuple), within the bounds;
        // at depth, only what minItems asks.
        let lower = if depth >= MAX_DEPTH {
            min.max(u64::from(contains.is_some()))
        } else {
            min.max(1).max(prefix_len)
        }
        .min(limit);
        if lower < min || (contains.is_some() && limit == 0) {
            return Err(unsatisfiable(
                path,
                format!(
                    "at least {} items are needed, but at most {limit} are allowed",
                    min.max(1)
                ),
            ));
        }
        let upper = if depth >= MAX_DEPTH { lower } else { limit.min(lower.max(2)) };
        let count = rng.random_range(lower..=upper.max(lower));
        // Refused before a single item is made: the count alone is too many.
        if usize::try_from(count).map_or(true, |count| count > self.left.values) {
            return Err(too_large(path, format!("{count} items (minItems {min})")));
        }
        let unique = parts.any_true("uniqueItems");
        let mut out: Vec<Value> = Vec::new();
        for index in 0..count as usize {
            let label = if (index as u64) < prefix_len { "prefixItems" } else { "items" };
            let here = SchemaPath::Key(path, label);
            let mut schemas: Vec<&'a Value> = tuples
                .iter()
                .filter_map(|(prefix, rest)| {
                    prefix.get(index).or(if index < prefix.len() { None } else { *rest })
                })
                .collect();
            if index == 0
                && let Some(contains) = contains
            {
                schemas.push(contains);
            }
            if !unique {
                out.push(self.value(&schemas, rng, depth + 1, name, &here)?);
                continue;
            }
            let mut fresh = None;
            for _ in 0..REDRAWS {
                let item = self.value(&schemas, rng, depth + 1, name, &here)?;
                self.step(out.len(), &here)?;
                if !out.contains(&item) {
                    fresh = Some(item);
                    break;
                }
            }
            match fresh {
                Some(item) => out.push(item),
                None if out.len() as u64 >= min => break,
                None => {
                    return Err(unsatisfiable(
                        path,
                        format!(
                            "uniqueItems: only {} distinct items could be drawn, minItems is {min}",
                            out.len()
                        ),
                    ));
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn string(
        &mut self,
        parts: &Parts<'a>,
        rng: &mut impl Rng,
        name: &str,
        path: &SchemaPath<'_>,
    ) -> Result<Value, SchemaError> {
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let min = as_usize(parts.max_u64("minLength").unwrap_or(0));
        let max = as_usize(parts.min_u64("maxLength").unwrap_or(u64::MAX));
        if min > max {
            return Err(unsatisfiable(path, format!("minLength {min} is above maxLength {max}")));
        }
        // Each char is at least a byte: a minLength past the bytes left cannot fit.
        if min > self.left.bytes {
            return Err(too_large(
                path,
                format!("a string of at least {min} characters (minLength)"),
            ));
        }
        let patterns: Vec<&'a str> = parts.all("pattern").filter_map(Value::as_str).collect();
        let fits = |text: &str| (min..=max).contains(&text.chars().count());
        if let Some(example) =
            parts.first("examples").and_then(Value::as_array).and_then(|e| e.first())
            && let Some(text) = example.as_str()
            && fits(text)
            && self.all_match(&patterns, text, path)?
        {
            self.spend(text.len(), path)?;
            return Ok(json!(text));
        }
        // A well-known format's value, when it also matches the patterns
        // (zod's email regex, say, allows what the format does not).
        let format = parts.first("format").and_then(Value::as_str);
        if let Some(text) = format.and_then(|format| formatted(format, rng))
            && fits(&text)
            && self.all_match(&patterns, &text, path)?
        {
            self.spend(text.len(), path)?;
            return Ok(Value::String(text));
        }
        if let Some((&first, others)) = patterns.split_first() {
            let text = self.pattern_string(first, others, rng, min, max, path)?;
            if let Some(text) = text {
                self.spend(text.len(), path)?;
                return Ok(Value::String(text));
            }
        }
        let text = string(format, rng, name, min, max);
        self.spend(text.len(), path)?;
        Ok(Value::String(text))
    }

    /// Whether `text` matches every one of `patterns`.
    fn all_match(
        &mut self,
        patterns: &[&'a str],
        text: &str,
        path: &SchemaPath<'_>,
    ) -> Result<bool, SchemaError> {
        for &pattern in patterns {
            if !self.matches(pattern, text, path)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A string that matches `first` and `others` with `min..=max`
    /// characters; `None` when `first` is unusable (lookaround, say).
    fn pattern_string(
        &mut self,
        first: &'a str,
        others: &[&'a str],
        rng: &mut impl Rng,
        min: usize,
        max: usize,
        path: &SchemaPath<'_>,
    ) -> Result<Option<String>, SchemaError> {
        let here = SchemaPath::Key(path, "pattern");
        // Short repeats first; when minLength asks for more, repeats that
        // may reach it, then repeats that each do.
        let min_length = u32::try_from(min).unwrap_or(u32::MAX);
        let stretches = if min_length <= pattern::EXTRA_REPEATS {
            vec![Stretch::SHORT]
        } else {
            vec![
                Stretch::SHORT,
                Stretch { floor: 0, extra: min_length },
                Stretch { floor: min_length, extra: pattern::EXTRA_REPEATS },
            ]
        };
        let mut usable = false;
        for stretch in stretches {
            for _ in 0..PATTERN_DRAWS {
                let Some(text) = self.candidate(first, stretch, rng, &here)? else { break };
                usable = true;
                let chars = text.chars().count();
                if (min..=max).contains(&chars)
                    && self.matches(first, &text, &here)?
                    && self.all_match(others, &text, &here)?
                {
                    return Ok(Some(text));
                }
            }
        }
        if usable {
            return Err(unsatisfiable(
                &here,
                format!(
                    "no string of {min} to {} characters matching {first:?} was found",
                    if max == usize::MAX { "any number of".to_string() } else { max.to_string() }
                ),
            ));
        }
        Ok(None)
    }
}

/// One option of a union: at depth the `null` one when there is one (that
/// ends recursion), else a drawn option that is not `null`.
fn choose_option<'v>(options: &'v [Value], depth: usize, rng: &mut impl Rng) -> Option<&'v Value> {
    let is_null = |o: &Value| o.get("type").and_then(Value::as_str) == Some("null");
    if depth >= MAX_DEPTH
        && let Some(null) = options.iter().find(|o| is_null(o))
    {
        return Some(null);
    }
    let non_null: Vec<&Value> = options.iter().filter(|o| !is_null(o)).collect();
    if non_null.is_empty() {
        return options.first();
    }
    Some(non_null[rng.random_range(0..non_null.len())])
}

/// The value's type: the first type every part allows (`integer` where one
/// says `number` and another `integer`), minus what `not` excludes, with
/// `null` last; without any `type`, inferred from the keywords present.
fn kind(parts: &Parts<'_>, excluded: &[&str]) -> Result<&'static str, String> {
    const KINDS: [&str; 7] = ["object", "array", "string", "integer", "number", "boolean", "null"];
    let intern = |k: &str| KINDS.iter().copied().find(|&known| known == k);
    let mut allowed: Option<Vec<&'static str>> = None;
    for declared in parts.all("type") {
        let these: Vec<&'static str> = match declared {
            Value::String(k) => intern(k).into_iter().collect(),
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).filter_map(intern).collect(),
            _ => continue,
        };
        allowed = Some(match allowed {
            None => these,
            Some(before) => before
                .into_iter()
                .filter_map(|k| match k {
                    _ if these.contains(&k) => Some(k),
                    "number" if these.contains(&"integer") => Some("integer"),
                    "integer" if these.contains(&"number") => Some("integer"),
                    _ => None,
                })
                .collect(),
        });
    }
    let has = |keys: &[&str]| keys.iter().any(|k| parts.first(k).is_some());
    let inferred = if has(&["properties", "required", "additionalProperties", "patternProperties"])
    {
        "object"
    } else if has(&["items", "prefixItems", "minItems", "maxItems", "contains"]) {
        "array"
    } else if has(&["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]) {
        "number"
    } else {
        "string"
    };
    let declared = allowed.is_some();
    let candidates = allowed.unwrap_or_else(|| {
        std::iter::once(inferred).chain(KINDS.iter().copied().filter(|&k| k != inferred)).collect()
    });
    let candidates: Vec<&'static str> =
        candidates.into_iter().filter(|k| !excluded.contains(k)).collect();
    candidates.iter().copied().find(|&k| k != "null").or(candidates.first().copied()).ok_or_else(
        || {
            if declared {
                "the types its parts allow do not overlap".to_string()
            } else {
                "`not` excludes every type".to_string()
            }
        },
    )
}

/// The types a `not` schema rules out, when it says nothing but `type`.
fn only_types(not: &Value) -> Option<Vec<&str>> {
    let map = not.as_object()?;
    if map.keys().any(|k| k != "type" && !is_annotation(k)) {
        return None;
    }
    match map.get("type")? {
        Value::String(k) => Some(vec![k.as_str()]),
        Value::Array(ks) => Some(ks.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn is_annotation(key: &str) -> bool {
    matches!(key, "title" | "description" | "$comment" | "$id" | "$schema" | "default" | "examples")
}

/// Whether `value` surely matches `schema`, for `not`: judged on `type`,
/// `const`, `enum` and `required`; a schema with other assertions is taken
/// as not matching (best effort), and one with none matches everything.
fn surely_matches(schema: &Value, value: &Value) -> bool {
    let map = match schema {
        Value::Bool(matches) => return *matches,
        Value::Object(map) => map,
        _ => return false,
    };
    map.iter().all(|(key, expected)| match key.as_str() {
        "type" => match expected {
            Value::String(k) => has_type(value, k),
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).any(|k| has_type(value, k)),
            _ => false,
        },
        "const" => expected == value,
        "enum" => expected.as_array().is_some_and(|options| options.contains(value)),
        "required" => value.as_object().is_none_or(|object| {
            expected.as_array().is_some_and(|names| {
                names.iter().filter_map(Value::as_str).all(|n| object.contains_key(n))
            })
        }),
        other => is_annotation(other),
    })
}

fn has_type(value: &Value, kind: &str) -> bool {
    match (kind, value) {
        ("null", Value::Null)
        | ("boolean", Value::Bool(_))
        | ("string", Value::String(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_))
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    value: f64,
    exclusive: bool,
}

/// The lower or upper bound of a number, in every spelling: `minimum`,
/// `exclusiveMinimum` as a number (draft 6 and later, pydantic's `gt`), or
/// as a boolean beside `minimum` (draft 4). Given both, the tighter.
fn bound(
    schema: &Map<String, Value>,
    inclusive: &str,
    exclusive: &str,
    lower: bool,
) -> Option<Bound> {
    let plain = schema.get(inclusive).and_then(Value::as_f64);
    let strict = match schema.get(exclusive) {
        Some(Value::Bool(true)) => plain.map(|value| Bound { value, exclusive: true }),
        Some(other) => other.as_f64().map(|value| Bound { value, exclusive: true }),
        None => None,
    };
    let plain = plain.map(|value| Bound { value, exclusive: false });
    [plain, strict].into_iter().flatten().reduce(|a, b| tighter(a, b, lower))
}

/// The tighter of two bounds of the same end.
fn tighter(a: Bound, b: Bound, lower: bool) -> Bound {
    let a_is_tighter = if lower { a.value > b.value } else { a.value < b.value };
    if a_is_tighter || (a.value == b.value && a.exclusive) { a } else { b }
}

/// The range of a number across every part: the tightest bounds, or
/// `default` around what is given.
fn range(parts: &Parts<'_>, default: (f64, f64)) -> (Bound, Bound) {
    let low = parts
        .maps
        .iter()
        .filter_map(|m| bound(m, "minimum", "exclusiveMinimum", true))
        .reduce(|a, b| tighter(a, b, true));
    let high = parts
        .maps
        .iter()
        .filter_map(|m| bound(m, "maximum", "exclusiveMaximum", false))
        .reduce(|a, b| tighter(a, b, false));
    let width = default.1 - default.0;
    let low = low.unwrap_or(Bound {
        value: high.map_or(default.0, |h| default.0.min(h.value - width)),
        exclusive: false,
    });
    let high = high.unwrap_or(Bound { value: default.1.max(low.value + width), exclusive: false });
    (low, high)
}

fn describe_range(low: Bound, high: Bound) -> String {
    format!(
        "{}{}, {}{}",
        if low.exclusive { "(" } else { "[" },
        low.value,
        high.value,
        if high.exclusive { ")" } else { "]" }
    )
}

fn integer(parts: &Parts<'_>, rng: &mut impl Rng) -> Result<Value, String> {
    let (low, high) = range(parts, (1.0, 100.0));
    // The least integer allowed above `low`, the greatest below `high`.
    let first = if low.exclusive { low.value.floor() + 1.0 } else { low.value.ceil() };
    let last = if high.exclusive { high.value.ceil() - 1.0 } else { high.value.floor() };
    if first > last {
        return Err(format!("no integer lies in {}", describe_range(low, high)));
    }
    let (first, last) = (first as i64, last as i64);
    let step = parts
        .first("multipleOf")
        .and_then(Value::as_f64)
        .filter(|m| *m >= 1.0 && m.fract() == 0.0)
        .map(|m| m as i64);
    match step {
        Some(m) => {
            let from = first.div_euclid(m) + i64::from(first.rem_euclid(m) != 0);
            let to = last.div_euclid(m);
            if from > to {
                return Err(format!("no multiple of {m} lies in {}", describe_range(low, high)));
            }
            Ok(json!(rng.random_range(from..=to).saturating_mul(m)))
        }
        None => Ok(json!(rng.random_range(first..=last))),
    }
}

fn number(parts: &Parts<'_>, rng: &mut impl Rng) -> Result<Value, String> {
    let (low, high) = range(parts, (0.0, 100.0));
    let inside = |v: f64| {
        (if low.exclusive { v > low.value } else { v >= low.value })
            && (if high.exclusive { v < high.value } else { v <= high.value })
    };
    let (a, b) = (low.value, high.value);
    if a > b || (a == b && (low.exclusive || high.exclusive)) {
        return Err(format!("no number lies in {}", describe_range(low, high)));
    }
    let value = match parts.first("multipleOf").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        Some(m) => {
            let first =
                (a / m).ceil() + if low.exclusive && (a / m).fract() == 0.0 { 1.0 } else { 0.0 };
            let last =
                (b / m).floor() - if high.exclusive && (b / m).fract() == 0.0 { 1.0 } else { 0.0 };
            if first > last {
                return Err(format!("no multiple of {m} lies in {}", describe_range(low, high)));
            }
            let k = (first + ((last - first) * rng.random::<f64>()).round()).clamp(first, last);
            [k * m, round_to_step(k * m, m)].into_iter().rev().find(|v| inside(*v)).unwrap_or(k * m)
        }
        None => {
            let drawn = a + (b - a) * rng.random::<f64>();
            // Two decimals read well; an open bound may need more.
            let rounded = (drawn * 100.0).round() / 100.0;
            [rounded, drawn, (a + b) / 2.0].into_iter().find(|v| inside(*v)).unwrap_or(drawn)
        }
    };
    Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
}

/// `value` rounded to as many decimals as `step` has, so `3 * 0.1` is
/// written `0.3`, not `0.30000000000000004`.
fn round_to_step(value: f64, step: f64) -> f64 {
    let text = step.to_string();
    let decimals = text.split_once('.').map_or(0, |(_, fraction)| fraction.len()).min(15);
    let scale = 10f64.powi(decimals as i32);
    (value * scale).round() / scale
}

/// The value of a well-known `format`; `None` for others.
fn formatted(format: &str, rng: &mut impl Rng) -> Option<String> {
    Some(match format {
        "date-time" => "2026-11-27T10:15:30Z".to_string(),
        "date" => "2026-11-27".to_string(),
        "time" => "10:15:30Z".to_string(),
        "duration" => "P1DT2H".to_string(),
        "email" => "user@example.com".to_string(),
        "hostname" => "example.com".to_string(),
        "ipv4" => "192.0.2.1".to_string(),
        "ipv6" => "2001:db8::1".to_string(),
        "uri" | "url" | "iri" => "https://example.com/resource".to_string(),
        "uuid" => {
            let bits: u128 = rng.random();
            let hex = format!("{bits:032x}");
            format!(
                "{}-{}-4{}-a{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[13..16],
                &hex[17..20],
                &hex[20..32]
            )
        }
        _ => return None,
    })
}

/// A string of `min..=max` characters: by `format` when it has a
/// well-known one, else `sample <name> <n>`, cut or padded with `x` (in
/// linear time).
fn string(format: Option<&str>, rng: &mut impl Rng, name: &str, min: usize, max: usize) -> String {
    let text = match format.and_then(|format| formatted(format, rng)) {
        Some(text) => text,
        None => format!("sample {name} {}", rng.random_range(1..1000)),
    };
    let mut text: String = text.chars().take(max).collect();
    let count = text.chars().count();
    if count < min {
        text.extend(std::iter::repeat_n('x', min - count));
    }
    text
}
