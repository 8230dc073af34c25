//! Command line only: flags, logging, config layering, bind, then the library.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice::Source;
use sluice::config::ProfilePatch;
use sluice::config::layer::{self, Base, Overrides};
use sluice::config::value;
use sluice::shape::{Delay, Length};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// A fault-injecting mock and reverse proxy for LLM streaming APIs: exact
/// first-token delay, token pacing, tool-call delay and provider-correct
/// faults, changeable while a load test runs.
///
/// Knobs come from built-in defaults, then the config file, then the
/// environment (PORT, FIRST_TOKEN_DELAY, TOKEN_INTERVAL, TOKENS_PER_RESPONSE,
/// TOOL_CALL_DELAY, ERROR_RATE, SLUICE_SEED, SLUICE_UPSTREAM,
/// SLUICE_ADMIN_LISTEN), then these flags. The config file is watched and
/// reloaded while sluice runs. With no subcommand sluice proxies when an upstream is configured
/// and serves its mock otherwise.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigFile,
    #[command(flatten)]
    serve: ServeFlags,
}

/// `--config`, for the commands that read a config file by that flag.
#[derive(Debug, Clone, Default, clap::Args)]
struct ConfigFile {
    /// TOML config file (see config/sluice.toml for every knob).
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The flags of a running sluice: the last layer over the file and the
/// environment. Given before the subcommand or after it (after wins).
#[derive(Debug, Clone, Default, clap::Args)]
struct ServeFlags {
    /// Address to listen on, e.g. 0.0.0.0:3456 or 127.0.0.1:0.
    #[arg(long, value_parser = value::listen, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Delay before the first token, e.g. 100ms (a bare number is milliseconds).
    #[arg(long, value_parser = value::env_duration, value_name = "DURATION")]
    first_token_delay: Option<Duration>,
    /// Minimum time between tokens, e.g. 20ms.
    #[arg(long, value_parser = value::env_duration, value_name = "DURATION")]
    token_interval: Option<Duration>,
    /// Text tokens in a mock reply.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    tokens_per_response: Option<u32>,
    /// Extra delay before a tool call starts, e.g. 500ms.
    #[arg(long, value_parser = value::env_duration, value_name = "DURATION")]
    tool_call_delay: Option<Duration>,
    /// Share of requests that get an injected error: 0.005 or 0.5%.
    #[arg(long, value_parser = value::rate_text, value_name = "RATE")]
    error_rate: Option<f64>,
    /// Seed for every random draw (faults, text, ids), for reproducible runs.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Upstream base URL for proxy mode, e.g. https://api.anthropic.com.
    #[arg(long, value_parser = value::upstream_url, value_name = "URL")]
    upstream: Option<hyper::Uri>,
    /// Address of the admin listener (metrics, config, reload, faults), e.g.
    /// 127.0.0.1:9090 (the default) or 127.0.0.1:0.
    #[arg(long, value_parser = value::listen, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// This replica's stable name in a fleet (the pod name): mixed into the
    /// seed so that replicas draw different, reproducible streams.
    #[arg(long, env = "SLUICE_REPLICA", value_parser = value::replica, value_name = "NAME")]
    replica: Option<String>,
    /// The instant fault windows count from, shared by a fleet, e.g.
    /// 2026-12-01T10:00:00Z (default: the process start).
    #[arg(long, env = "SLUICE_EPOCH", value_parser = value::epoch, value_name = "TIME")]
    epoch: Option<std::time::SystemTime>,
    /// Share rate limits, schedules, runs and live control with the other
    /// replicas through this Redis (`[fleet] store`; docs/fleet.md).
    #[arg(long, env = "SLUICE_FLEET_STORE", hide_env_values = true, value_parser = value::store_url, value_name = "URL")]
    fleet_store: Option<sluice::config::StoreUrl>,
    /// Proxy mode: write every exchange as a cassette into this folder
    /// (`[record] dir`; docs/record-replay.md).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Mock mode: answer from the cassettes in this folder (`[replay] dir`).
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
    /// Threads that serve connections, each with its own single-threaded
    /// runtime and timer (default: one per core; docs/performance.md).
    #[arg(long, env = "SLUICE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    workers: Option<u16>,
    /// Log format on stderr: `text` (coloured only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Once both ports are bound, write their URLs and the process id to this
    /// file as one JSON object (for scripts that start sluice on port 0;
    /// docs/testing.md, "Starting sluice from a script").
    #[arg(long, env = "SLUICE_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

impl ServeFlags {
    /// These flags, each one not given taken from `earlier`.
    fn or(self, earlier: Self) -> Self {
        Self {
            listen: self.listen.or(earlier.listen),
            first_token_delay: self.first_token_delay.or(earlier.first_token_delay),
            token_interval: self.token_interval.or(earlier.token_interval),
            tokens_per_response: self.tokens_per_response.or(earlier.tokens_per_response),
            tool_call_delay: self.tool_call_delay.or(earlier.tool_call_delay),
            error_rate: self.error_rate.or(earlier.error_rate),
            seed: self.seed.or(earlier.seed),
            upstream: self.upstream.or(earlier.upstream),
            admin_listen: self.admin_listen.or(earlier.admin_listen),
            replica: self.replica.or(earlier.replica),
            epoch: self.epoch.or(earlier.epoch),
            fleet_store: self.fleet_store.or(earlier.fleet_store),
            record: self.record.or(earlier.record),
            replay: self.replay.or(earlier.replay),
            workers: self.workers.or(earlier.workers),
            log_format: self.log_format.or(earlier.log_format),
            ready_file: self.ready_file.or(earlier.ready_file),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON Lines.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the built-in mock (Anthropic Messages, OpenAI Chat Completions
    /// and Responses, Gemini and Vertex AI, Bedrock, embeddings, models), even if an
    /// upstream is configured.
    Mock {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Proxy every request to the upstream (--upstream, SLUICE_UPSTREAM or
    /// [upstream] url), shaping its streams (SSE, Gemini's JSON arrays, AWS event streams).
    Proxy {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Exit 0 if a sluice on this machine answers on the configured port (for
    /// Docker's HEALTHCHECK), else 1.
    Health {
        #[command(flatten)]
        config: ConfigFile,
        /// The address sluice listens on, if not the config's (in a
        /// container, PID 1's own --listen is read).
        #[arg(long, value_parser = value::listen, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Validate a config file as start-up and reload do (environment and flags
    /// included) and print the effective settings; exit 0 if valid, 1 if not.
    Check {
        /// The TOML file.
        file: PathBuf,
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Measure the timing of the recorded streams in a folder of cassettes,
    /// per model and path, and print it with [profiles.NAME] blocks and
    /// routes to paste into a config (docs/record-replay.md).
    Profile {
        /// The folder of cassettes.
        dir: PathBuf,
    },
    /// Make a CA and a certificate signed by it for the given names, into a
    /// folder (ca.pem, cert.pem, key.pem), for `[tls] cert` and `key` and for
    /// clients to trust (docs/tls.md).
    Cert {
        /// DNS names and IP addresses the certificate is for (localhost and
        /// 127.0.0.1 are always added).
        #[arg(long, value_delimiter = ',')]
        names: Vec<String>,
        /// The folder to write into.
        #[arg(long, default_value = "sluice-tls")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    #[cfg(not(target_env = "msvc"))]
    return_freed_memory();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sluice: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain; no backtrace for user errors.
            eprintln!("sluice: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What was asked for, once the flags before and after the subcommand are
/// merged.
enum Mode {
    /// Proxy when an upstream is configured, else the mock.
    Either,
    Mock,
    Proxy,
    /// `check FILE`.
    Check(PathBuf),
    /// `health`, with the `--listen` it was given.
    Health(Option<SocketAddr>),
}

async fn start(args: Args) -> anyhow::Result<()> {
    let Args { command, config: top_config, serve: top_flags } = args;
    let (mode, config_file, flags) = match command {
        Some(Command::Profile { dir }) => {
            print!("{}", sluice::cassette::profile::report(&dir)?);
            return Ok(());
        }
        Some(Command::Cert { names, out }) => return make_certificate(&names, &out),
        None => (Mode::Either, top_config.config, top_flags),
        Some(Command::Mock { config, serve }) => {
            (Mode::Mock, config.config.or(top_config.config), serve.or(top_flags))
        }
        Some(Command::Proxy { config, serve }) => {
            (Mode::Proxy, config.config.or(top_config.config), serve.or(top_flags))
        }
        Some(Command::Check { file, serve }) => {
            (Mode::Check(file.clone()), Some(file), serve.or(top_flags))
        }
        Some(Command::Health { config, listen }) => {
            let listen = listen.or(top_flags.listen);
            (Mode::Health(listen), config.config.or(top_config.config), top_flags)
        }
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("sluice=info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match flags.log_format.unwrap_or(LogFormat::Text) {
        LogFormat::Json => logs.json().init(),
        // Colour codes only where a terminal shows them, not in `docker logs` or a file.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let mock_only = matches!(mode, Mode::Mock);
    let layers = vec![
        Overrides::from_env(|name| std::env::var(name).ok())?,
        flag_overrides(&flags, mock_only),
    ];
    // One read of the file, layered once (config::layer::build); the server
    // starts from this very config, and reloads build theirs the same way.
    let source = match config_file {
        Some(path) => Source::File { path, layers },
        None => Source::Fixed(Box::new(layer::build(Base::Defaults, &layers, None, None)?)),
    };
    let first = source.load()?;
    let config = &first.config;
    match &mode {
        Mode::Check(file) => {
            let settings = serde_json::to_string_pretty(&sluice::config::describe(config, None))?;
            println!("{settings}");
            eprintln!("sluice check: {} is valid", file.display());
            return Ok(());
        }
        Mode::Health(listen) => {
            // In a container sluice is PID 1, and `docker run IMAGE --listen ...`
            // gives it flags that HEALTHCHECK's `sluice health` does not get:
            // read the port from PID 1's own command line.
            let port = match (listen, pid1_listen()) {
                (None, Some(listen)) => listen.port(),
                (Some(listen), _) => listen.port(),
                (None, None) => config.listen.port(),
            };
            return check_health(port, config.tls.is_some())
                .with_context(|| format!("no healthy sluice on 127.0.0.1:{port}"));
        }
        Mode::Proxy => anyhow::ensure!(
            config.upstream.is_some(),
            "proxy mode needs an upstream: pass --upstream URL, set SLUICE_UPSTREAM, \
             or add [upstream] url = \"...\" to the config"
        ),
        Mode::Mock | Mode::Either => {}
    }
    // Thousands of streams need thousands of fds; the default soft limit is often 1,024.
    let open_files = sluice::listener::raise_open_file_limit();
    tracing::debug!(?open_files, "open-file limit");
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}: is another server using the port? Choose another with --listen or PORT",
            config.listen
        )
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let admin = if config.admin.enabled {
        match TcpListener::bind(config.admin.listen).await {
            Ok(admin) => Some(admin),
            Err(error) => {
                // Often Prometheus itself on 9090: the API matters more than the admin port.
                tracing::warn!(
                    %error,
                    listen = %config.admin.listen,
                    "admin listener off: choose another address with --admin-listen or [admin] listen"
                );
                None
            }
        }
    } else {
        None
    };
    let admin_addr = admin.as_ref().and_then(|a| a.local_addr().ok());
    let shutdown = shutdown_signal();
    print!("{}", sluice::banner(config, addr, admin_addr));
    let ready = match &flags.ready_file {
        Some(path) => Some(ReadyFile::write(path, config.tls.is_some(), addr, admin_addr)?),
        None => None,
    };
    let grace = config.shutdown_grace;
    // Tokens are released on sluice's own sub-millisecond timer, not tokio's 1 ms one.
    #[cfg(target_os = "linux")]
    sluice::shape::PreciseTimer::start().context("starting the precise timer")?.install();
    // Connections run on one shard per core, away from tokio's work stealing
    // (sluice::shards: about 6 % less CPU per paced event at 2,000 streams
    // on two cores, and no futex calls between workers).
    let workers = flags.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        usize::from,
    );
    sluice::listener::shards::Shards::start(workers)
        .context("starting the worker threads")?
        .install();
    let served =
        sluice::server::serve_loaded(source, first, listener, admin, shutdown, grace).await;
    drop(ready);
    served?;
    Ok(())
}

/// The file `--ready-file` names: `{"api": URL, "admin": URL or null, "pid": N}`,
/// written whole (a temporary file renamed over it, so a reader that polls
/// for it never sees half of it) once the listeners are bound, and removed
/// when sluice exits normally, so that a file left behind means a crash.
struct ReadyFile(PathBuf);

impl ReadyFile {
    fn write(
        path: &std::path::Path,
        tls: bool,
        api: SocketAddr,
        admin: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        // A client on this machine reaches a listener bound to all interfaces on loopback.
        let reachable = |addr: SocketAddr| match addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], v4.port()))
            }
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
            }
            other => other,
        };
        let scheme = if tls { "https" } else { "http" };
        let ready = serde_json::json!({
            "api": format!("{scheme}://{}", reachable(api)),
            "admin": admin.map(|admin| format!("http://{}", reachable(admin))),
            "pid": std::process::id(),
        });
        let mut staged = path.as_os_str().to_owned();
        staged.push(".partial");
        let staged = PathBuf::from(staged);
        let context = || format!("writing the ready file {}", path.display());
        std::fs::write(&staged, format!("{ready}\n")).with_context(context)?;
        std::fs::rename(&staged, path).with_context(context)?;
        Ok(Self(path.to_path_buf()))
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The flags, as the last layer over the file and the environment.
fn flag_overrides(args: &ServeFlags, mock_only: bool) -> Overrides {
    Overrides {
        listen: args.listen,
        port: None,
        profile: ProfilePatch {
            first_token_delay: args.first_token_delay.map(Delay::Fixed),
            token_interval: args.token_interval.map(Delay::Fixed),
            tool_call_delay: args.tool_call_delay.map(Delay::Fixed),
            overload: None,
            tokens_per_response: args.tokens_per_response.map(Length::Fixed),
            error_rate: args.error_rate,
            faults: None,
            tool_use: Default::default(),
            rate_limits: None,
            thinking: Default::default(),
            capacity: None,
        },
        seed: args.seed,
        upstream: args.upstream.clone(),
        admin_listen: args.admin_listen,
        mock_only,
        record: args.record.clone(),
        replay: args.replay.clone(),
        replica: args.replica.clone(),
        epoch: args.epoch,
        fleet_store: args.fleet_store.clone(),
    }
}

/// `sluice cert`: a CA and a certificate for `names` (and localhost), into `out`.
fn make_certificate(names: &[String], out: &std::path::Path) -> anyhow::Result<()> {
    let mut all = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    all.extend(names.iter().filter(|n| !n.is_empty()).cloned());
    all.dedup();
    let generated = sluice::listener::tls::generate(&all)?;
    for path in sluice::listener::tls::write(&generated, out)? {
        println!("wrote {}", path.display());
    }
    println!(
        "certificate for {}; serve it with [tls] cert = \"{}\" and key = \"{}\"; \
         clients trust {} (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)",
        all.join(", "),
        out.join("cert.pem").display(),
        out.join("key.pem").display(),
        out.join("ca.pem").display()
    );
    Ok(())
}

/// One `GET /__sluice/health` on loopback, with std only: the runtime image has no curl.
/// Asks the API listener on `port` for `/__sluice/health`. A TLS listener
/// (`tls`) answers a plain request with its own 400 ("use https://"), which
/// proves as much: sluice accepted the connection and answered it.
fn check_health(port: u16, tls: bool) -> anyhow::Result<()> {
    use std::io::{ErrorKind, Read, Write};
    let timeout = Duration::from_secs(2);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let said = |error: std::io::Error| match error.kind() {
        ErrorKind::ConnectionRefused => {
            anyhow::anyhow!("nothing listens there (connection refused)")
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            anyhow::anyhow!("no answer within {} s", timeout.as_secs())
        }
        _ => anyhow::anyhow!(error),
    };
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout).map_err(said)?;
    stream.set_read_timeout(Some(timeout))?;
    stream
        .write_all(b"GET /__sluice/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(said)?;
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).map_err(said)?;
    let healthy = answer.starts_with(b"HTTP/1.1 200")
        || (tls
            && answer.starts_with(b"HTTP/1.1 400")
            && answer.ends_with(b"this sluice listener speaks TLS: use https://\n"));
    anyhow::ensure!(
        healthy,
        "unexpected answer {:?}",
        String::from_utf8_lossy(answer.get(..answer.len().min(64)).unwrap_or_default())
    );
    Ok(())
}

/// SIGINT or SIGTERM (what `docker stop` sends). The handlers are installed
/// when this is called, not when the future is first polled: a signal that
/// arrives right after the banner must start a graceful shutdown, not kill
/// the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(terminate), Ok(interrupt)) => Some((terminate, interrupt)),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen for SIGTERM or SIGINT; only Ctrl-C stops sluice");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        if let Some((mut terminate, mut interrupt)) = signals {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// jemalloc: about 10 % less CPU than the system allocator on the per-token
/// path, and less memory at thousands of streams (docs/performance.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Freed memory goes back to the system within seconds, even when the
/// process is idle: jemalloc purges only when it is called unless its
/// background thread runs, so a burst (200 HTTP/2 streams a client never
/// read, a large body) left its pages resident for good. Unused pages are
/// returned after `dirty_decay_ms` (jemalloc's 10 s), and at once rather
/// than after a second, lazy stage (`muzzy_decay_ms = 0`), so RSS shows it
/// (docs/reliability.md, "Connections (both listeners)").
#[cfg(not(target_env = "msvc"))]
fn return_freed_memory() {
    use tikv_jemalloc_ctl::{Access, AsName};
    // Arena 0 exists already (this thread allocated); later ones take the
    // `arenas.` default. A failure leaves jemalloc's defaults in force.
    for key in [&b"arenas.muzzy_decay_ms\0"[..], &b"arena.0.muzzy_decay_ms\0"[..]] {
        if let Err(error) = key.name().write(0_isize) {
            eprintln!("sluice: jemalloc setting not applied: {error}");
        }
    }
    // One purging thread is enough for a process this size (jemalloc's
    // default starts one per CPU).
    let _ = tikv_jemalloc_ctl::max_background_threads::write(1);
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("sluice: jemalloc's background purge not started: {error}");
    }
}

/// The `--listen` that PID 1 was given, when PID 1 is sluice (in a
/// container); `None` elsewhere or when it was given none.
fn pid1_listen() -> Option<SocketAddr> {
    let cmdline = std::fs::read("/proc/1/cmdline").ok()?;
    let argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let program = std::path::Path::new(argv.first()?).file_name()?.to_str()?;
    if program != "sluice" {
        return None;
    }
    let Args { command, serve, .. } = Args::try_parse_from(&argv).ok()?;
    match command {
        Some(Command::Mock { serve: after, .. } | Command::Proxy { serve: after, .. }) => {
            after.listen.or(serve.listen)
        }
        _ => serve.listen,
    }
}
