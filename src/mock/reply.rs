//! The mock's answer to one turn, decided up front and dialect-neutral
//! ([`Reply::generate`]): text, structured output or tool calls, with their
//! output already cut into the fragments one delta each carries, a stop
//! reason, and usage. Each API's module encodes it (`mock::anthropic`).

use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::request::{InvalidRequest, Shown, ToolChoice, TurnRequest};
use super::schema;
use super::text::{LazyTokens, Pieces};
use crate::config::{Thinking, ToolPick, ToolUse};
use crate::shape::rng::random_id;

/// Why the reply stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Finished its answer.
    EndTurn,
    /// Hit the request's `max_tokens`.
    MaxTokens,
    /// Called a tool.
    ToolUse,
}

/// A content block of the reply, with its output already cut into the
/// fragments its deltas will carry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// Text, one token per delta, made as the stream is pulled.
    Text {
        /// The tokens; concatenated they are the text.
        tokens: LazyTokens,
        /// The search result it cites, after a web search (boxed: most text
        /// cites nothing, and a block is moved with every reply).
        citation: Option<Box<Citation>>,
    },
    /// Structured output (`output_config.format`): JSON made from the
    /// requested schema, streamed as text deltas, as the real API does.
    Json {
        /// The JSON, compact, cut into the fragments its deltas carry (held
        /// once: the whole text is the fragments' string).
        fragments: Pieces,
    },
    /// A call of a client tool.
    ToolUse {
        /// A random id; each API writes it with its own prefix (`toolu_`, `call_`).
        id: String,
        /// The tool's name.
        name: String,
        /// The input, made from the tool's schema.
        input: Value,
        /// `input` as compact JSON, cut into `input_json_delta` fragments.
        fragments: Pieces,
    },
}

/// A web search the provider runs before it answers (Anthropic's
/// `web_search` server tool): a call whose input streams as a client tool's
/// does, then its results, whole.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebSearch {
    /// A random id (`srvtoolu_` on the wire).
    pub(crate) id: String,
    /// The tool's name (`web_search`).
    pub(crate) name: String,
    /// `{"query": ...}`.
    pub(crate) input: Value,
    /// `input` as compact JSON, cut into `input_json_delta` fragments.
    pub(crate) fragments: Pieces,
    /// The pages found.
    pub(crate) results: Vec<SearchResult>,
}

/// A page a web search found (made up, under `example.com`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchResult {
    /// Its URL.
    pub(crate) url: String,
    /// Its title.
    pub(crate) title: String,
}

/// Where a text's claim comes from: a search result and the words cited.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Citation {
    /// The page.
    pub(crate) source: SearchResult,
    /// The words of the page the text relies on.
    pub(crate) cited_text: String,
}

impl Block {
    /// How many deltas it streams.
    pub(crate) fn len(&self) -> usize {
        match self {
            Block::Text { tokens, .. } => tokens.len(),
            Block::Json { fragments, .. } => fragments.len(),
            Block::ToolUse { fragments, .. } => fragments.len(),
        }
    }
}

/// The thinking before the answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Thought {
    /// The thinking text, one token per delta; its length is the thinking's
    /// token count however it is shown.
    pub(crate) tokens: LazyTokens,
    /// How the client sees it.
    pub(crate) shown: Shown,
}

impl Thought {
    /// Its tokens.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Tokens thought but not streamed: their time goes before the first
    /// visible output.
    pub(crate) fn unseen(&self) -> usize {
        if self.shown == Shown::Streamed { 0 } else { self.len() }
    }
}

/// The whole answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// A random id; each API writes it with its own prefix (`msg_`, `chatcmpl-`).
    pub(crate) id: String,
    /// Echoed from the request.
    pub(crate) model: String,
    /// `usage.input_tokens`.
    pub(crate) input_tokens: u64,
    /// Thinking before the blocks, if the request asked for it.
    /// (Boxed, as the search: most replies have neither, and an open
    /// stream holds its reply.)
    pub(crate) thought: Option<Box<Thought>>,
    /// A web search after the thinking and before the blocks.
    pub(crate) search: Option<Box<WebSearch>>,
    /// The visible content blocks, in order.
    pub(crate) blocks: Vec<Block>,
    /// Why it stopped.
    pub(crate) stop_reason: StopReason,
}

impl Reply {
    /// Decides the answer: calls of the request's tools when `tool_choice`
    /// and `tool_use` say so, else JSON from the requested output schema
    /// (structured output), else `tokens_per_response` tokens of text.
    /// `any` and a named tool always call; `auto` calls unless the
    /// conversation already ends with `tool_use.max_rounds` tool rounds, and
    /// then with `tool_use.probability`. Which tool each of the
    /// `tool_use.parallel_calls` calls uses is `tool_use.choice`. Output is
    /// capped at `max_tokens`. With the default `tool_use`, nothing more is
    /// drawn from `rng` than before these knobs existed, so seeded runs
    /// replay the same bytes.
    ///
    /// When the request asks for reasoning this turn, a [`Thought`] of
    /// `thinking.tokens` × the effort's share, at most the request's
    /// `budget_tokens`, comes first; the visible output gets what is left of
    /// `max_tokens` (at least one token).
    ///
    /// # Errors
    /// [`InvalidRequest`] naming `tools.N.input_schema` when a chosen tool's
    /// schema asks for an input past the [`schema::Budget`] or cannot be
    /// satisfied.
    pub(crate) fn generate(
        request: &TurnRequest,
        tokens_per_response: u32,
        tool_use: &ToolUse,
        thinking: &Thinking,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self, InvalidRequest> {
        let calls = tool_calls(request, tool_use, rng);
        let max_tokens = usize::try_from(request.max_tokens).unwrap_or(usize::MAX);
        let id = random_id(rng);
        // Drawn after the id, so a request without reasoning draws as before.
        let thought = request.reasoning.filter(|asked| asked.this_turn).map(|asked| {
            let wanted = (f64::from(thinking.tokens) * asked.effort.share()).round();
            // At most 100,000 × 1.0: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mut count = wanted as usize;
            if let Some(budget) = asked.budget_tokens {
                count = count.min(usize::try_from(budget).unwrap_or(usize::MAX));
            }
            count = count.min(max_tokens.saturating_sub(1));
            let shown = match asked.shown {
                Shown::Streamed if thinking.redacted => Shown::Opaque,
                Shown::Hidden if thinking.reasoning_content => Shown::Streamed,
                shown => shown,
            };
            Box::new(Thought { tokens: LazyTokens::new(count, rng), shown })
        });
        let max_tokens =
            max_tokens.saturating_sub(thought.as_deref().map_or(0, Thought::len)).max(1);
        let mut search = None;
        let (blocks, stop_reason) = if let (true, Some(output)) =
            (calls.is_empty(), &request.output_schema)
        {
            let value = schema::sample(&output.schema, rng)
                .map_err(|error| InvalidRequest(format!("{}: {error}", output.field)))?;
            let fragments = fragments(&value.to_string(), max_tokens, rng);
            (vec![Block::Json { fragments }], StopReason::EndTurn)
        } else if calls.is_empty() {
            let wanted = tokens_per_response as usize;
            let count = wanted.min(max_tokens);
            let stop = if count < wanted { StopReason::MaxTokens } else { StopReason::EndTurn };
            search = request
                .web_search
                .as_ref()
                .filter(|_| draw(tool_use.web_search, rng))
                .map(|name| Box::new(web_search(name, rng)));
            let citation = search.as_ref().and_then(|search| search.results.first()).cloned();
            let citation = citation.map(|source| {
                Box::new(Citation { source, cited_text: LazyTokens::new(12, rng).concat() })
            });
            let mut tokens = LazyTokens::new(count, rng);
            // A stop sequence ends the turn as its end would: not a cut by max_tokens.
            let stop = if tokens.cut_at_stop(&request.stop) { StopReason::EndTurn } else { stop };
            (vec![Block::Text { tokens, citation }], stop)
        } else {
            // Each call's input gets its share of max_tokens.
            let share = (max_tokens / calls.len()).max(1);
            let mut blocks = Vec::with_capacity(calls.len());
            for index in calls {
                let tool = &request.tools[index];
                let input = schema::sample(&tool.input_schema, rng).map_err(|error| {
                    InvalidRequest(format!("tools.{index}.input_schema: {error}"))
                })?;
                let fragments = fragments(&input.to_string(), share, rng);
                blocks.push(Block::ToolUse {
                    id: random_id(rng),
                    name: tool.name.clone(),
                    input,
                    fragments,
                });
            }
            (blocks, StopReason::ToolUse)
        };
        Ok(Self {
            id,
            model: request.model.clone(),
            input_tokens: request.input_tokens,
            thought,
            search,
            blocks,
            stop_reason,
        })
    }

    /// Output tokens, thinking and a search's query included: one per delta.
    pub(crate) fn output_tokens(&self) -> usize {
        let query = self.search.as_ref().map_or(0, |search| search.fragments.len());
        self.thinking_tokens() + query + self.blocks.iter().map(Block::len).sum::<usize>()
    }

    /// Thinking tokens (OpenAI's `reasoning_tokens`).
    pub(crate) fn thinking_tokens(&self) -> usize {
        self.thought.as_deref().map_or(0, Thought::len)
    }
}

/// Whether an event of `probability` happens: drawn only when it can go
/// either way, so 0 and 1 take nothing from `rng` and seeded runs replay.
fn draw(probability: f64, rng: &mut ChaCha8Rng) -> bool {
    probability >= 1.0 || (probability > 0.0 && rng.random_bool(probability))
}

/// A web search by the server tool `name`: its call, with a query, and its
/// three results.
fn web_search(name: &str, rng: &mut ChaCha8Rng) -> WebSearch {
    let id = random_id(rng);
    let query = LazyTokens::new(4, rng).concat();
    let query = query.trim_end_matches('.').to_string();
    let input = serde_json::json!({"query": query});
    let fragments = fragments(&input.to_string(), usize::MAX, rng);
    let results = (1..=3)
        .map(|n| SearchResult {
            url: format!("https://example.com/sluice/{id}/{n}"),
            title: LazyTokens::new(5, rng).concat(),
        })
        .collect();
    WebSearch { id, name: name.to_string(), input, fragments, results }
}

/// The indexes of the tools this turn calls, in order; empty for a text
/// answer.
fn tool_calls(request: &TurnRequest, tool_use: &ToolUse, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let tools = &request.tools;
    if tools.is_empty() {
        return Vec::new();
    }
    let named = |pattern: &glob::Pattern| -> Vec<usize> {
        (0..tools.len()).filter(|&i| pattern.matches(&tools[i].name)).collect()
    };
    // The tools a call may use; `None` for all of them.
    let candidates: Option<Vec<usize>> = match &request.tool_choice {
        ToolChoice::None => return Vec::new(),
        ToolChoice::Tool(name) => {
            return tools.iter().position(|t| &t.name == name).into_iter().collect();
        }
        ToolChoice::Any => match &tool_use.choice {
            // `any` must call a tool: with no name matching, any will do.
            ToolPick::Named(pattern) => Some(named(pattern)).filter(|c| !c.is_empty()),
            _ => None,
        },
        ToolChoice::Auto => {
            if request.tool_rounds >= tool_use.max_rounds {
                return Vec::new();
            }
            // Drawn only when it can say no, so the default draws nothing.
            if !draw(tool_use.probability, rng) {
                return Vec::new();
            }
            match &tool_use.choice {
                ToolPick::Named(pattern) => {
                    let matching = named(pattern);
                    if matching.is_empty() {
                        return Vec::new();
                    }
                    Some(matching)
                }
                _ => None,
            }
        }
    };
    let count = if request.disable_parallel_tool_use { 1 } else { tool_use.parallel_calls.max(1) };
    (0..count)
        .map(|_| match (&candidates, &tool_use.choice) {
            (Some(only), _) if only.len() == 1 => only[0],
            (Some(some), _) => some[rng.random_range(0..some.len())],
            (None, ToolPick::First) => 0,
            (None, _) => rng.random_range(0..tools.len()),
        })
        .collect()
}

/// Cuts `json` into fragments of 3 to 12 characters, as the real API cuts
/// `input_json_delta`s anywhere (inside strings and escapes too), but into no
/// more than `max` fragments, so one fragment is one output token.
fn fragments(json: &str, max: usize, rng: &mut impl Rng) -> Pieces {
    // Cut on char boundaries: byte offsets of every char, and the end.
    let bounds: Vec<usize> = json.char_indices().map(|(i, _)| i).chain([json.len()]).collect();
    let chars = bounds.len() - 1;
    let cut = |sizes: &mut dyn FnMut() -> usize| {
        let mut out = Pieces::with_capacity(json.len(), chars / 3 + 1);
        let mut at = 0;
        while at < chars {
            let end = (at + sizes()).min(chars);
            out.push(&json[bounds[at]..bounds[end]]);
            at = end;
        }
        out
    };
    let out = cut(&mut || rng.random_range(3..=12));
    if out.len() > max.max(1) {
        let size = chars.div_ceil(max.max(1));
        return cut(&mut || size);
    }
    out
}
