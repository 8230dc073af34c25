//! The layers of a config, and the one function that stacks them
//! ([`build`]): defaults < file < environment < flags < the timeline's
//! phase in force < runtime overrides.
//! Start-up, every reload and `sluice check` all build their config with it.
//!
//! The environment variables are the Node mock's (`PORT`, `FIRST_TOKEN_DELAY`,
//! `TOKEN_INTERVAL`, `TOKENS_PER_RESPONSE`, `TOOL_CALL_DELAY`, `ERROR_RATE`),
//! with its conventions: bare numbers are milliseconds, and `ERROR_RATE` is a
//! fraction (`0.005`; `0.5%` is accepted too). `SLUICE_SEED` sets the seed and
//! `SLUICE_UPSTREAM` the proxy's upstream URL.
//! The environment is read through a lookup function so tests never touch the
//! process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{
    Config, ConfigError, ConfigSource, Position, ProfilePatch, Record, Replay, ReplayFallback,
    ReplayMatch, ReplayTiming, Upstream, value,
};
use crate::shape::{Delay, Length};

/// Values that override the file. Each layer (environment, flags) yields one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Whole listen address (`--listen`).
    pub listen: Option<SocketAddr>,
    /// Port only, keeping the host (`PORT`).
    pub port: Option<u16>,
    /// Knobs of the default profile, laid over it as a named profile or the
    /// runtime overrides are (`ProfilePatch::over`).
    pub profile: ProfilePatch,
    /// `seed`.
    pub seed: Option<u64>,
    /// `[upstream] url` (`SLUICE_UPSTREAM`, `--upstream`).
    pub upstream: Option<hyper::Uri>,
    /// `[admin] listen` (`SLUICE_ADMIN_LISTEN`, `--admin-listen`); also enables it.
    pub admin_listen: Option<SocketAddr>,
    /// Serve the mock whatever the file says (`sluice mock`).
    pub mock_only: bool,
    /// `[record] dir` (`--record`); records with no redaction beyond the credentials
    /// unless the file's `[record]` lists more.
    pub record: Option<PathBuf>,
    /// `[replay] dir` (`--replay`); the file's other `[replay]` keys, or their defaults.
    pub replay: Option<PathBuf>,
    /// `replica` (`SLUICE_REPLICA`, `--replica`).
    pub replica: Option<String>,
    /// `epoch` (`SLUICE_EPOCH`, `--epoch`).
    pub epoch: Option<std::time::SystemTime>,
    /// `[fleet] store` (`SLUICE_FLEET_STORE`); also turns the fleet on.
    pub fleet_store: Option<super::StoreUrl>,
}

const PORT_FORM: &str = "a port number from 0 to 65535";
const SEED_FORM: &str = "a whole number from 0 to 18446744073709551615";

impl Overrides {
    /// Reads the environment through `lookup`. Unset and empty variables are
    /// ignored.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable, its value and the accepted form.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str, key: &'static str| EnvVar {
            name,
            key,
            value: lookup(name).filter(|v| !v.trim().is_empty()),
        };
        Ok(Self {
            listen: None,
            port: get("PORT", "port").parse(|s| s.trim().parse().map_err(|_| PORT_FORM))?,
            profile: ProfilePatch {
                first_token_delay: get("FIRST_TOKEN_DELAY", "first_token_delay")
                    .parse(env_delay)?,
                token_interval: get("TOKEN_INTERVAL", "token_interval").parse(env_delay)?,
                tool_call_delay: get("TOOL_CALL_DELAY", "tool_call_delay").parse(env_delay)?,
                overload: None,
                tokens_per_response: get("TOKENS_PER_RESPONSE", "tokens_per_response").parse(
                    |s| {
                        s.trim()
                            .parse::<i64>()
                            .map_err(|_| "a whole number from 1 to 100000")
                            .and_then(super::raw::tokens_per_response)
                            .map(Length::Fixed)
                    },
                )?,
                error_rate: get("ERROR_RATE", "error_rate").parse(value::rate_text)?,
                faults: None,
                tool_use: super::ToolUsePatch::default(),
                rate_limits: None,
                thinking: super::ThinkingPatch::default(),
                capacity: None,
            },
            seed: get("SLUICE_SEED", "seed").parse(|s| s.trim().parse().map_err(|_| SEED_FORM))?,
            upstream: get("SLUICE_UPSTREAM", "upstream.url").parse(value::upstream_url)?,
            admin_listen: get("SLUICE_ADMIN_LISTEN", "admin.listen").parse(value::listen)?,
            mock_only: false,
            record: None,
            replay: None,
            replica: get("SLUICE_REPLICA", "replica").parse(value::replica)?,
            epoch: get("SLUICE_EPOCH", "epoch").parse(value::epoch)?,
            fleet_store: get("SLUICE_FLEET_STORE", "fleet.store").parse(value::store_url)?,
        })
    }

    /// Writes every value present into `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(port) = self.port {
            config.listen.set_port(port);
        }
        config.profile = self.profile.over(&config.profile);
        if let Some(seed) = self.seed {
            config.seed = Some(seed);
        }
        if let Some(url) = &self.upstream {
            match &mut config.upstream {
                Some(upstream) => upstream.url = url.clone(),
                None => config.upstream = Some(Upstream::new(url.clone())),
            }
        }
        if let Some(listen) = self.admin_listen {
            config.admin.listen = listen;
            config.admin.enabled = true;
        }
        if self.mock_only {
            config.upstream = None;
        }
        if let Some(replica) = &self.replica {
            config.replica = Some(replica.clone());
        }
        if let Some(epoch) = self.epoch {
            config.epoch = Some(epoch);
        }
        if let Some(store) = &self.fleet_store {
            match &mut config.fleet {
                Some(fleet) => fleet.store = Some(store.clone()),
                None => config.fleet = Some(super::Fleet::new(store.clone())),
            }
        }
        if let Some(dir) = &self.record {
            match &mut config.record {
                Some(record) => record.dir = dir.clone(),
                None => {
                    config.record = Some(Record {
                        dir: dir.clone(),
                        redact_headers: Vec::new(),
                        redact_fields: Vec::new(),
                        keep: Vec::new(),
                    });
                }
            }
        }
        if let Some(dir) = &self.replay {
            match &mut config.replay {
                Some(replay) => replay.dir = dir.clone(),
                None => {
                    config.replay = Some(Replay {
                        dir: dir.clone(),
                        matching: ReplayMatch::LastUserMessage,
                        timing: ReplayTiming::Recorded,
                        fallback: ReplayFallback::NotFound,
                        ignore: Vec::new(),
                    });
                }
            }
        }
    }
}

/// What the layers go over.
#[derive(Debug, Clone, Copy)]
pub enum Base<'a> {
    /// The built-in defaults (no file).
    Defaults,
    /// A file's text; `path` names it in errors and in the config's source.
    File {
        /// The file.
        path: &'a Path,
        /// Its contents.
        text: &'a str,
    },
    /// A config made elsewhere, its own layers already applied (tests, `run`).
    Given(&'a Config),
}

/// The config of `base` with `layers` (the environment, then the flags),
/// the `[timeline]` phase at `phase` (`docs/timeline.md`), and the
/// `runtime` overrides (`PUT /faults`) over it, validated. The runtime
/// overrides come last: an operator's call wins over the story told in the
/// file.
///
/// # Errors
/// [`ConfigError`] when the file is not valid TOML or a value is out of range.
pub fn build(
    base: Base<'_>,
    layers: &[Overrides],
    phase: Option<Position>,
    runtime: Option<&ProfilePatch>,
) -> Result<Config, ConfigError> {
    let mut config = match base {
        Base::Defaults => Config::default(),
        Base::File { path, text } => {
            let mut config = Config::from_toml_str(text, &path.display().to_string())?;
            config.source = ConfigSource::File(path.to_path_buf());
            config
        }
        Base::Given(config) => config.clone(),
    };
    for layer in layers {
        layer.apply(&mut config);
    }
    if let (Some(timeline), Some(phase)) = (config.timeline.clone(), phase) {
        timeline.apply(&mut config, phase);
    }
    if let Some(runtime) = runtime {
        config.profile = runtime.over(&config.profile);
    }
    Ok(config)
}

/// A fixed delay from the environment (bare numbers are milliseconds).
fn env_delay(text: &str) -> Result<Delay, &'static str> {
    value::env_duration(text).map(Delay::Fixed)
}

struct EnvVar {
    name: &'static str,
    key: &'static str,
    value: Option<String>,
}

impl EnvVar {
    fn parse<T>(
        self,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(text) = self.value else {
            return Ok(None);
        };
        parse(&text).map(Some).map_err(|expected| ConfigError::Invalid {
            origin: format!("environment variable {}", self.name),
            key: self.key.to_string(),
            value: format!("{text:?}"),
            expected: expected.to_string(),
        })
    }
}
