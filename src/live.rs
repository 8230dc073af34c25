//! The config in force, and changing it while sluice runs.
//!
//! A request takes one [`Snapshot`] at its arrival and keeps it, so a reload
//! never changes a request in flight. A reload reads the file, layers the
//! environment, flags and runtime overrides on it, validates the whole, and
//! swaps the snapshot atomically ([`ArcSwap`]). A bad file is logged with its
//! line and column, counted, and never replaces a good config. A setting that
//! needs a restart (the listen addresses) is reported and kept as it was.
//!
//! Triggers: a change in the file's folder ([`watch`]: editors that save by
//! rename, Kubernetes ConfigMap symlink swaps and bind mounts all show there),
//! `SIGHUP`, `POST /reload`, and `PUT`/`DELETE /faults` (runtime overrides).
//!
//! Every snapshot has a version, a counter and a hash of what made it, sent in
//! `x-sluice-config` and logged, so a test can tell which config served it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::admin::metrics::Metrics;
use crate::config::layer::Overrides;
use crate::config::{Config, ConfigSource, ProfilePatch};
use crate::proxy::{ClientError, UpstreamClient};
use crate::route::Router;

/// Which config, and how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// 1 at start, +1 per applied change.
    pub number: u64,
    /// The first 12 hex digits of a SHA-256 over the file, layers and overrides.
    pub hash: String,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.number, self.hash)
    }
}

/// Everything a request needs from the config, fixed for its lifetime.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config.
    pub config: Arc<Config>,
    /// Its routes, with profiles resolved and fresh request counters.
    pub router: Router,
    /// Proxy mode's client, reused across reloads while `[upstream]` is unchanged.
    pub upstream: Option<UpstreamClient>,
    /// Which config this is.
    pub version: Version,
}

/// Where configs come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A fixed config (no file to reload; runtime overrides still apply).
    Fixed(Box<Config>),
    /// A file, with the environment and flags layered over it on every load.
    File {
        /// The file.
        path: PathBuf,
        /// Environment, then flags.
        layers: Vec<Overrides>,
    },
}

/// The result of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A new config is in force.
    Applied(Version),
    /// Nothing changed.
    Unchanged(Version),
    /// Refused; the running config stays. The message says why.
    Rejected(String),
}

/// The live config.
#[derive(Debug)]
pub struct Live {
    current: ArcSwap<Snapshot>,
    source: Source,
    /// The text of the file behind the current snapshot.
    last_good: Mutex<String>,
    /// Runtime overrides (`PUT /faults`), with the JSON they came as.
    runtime: Mutex<Option<(ProfilePatch, String)>>,
    /// One reload at a time.
    lock: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

/// Why sluice could not start with its config.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The upstream's TLS settings are unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl Live {
    /// Loads the first config from `source`.
    ///
    /// # Errors
    /// [`StartError`] when the file or the upstream settings are unusable.
    pub fn start(source: Source, metrics: Arc<Metrics>) -> Result<Self, StartError> {
        let (text, config) = match &source {
            Source::Fixed(config) => (String::new(), (**config).clone()),
            Source::File { path, layers } => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    crate::config::ConfigError::Read { path: path.display().to_string(), source }
                })?;
                (text.clone(), from_file(path, &text, layers)?)
            }
        };
        let hash = fingerprint(&text, &source, None);
        let upstream = config.upstream.as_ref().map(UpstreamClient::new).transpose()?;
        let version = Version { number: 1, hash };
        metrics.set_version(1);
        let snapshot =
            Snapshot { router: Router::new(&config), config: Arc::new(config), upstream, version };
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            source,
            last_good: Mutex::new(text),
            runtime: Mutex::new(None),
            lock: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// The config in force; take it once per request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The file behind the config, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Fixed(_) => None,
        }
    }

    /// The runtime overrides in force.
    pub fn runtime(&self) -> Option<ProfilePatch> {
        self.runtime.lock().ok().and_then(|r| r.as_ref().map(|(patch, _)| patch.clone()))
    }

    /// Reads the file again and applies it if it is valid and different.
    pub async fn reload(&self, why: &str) -> Reload {
        let _one_at_a_time = self.lock.lock().await;
        let text = match &self.source {
            Source::Fixed(_) => String::new(),
            Source::File { path, .. } => match tokio::fs::read_to_string(path).await {
                Ok(text) => text,
                Err(error) => {
                    return self.reject(
                        why,
                        format!("cannot read config file {}: {error}", path.display()),
                    );
                }
            },
        };
        self.rebuild(why, text)
    }

    /// Sets (or with `None` clears) the runtime overrides and applies them on
    /// top of the last good file.
    pub async fn set_runtime(&self, patch: Option<(ProfilePatch, String)>) -> Reload {
        let _one_at_a_time = self.lock.lock().await;
        if let Ok(mut runtime) = self.runtime.lock() {
            *runtime = patch;
        }
        let text = self.last_good.lock().map(|t| t.clone()).unwrap_or_default();
        let why = if self.runtime().is_some() { "PUT /faults" } else { "DELETE /faults" };
        self.rebuild(why, text)
    }

    fn rebuild(&self, why: &str, text: String) -> Reload {
        let current = self.snapshot();
        let runtime = self.runtime.lock().ok().and_then(|r| r.clone());
        let mut config = match &self.source {
            Source::Fixed(config) => (**config).clone(),
            Source::File { path, layers } => match from_file(path, &text, layers) {
                Ok(config) => config,
                Err(error) => return self.reject(why, error.to_string()),
            },
        };
        if let Some((patch, _)) = &runtime {
            config.profile = patch.over(&config.profile);
        }
        if config.listen != current.config.listen {
            warn!(from = %current.config.listen, to = %config.listen, "listen changed: needs a restart; keeping the old address");
            config.listen = current.config.listen;
        }
        if config.admin != current.config.admin {
            warn!("[admin] changed: needs a restart; keeping the old settings");
            config.admin = current.config.admin.clone();
        }
        let hash =
            fingerprint(&text, &self.source, runtime.as_ref().map(|(_, json)| json.as_str()));
        if hash == current.version.hash {
            self.metrics.reload("unchanged", current.version.number);
            return Reload::Unchanged(current.version.clone());
        }
        let upstream = if config.upstream == current.config.upstream {
            current.upstream.clone()
        } else {
            match config.upstream.as_ref().map(UpstreamClient::new).transpose() {
                Ok(upstream) => upstream,
                Err(error) => return self.reject(why, error.to_string()),
            }
        };
        let version = Version { number: current.version.number + 1, hash };
        let snapshot = Snapshot {
            router: Router::new(&config),
            config: Arc::new(config),
            upstream,
            version: version.clone(),
        };
        self.current.store(Arc::new(snapshot));
        if let Ok(mut last) = self.last_good.lock() {
            *last = text;
        }
        self.metrics.reload("applied", version.number);
        info!(%version, why, "config applied");
        Reload::Applied(version)
    }

    fn reject(&self, why: &str, error: String) -> Reload {
        let current = self.snapshot();
        self.metrics.reload("rejected", current.version.number);
        warn!(%error, why, version = %current.version, "config rejected; the running config stays");
        Reload::Rejected(error)
    }
}

fn from_file(
    path: &Path,
    text: &str,
    layers: &[Overrides],
) -> Result<Config, crate::config::ConfigError> {
    let mut config = Config::from_toml_str(text, &path.display().to_string())?;
    config.source = ConfigSource::File(path.to_path_buf());
    for layer in layers {
        layer.apply(&mut config);
    }
    Ok(config)
}

fn fingerprint(text: &str, source: &Source, runtime: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    let layers = match source {
        Source::Fixed(config) => format!("{config:?}"),
        Source::File { layers, .. } => format!("{layers:?}"),
    };
    hasher.update(layers.as_bytes());
    hasher.update(runtime.unwrap_or_default().as_bytes());
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// How long the watcher waits for a burst of file events to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the config file's folder and reloads on every change there. Keep
/// the returned watcher alive; dropping it stops watching.
///
/// # Errors
/// notify's error when the folder cannot be watched.
pub fn watch(
    live: Arc<Live>,
) -> notify::Result<Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>> {
    let Some(path) = live.path().map(Path::to_path_buf) else {
        return Ok(None);
    };
    // Bounded(1): a burst of events queues at most one reload, which reads the newest file.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        if result.is_ok_and(|events| !events.is_empty()) {
            let _ = tx.try_send(());
        }
    })?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    debouncer.watch(folder, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            live.reload("file changed").await;
        }
    });
    Ok(Some(debouncer))
}
