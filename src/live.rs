//! The config in force, and changing it while sluice runs.
//!
//! A request takes one `Snapshot` at its arrival and keeps it, so a reload
//! never changes a request in flight. A reload reads the file, layers the
//! environment, flags and runtime overrides on it, validates the whole, and
//! swaps the snapshot atomically ([`ArcSwap`]). A bad file is logged with its
//! line and column, counted, and never replaces a good config. A setting that
//! needs a restart (the listen addresses, `[admin]`, `[tls]`) is reported and kept as it was.
//!
//! Triggers: a change of the file's contents (`watch`: inotify on the
//! file and its folder, or polling with `[watch] poll`),
//! `SIGHUP`, `POST /reload`, and `PUT`/`DELETE /faults` (runtime overrides).
//!
//! Every snapshot has a version, a counter and a hash of what made it, sent in
//! `x-sluice-config` and logged, so a test can tell which config served it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::cassette::replay::{Library, ReplayError};
use crate::config::layer::{self, Base, Overrides};
use crate::config::{Config, Position, ProfilePatch};
use crate::metrics::Metrics;
use crate::proxy::{ClientError, UpstreamClient};
use crate::route::Router;

/// Which config, and how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    /// 1 at start, +1 per applied change.
    pub number: u64,
    /// The first 12 hex digits of a SHA-256 over the file, layers and overrides.
    pub hash: String,
    /// `NUMBER-HASH`, made once: every response carries it
    /// (`x-sluice-config-version`), and formatting it per request was 1 % of
    /// the proxy's CPU.
    label: hyper::header::HeaderValue,
}

impl Version {
    fn new(number: u64, hash: String) -> Self {
        let label = hyper::header::HeaderValue::from_str(&format!("{number}-{hash}"))
            .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("unknown"));
        Self { number, hash, label }
    }

    /// `NUMBER-HASH`, as a header value.
    pub(crate) fn label(&self) -> &hyper::header::HeaderValue {
        &self.label
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.number, self.hash)
    }
}

/// Everything a request needs from the config, fixed for its lifetime.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The validated config.
    pub config: Arc<Config>,
    /// Its routes, with profiles resolved and fresh request counters.
    pub router: Router,
    /// Proxy mode's client, reused across reloads while `[upstream]` is unchanged.
    pub upstream: Option<UpstreamClient>,
    /// Which config this is.
    pub version: Version,
    /// `[replay]`'s cassettes, read when the folder or `[replay]` changed.
    pub(crate) replay: Option<Arc<Library>>,
    /// The listing of `[replay]`'s folder when its cassettes were read.
    replay_listing: String,
    /// Where `[timeline]` stands in this config.
    pub(crate) position: Option<Position>,
    /// Its phase's name for `x-sluice-phase` (`none` before the first
    /// phase); `None` without a timeline.
    pub(crate) phase: Option<Arc<str>>,
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

/// A source's first config, and the file text it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's text (empty for a fixed config).
    pub text: String,
    /// The config, every layer applied.
    pub config: Config,
}

impl Source {
    /// Reads the file, if any, and builds the config from it and its layers
    /// ([`layer::build`]); start-up and `sluice check` use it.
    ///
    /// # Errors
    /// [`ConfigError`](crate::config::ConfigError) naming the file, and for
    /// a bad value its line and column.
    pub fn load(&self) -> Result<Loaded, crate::config::ConfigError> {
        match self {
            Self::Fixed(config) => Ok(Loaded { text: String::new(), config: (**config).clone() }),
            Self::File { path, layers } => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    crate::config::ConfigError::Read { path: path.display().to_string(), source }
                })?;
                let config = layer::build(Base::File { path, text: &text }, layers, None, None)?;
                Ok(Loaded { text, config })
            }
        }
    }

    /// The config of `text` (the file's contents) with every layer, the
    /// timeline's `phase` and the `runtime` overrides.
    fn build(
        &self,
        text: &str,
        phase: Option<Position>,
        runtime: Option<&ProfilePatch>,
    ) -> Result<Config, crate::config::ConfigError> {
        match self {
            Self::Fixed(config) => layer::build(Base::Given(config), &[], phase, runtime),
            Self::File { path, layers } => {
                layer::build(Base::File { path, text }, layers, phase, runtime)
            }
        }
    }
}

/// The result of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reload {
    /// A new config is in force.
    Applied(Version),
    /// Nothing changed.
    Unchanged(Version),
    /// Refused; the running config stays. The message says why.
    Rejected(String),
}

/// The live config.
#[derive(Debug)]
pub(crate) struct Live {
    current: ArcSwap<Snapshot>,
    source: Source,
    /// The text of the file behind the current snapshot.
    last_good: Mutex<String>,
    /// Runtime overrides (`PUT /faults`), with the JSON they came as.
    runtime: Mutex<Option<(ProfilePatch, String)>>,
    /// Where `[timeline]` stands (the clock in `src/timeline.rs` moves it).
    position: Mutex<Option<Position>>,
    /// Told each time a config is applied (the timeline's clock re-reads it).
    applied: Arc<tokio::sync::Notify>,
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
    /// The API listener's TLS (`[tls]`) cannot start.
    #[error(transparent)]
    Tls(#[from] crate::listener::tls::TlsError),
    /// `[replay]`'s cassettes cannot be served.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// `[record]`'s folder cannot be written.
    #[error(transparent)]
    Record(#[from] crate::cassette::record::RecordError),
    /// `[fleet]`'s store cannot be used.
    #[error("[fleet] store: {0}")]
    Fleet(String),
}

impl Live {
    /// Serves `first`, the config `source` loaded at start ([`Source::load`]).
    ///
    /// # Errors
    /// [`StartError`] when the upstream settings are unusable.
    pub fn start(source: Source, first: Loaded, metrics: Arc<Metrics>) -> Result<Self, StartError> {
        let Loaded { text, config } = first;
        let replay_listing = listing(config.replay.as_ref().map(|replay| replay.dir.as_path()));
        let hash = fingerprint(&text, &source, None, None, &replay_listing);
        let upstream = config.upstream.as_ref().map(UpstreamClient::new).transpose()?;
        let replay = config.replay.as_ref().map(Library::load).transpose()?.map(Arc::new);
        let version = Version::new(1, hash);
        metrics.set_version(1);
        let snapshot = Snapshot {
            router: Router::new(&config),
            config: Arc::new(config),
            upstream,
            version,
            replay,
            replay_listing,
            position: None,
            phase: None,
        };
        let snapshot = Snapshot { phase: phase_name(&snapshot.config, None), ..snapshot };
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            source,
            last_good: Mutex::new(text),
            runtime: Mutex::new(None),
            position: Mutex::new(None),
            applied: Arc::new(tokio::sync::Notify::new()),
            lock: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// The config in force; take it once per request.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The file behind the config, if any.
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Fixed(_) => None,
        }
    }

    /// The runtime overrides in force.
    pub(crate) fn runtime(&self) -> Option<ProfilePatch> {
        self.runtime.lock().ok().and_then(|r| r.as_ref().map(|(patch, _)| patch.clone()))
    }

    /// Applies `text` as the file's new contents, if it is valid and different.
    pub(crate) async fn reload_text(&self, why: &str, text: String) -> Reload {
        let _one_at_a_time = self.lock.lock().await;
        self.rebuild(why, text).await
    }

    /// Told each time a config is applied.
    pub(crate) fn applied(&self) -> &Arc<tokio::sync::Notify> {
        &self.applied
    }

    /// Moves `[timeline]` to `position` (`None`: the baseline) over the last
    /// good file. A step of a ramp keeps the routes' request counts; a new
    /// phase starts them again, as a reload does, so that its scheduled
    /// faults count from its start.
    pub(crate) async fn set_position(&self, position: Option<Position>) -> Reload {
        let _one_at_a_time = self.lock.lock().await;
        if let Ok(mut current) = self.position.lock() {
            *current = position;
        }
        let text = self.last_good.lock().map(|t| t.clone()).unwrap_or_default();
        self.rebuild("timeline", text).await
    }

    /// Reads the file again and applies it if it is valid and different.
    pub(crate) async fn reload(&self, why: &str) -> Reload {
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
        self.rebuild(why, text).await
    }

    /// The text of the runtime overrides (`PUT /faults`), if set.
    pub(crate) fn runtime_text(&self) -> Option<String> {
        self.runtime.lock().ok().and_then(|r| r.as_ref().map(|(_, text)| text.clone()))
    }

    /// Sets (or with `None` clears) the runtime overrides and applies them on
    /// top of the last good file.
    pub(crate) async fn set_runtime(&self, patch: Option<(ProfilePatch, String)>) -> Reload {
        let _one_at_a_time = self.lock.lock().await;
        if let Ok(mut runtime) = self.runtime.lock() {
            *runtime = patch;
        }
        let text = self.last_good.lock().map(|t| t.clone()).unwrap_or_default();
        let why = if self.runtime().is_some() { "PUT /faults" } else { "DELETE /faults" };
        self.rebuild(why, text).await
    }

    /// Builds and applies a config. The replay folder is listed, and its
    /// cassettes read only when the listing or `[replay]` changed, on a
    /// blocking thread: live control never waits on the library.
    async fn rebuild(&self, why: &str, text: String) -> Reload {
        let current = self.snapshot();
        let runtime = self.runtime.lock().ok().and_then(|r| r.clone());
        let position = self.position.lock().ok().and_then(|p| *p);
        let built = self.source.build(&text, position, runtime.as_ref().map(|(patch, _)| patch));
        let mut config = match built {
            Ok(config) => config,
            Err(error) => return self.reject(why, error.to_string()),
        };
        if config.listen != current.config.listen {
            warn!(from = %current.config.listen, to = %config.listen, "listen changed: needs a restart; keeping the old address");
            config.listen = current.config.listen;
        }
        if config.admin != current.config.admin {
            warn!("[admin] changed: needs a restart; keeping the old settings");
            config.admin = current.config.admin.clone();
        }
        if config.tls != current.config.tls {
            // The certificate files themselves are watched and reloaded.
            warn!("[tls] changed: needs a restart; keeping the old settings");
            config.tls = current.config.tls.clone();
        }
        if config.fleet != current.config.fleet {
            warn!("[fleet] changed: needs a restart; keeping the old settings");
            config.fleet = current.config.fleet.clone();
        }
        if config.record != current.config.record {
            warn!("[record] changed: needs a restart; keeping the old settings");
            config.record = current.config.record.clone();
        }
        // Listed on a blocking thread when there is a folder; without one
        // the rebuild never leaves this task (a timeline's step is applied
        // in the instant it is due).
        let replay_listing = match config.replay.as_ref().map(|replay| replay.dir.clone()) {
            Some(dir) => {
                tokio::task::spawn_blocking(move || listing(Some(&dir))).await.unwrap_or_default()
            }
            None => String::new(),
        };
        let hash = fingerprint(
            &text,
            &self.source,
            runtime.as_ref().map(|(_, json)| json.as_str()),
            position,
            &replay_listing,
        );
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
        let same_library =
            config.replay == current.config.replay && replay_listing == current.replay_listing;
        let replay = match &config.replay {
            None => None,
            Some(_) if same_library => current.replay.clone(),
            Some(replay) => {
                let replay = replay.clone();
                match tokio::task::spawn_blocking(move || Library::load(&replay)).await {
                    Ok(Ok(library)) => Some(Arc::new(library)),
                    Ok(Err(error)) => return self.reject(why, error.to_string()),
                    Err(error) => return self.reject(why, error.to_string()),
                }
            }
        };
        let version = Version::new(current.version.number + 1, hash);
        let router = Router::new(&config);
        // A ramp's step within one phase goes on counting the routes' requests.
        let ramp_step = why == "timeline"
            && current.position.map(|p| p.phase) == position.map(|p| p.phase)
            && config.timeline == current.config.timeline;
        if ramp_step {
            router.carry_counts(&current.router);
        }
        let snapshot = Snapshot {
            router,
            phase: phase_name(&config, position),
            config: Arc::new(config),
            upstream,
            version: version.clone(),
            replay,
            replay_listing,
            position,
        };
        let phase = snapshot.phase.clone();
        self.current.store(Arc::new(snapshot));
        if let Ok(mut last) = self.last_good.lock() {
            *last = text;
        }
        self.metrics.reload("applied", version.number);
        if ramp_step {
            debug!(%version, why, phase = phase.as_deref(), "config applied");
        } else {
            info!(%version, why, phase = phase.as_deref(), "config applied");
        }
        self.applied.notify_one();
        Reload::Applied(version)
    }

    fn reject(&self, why: &str, error: String) -> Reload {
        let current = self.snapshot();
        self.metrics.reload("rejected", current.version.number);
        warn!(%error, why, version = %current.version, "config rejected; the running config stays");
        Reload::Rejected(error)
    }
}

/// The name of `config`'s timeline phase at `position`, `none` before the
/// first; `None` without a timeline.
fn phase_name(config: &Config, position: Option<Position>) -> Option<Arc<str>> {
    let timeline = config.timeline.as_ref()?;
    Some(Arc::from(position.and_then(|p| timeline.name(p)).unwrap_or("none")))
}

/// The listing of `[replay]`'s folder (names, sizes, modification times),
/// empty without `[replay]`.
fn listing(dir: Option<&Path>) -> String {
    dir.map(crate::cassette::replay::fingerprint).unwrap_or_default()
}

/// Tells configs apart: the file's text, the layers over it, the runtime
/// overrides, and the listing of `[replay]`'s folder (so a reload picks up
/// new or changed cassettes). Not the replica's name: replicas serving the
/// same config name the same version.
fn fingerprint(
    text: &str,
    source: &Source,
    runtime: Option<&str>,
    position: Option<Position>,
    listing: &str,
) -> String {
    let mut hasher = Sha256::new();
    if let Some(position) = position {
        hasher.update(format!("{position:?}").as_bytes());
    }
    hasher.update(text.as_bytes());
    hasher.update(listing.as_bytes());
    let layers = match source {
        // What differs between replicas of one config (their names, and
        // the address each reaches the fleet's store by) is left out.
        Source::Fixed(config) => {
            format!("{:?}", Config { replica: None, fleet: None, ..(**config).clone() })
        }
        Source::File { layers, .. } => {
            let shared: Vec<Overrides> = layers
                .iter()
                .map(|l| Overrides { replica: None, fleet_store: None, ..l.clone() })
                .collect();
            format!("{shared:?}")
        }
    };
    hasher.update(layers.as_bytes());
    hasher.update(runtime.unwrap_or_default().as_bytes());
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// How long the watcher waits for a burst of file events to settle.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

/// How often a missing folder is looked for again (it was deleted, and the
/// watch with it; it may be made again).
const REARM_EVERY: Duration = Duration::from_millis(250);

/// Keeps the config file watched while it is alive; dropping it stops watching.
pub(crate) struct ConfigWatcher {
    _task: tokio::task::JoinHandle<()>,
    _abort: AbortOnDrop,
}

impl fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigWatcher").finish_non_exhaustive()
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A file or folder, as the filesystem knows it: which inode, and whether
/// it is still linked anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    links: u64,
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| Identity {
        device: m.dev(),
        inode: m.ino(),
        links: m.nlink(),
    })
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|_| Identity { device: 0, inode: 0, links: 1 })
}

/// Whether a file event means the file may have changed. Opening, reading
/// and closing a file unwritten are events too (inotify reports sluice's own
/// reads), and reacting to them reloads forever.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Watches the config file and reloads it once per change of its contents.
///
/// - By default with inotify: on the file's folder (editors that save by
///   rename, Kubernetes ConfigMap symlink swaps) and on the file itself (a
///   single-file bind mount, whose writes made through the host's path the
///   folder watch does not see). A folder that is deleted and made again is
///   watched again; a file replaced by rename is watched again.
/// - With `[watch] poll`, by looking at the file every interval instead
///   (filesystems without inotify, such as network mounts).
///
/// Either way the file is read and compared with the text last acted on, so
/// events that change nothing (sluice's own reads, a `touch`, another file
/// in the folder) reload nothing, and each real change is one reload:
/// `applied`, or `rejected` with the running config kept.
///
/// # Errors
/// notify's error when the folder cannot be watched.
pub(crate) fn watch(live: Arc<Live>) -> notify::Result<Option<ConfigWatcher>> {
    let Some(path) = live.path().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let folder =
        path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let poll = live.snapshot().config.watch.poll;
    // Bounded(1): a burst of events queues at most one look, which reads the newest file.
    let (tx, rx) = mpsc::channel::<()>(1);
    let task = match poll {
        Some(every) => tokio::spawn(poll_file(live, path, every)),
        None => {
            let folder_tx = tx.clone();
            let mut debouncer =
                new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
                    let changed = match result {
                        Ok(events) => events.iter().any(|event| is_change(&event.kind)),
                        Err(_) => true, // look: the watch itself may be gone
                    };
                    if changed {
                        let _ = folder_tx.try_send(());
                    }
                })?;
            debouncer.watch(&folder, RecursiveMode::NonRecursive)?;
            // The file's own inode, apart: the debouncer's rename tracking
            // loses events when a file and its folder are both watched.
            let mut file_watcher =
                notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
                    if result.is_ok_and(|event| is_change(&event.kind)) {
                        let _ = tx.try_send(());
                    }
                })?;
            if let Err(error) = file_watcher.watch(&path, RecursiveMode::NonRecursive) {
                debug!(%error, "cannot watch the config file itself; watching its folder only");
            }
            let watchers = Watchers { folder: debouncer, file: file_watcher };
            tokio::spawn(follow_events(live, path, folder, watchers, rx))
        }
    };
    let abort = AbortOnDrop(task.abort_handle());
    Ok(Some(ConfigWatcher { _task: task, _abort: abort }))
}

/// The folder's watch (debounced) and the file's.
struct Watchers {
    folder: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    file: notify::RecommendedWatcher,
}

/// The inotify watcher's loop: once a burst of events has settled, re-arm
/// what the filesystem took away, then look at the file.
async fn follow_events(
    live: Arc<Live>,
    path: PathBuf,
    folder: PathBuf,
    mut watchers: Watchers,
    mut events: mpsc::Receiver<()>,
) {
    let mut looker = Looker::new(&live, &path);
    let mut folder_id = identity(&folder);
    let mut file_id = identity(&path);
    while events.recv().await.is_some() {
        // The file's own events are not debounced: let a write finish.
        tokio::time::sleep(DEBOUNCE).await;
        while events.try_recv().is_ok() {}
        let debouncer = &mut watchers.folder;
        let now_folder = identity(&folder).map(|i| (i.device, i.inode));
        if now_folder.is_none() || now_folder != folder_id.map(|i| (i.device, i.inode)) {
            let _ = debouncer.unwatch(&folder);
            while debouncer.watch(&folder, RecursiveMode::NonRecursive).is_err() {
                tokio::time::sleep(REARM_EVERY).await; // deleted: wait for it to come back
            }
            info!(folder = %folder.display(), "the config folder was replaced; watching it again");
            folder_id = identity(&folder);
            file_id = None;
        }
        let now_file = identity(&path);
        if now_file.map(|i| (i.device, i.inode)) != file_id.map(|i| (i.device, i.inode)) {
            let _ = watchers.file.unwatch(&path);
            if now_file.is_some() {
                let _ = watchers.file.watch(&path, RecursiveMode::NonRecursive);
            }
        }
        file_id = now_file;
        looker.look(now_file).await;
    }
}

/// The polling watcher's loop: a look at the file's identity, size and
/// modification time every `every`, and at its contents when they moved.
async fn poll_file(live: Arc<Live>, path: PathBuf, every: Duration) {
    let mut looker = Looker::new(&live, &path);
    let stamp = |path: &Path| {
        std::fs::metadata(path).ok().map(|m| (identity(path), m.len(), m.modified().ok()))
    };
    let mut last = stamp(&path);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = stamp(&path);
        if now != last {
            last = now;
            looker.look(identity(&path)).await;
        }
    }
}

/// Reads the file when told it may have changed, and reloads only when its
/// text differs from the text last acted on.
struct Looker {
    live: Arc<Live>,
    path: PathBuf,
    /// The text last acted on (or the read error last reported).
    last: Result<String, String>,
    warned_unlinked: bool,
}

impl Looker {
    fn new(live: &Arc<Live>, path: &Path) -> Self {
        let last = live.last_good.lock().map(|text| text.clone()).map_err(|e| e.to_string());
        Self { live: Arc::clone(live), path: path.to_path_buf(), last, warned_unlinked: false }
    }

    async fn look(&mut self, identity: Option<Identity>) {
        if identity.is_some_and(|i| i.links == 0) && !self.warned_unlinked {
            // A single-file bind mount whose host file was replaced by
            // rename: the mount still shows the old, deleted file.
            warn!(
                path = %self.path.display(),
                "the config file was replaced by a new file and this path still shows the old \
                 one (a single-file bind mount?): mount the folder instead to get changes \
                 (README \"Hot reload\")"
            );
            self.warned_unlinked = true;
        }
        let read = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|error| format!("cannot read config file {}: {error}", self.path.display()));
        if read == self.last {
            return;
        }
        self.last = read.clone();
        match read {
            Ok(text) => {
                self.live.reload_text("file changed", text).await;
            }
            Err(error) => {
                self.live.reject("file changed", error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cassette(dir: &Path, name: &str) {
        let head = serde_json::json!({"sluice_cassette": 1, "request": {"method": "POST", "path": "/v1/messages",
            "body": {"model": "m", "messages": [{"role": "user", "content": name}]}},
            "response": {"status": 200, "head_ms": 1.0, "headers": {"content-type": "application/json"}}});
        let piece = serde_json::json!({"at_ms": 2.0, "body": "{}"});
        std::fs::write(dir.join(format!("{name}.jsonl")), format!("{head}\n{piece}\n")).unwrap();
    }

    /// `PUT /faults` and a reload that leaves the folder as it was keep the
    /// cassettes already read; a new cassette is read at the next reload.
    #[tokio::test]
    async fn live_control_reuses_the_replay_library_until_its_folder_changes() {
        let dir = tempfile::tempdir().unwrap();
        cassette(dir.path(), "one");
        let text = format!("[replay]\ndir = \"{}\"\n", dir.path().display());
        let config = Config::from_toml_str(&text, "t.toml").unwrap();
        let source = Source::Fixed(Box::new(config));
        let live = Live::start(source.clone(), source.load().unwrap(), Arc::default()).unwrap();
        let first = live.snapshot().replay.clone().unwrap();
        let patch = crate::config::parse_runtime_patch(r#"{"error_rate": 0.5}"#).unwrap();
        let applied = live.set_runtime(Some((patch, "{}".into()))).await;
        assert!(matches!(applied, Reload::Applied(_)), "{applied:?}");
        assert!(Arc::ptr_eq(&first, live.snapshot().replay.as_ref().unwrap()), "not read again");
        assert!(matches!(live.set_runtime(None).await, Reload::Applied(_)));
        assert!(Arc::ptr_eq(&first, live.snapshot().replay.as_ref().unwrap()));
        cassette(dir.path(), "two");
        assert!(matches!(live.reload("test").await, Reload::Applied(_)));
        let read_again = live.snapshot().replay.clone().unwrap();
        assert!(!Arc::ptr_eq(&first, &read_again));
        assert_eq!(read_again.len(), 2);
    }

    #[test]
    fn replicas_of_one_config_name_the_same_version() {
        let layered = |replica: Option<&str>| Source::File {
            path: PathBuf::from("sluice.toml"),
            layers: vec![Overrides { replica: replica.map(String::from), ..Overrides::default() }],
        };
        let version = |text: &str, replica| fingerprint(text, &layered(replica), None, None, "");
        assert_eq!(version("a = 1", Some("sluice-0")), version("a = 1", Some("sluice-1")));
        assert_eq!(version("a = 1", Some("sluice-0")), version("a = 1", None));
        assert_ne!(version("a = 1", None), version("a = 2", None));
        let fixed = |replica: Option<&str>| {
            let config = Config { replica: replica.map(String::from), ..Config::default() };
            fingerprint("", &Source::Fixed(Box::new(config)), None, None, "")
        };
        assert_eq!(fixed(Some("a")), fixed(Some("b")));
    }

    #[test]
    fn replicas_reaching_the_store_by_different_addresses_name_the_same_version() {
        let reaching = |url: &str| Source::File {
            path: PathBuf::from("sluice.toml"),
            layers: vec![Overrides {
                fleet_store: Some(crate::config::value::store_url(url).unwrap()),
                ..Overrides::default()
            }],
        };
        let version = |url| fingerprint("a = 1", &reaching(url), Some("error_rate = 1"), None, "");
        assert_eq!(version("redis://10.0.1.1:6379"), version("redis://10.0.2.1:6379"));
    }
}
