//! Settings from the command line and the environment, parsed with clap (a flag wins over its
//! environment variable).

use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

pub(crate) const USAGE: &str =
    "03_job_server [--addr HOST:PORT] [--shutdown-timeout-ms N] [--cancel-timeout-ms N] \
[--max-concurrent N] [--max-tracked N] [--max-connections N] [--read-only] [--redis URL] \
[--replica NAME] [--lease-ms N] [--every NAME=MS]...";

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 3000;
/// Timeouts above this are refused: an orchestrator kills the process long before.
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1_000;
/// Shortest lease accepted: renewed every third of it, it must outlast a few round trips.
const MIN_LEASE_MS: u64 = 300;

/// An Axum job service on background-worker.
#[derive(Debug, Parser)]
#[command(name = "03_job_server", override_usage = USAGE)]
struct Cli {
    /// Where to listen [default: 127.0.0.1:3000; env PORT sets the port on 127.0.0.1]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// How long running jobs get to stop on SIGTERM, in ms
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS", value_name = "N", default_value = "5000", value_parser = millis)]
    shutdown_timeout_ms: Duration,
    /// How long DELETE /jobs/{id} waits before aborting, in ms
    #[arg(long, env = "CANCEL_TIMEOUT_MS", value_name = "N", default_value = "5000", value_parser = millis)]
    cancel_timeout_ms: Duration,
    /// Jobs running at once, the others wait [default: no limit]
    #[arg(long, env = "MAX_CONCURRENT", value_name = "N", value_parser = concurrency)]
    max_concurrent: Option<usize>,
    /// Jobs tracked at most (any status); at the cap the oldest finished jobs make room, and
    /// only when every tracked job is live do submissions get 429
    #[arg(long, env = "MAX_TRACKED", value_name = "N", default_value = "10000", value_parser = tracked)]
    max_tracked: usize,
    /// Connections open at once [default: the file limit (ulimit -n) less 128, at least 16]
    #[arg(long, env = "MAX_CONNECTIONS", value_name = "N", value_parser = connections)]
    max_connections: Option<usize>,
    /// Serve the console read-only: no DELETE /jobs/{id}, no cancel buttons on the dashboard
    #[arg(long, env = "READ_ONLY")]
    read_only: bool,
    /// Mirror jobs to this Redis (redis://[:password@]host[:port][/db], rediss:// for TLS) for
    /// one job view across replicas [default: none, jobs stay in this process]
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    redis: Option<String>,
    /// This replica's name in the cluster [default: host name and pid]
    #[arg(long, env = "REPLICA", value_name = "NAME")]
    replica: Option<String>,
    /// The replica's lease in Redis, in ms: its jobs are reported lost this long after it died
    #[arg(long, env = "LEASE_MS", value_name = "N", default_value = "10000", value_parser = lease)]
    lease_ms: Duration,
    /// Runs a schedule NAME: a short job (about 10 ms) every MS ms; repeatable (env: comma-separated)
    #[arg(long, env = "EVERY", value_name = "NAME=MS", value_delimiter = ',', value_parser = every)]
    every: Vec<(String, Duration)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) addr: String,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) cancel_timeout: Duration,
    pub(crate) max_concurrent: Option<usize>,
    pub(crate) max_tracked: usize,
    pub(crate) max_connections: usize,
    pub(crate) read_only: bool,
    /// The Redis URL, which may hold a password: never log it.
    pub(crate) redis: Option<String>,
    pub(crate) replica: Option<String>,
    pub(crate) lease: Duration,
    /// The demo schedules: a name and a period each (`--every`).
    pub(crate) every: Vec<(String, Duration)>,
}

#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Config),
    /// `--help`: the text to print on stdout.
    Help(String),
}

impl Config {
    /// Reads the flags in `args` (without the program name), then the environment.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
        let args = std::iter::once("03_job_server".to_owned()).chain(args);
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(error) if error.kind() == ErrorKind::DisplayHelp => {
                return Ok(Parsed::Help(error.to_string()))
            }
            Err(error) => return Err(message(&error)),
        };
        let addr = match cli.addr {
            Some(addr) => addr,
            None => match std::env::var("PORT") {
                Ok(port) => {
                    let port: u16 = port
                        .trim()
                        .parse()
                        .map_err(|_| format!("PORT must be a port number, got {port:?}"))?;
                    format!("{DEFAULT_HOST}:{port}")
                }
                Err(_) => format!("{DEFAULT_HOST}:{DEFAULT_PORT}"),
            },
        };
        Ok(Parsed::Run(Self {
            addr,
            shutdown_timeout: cli.shutdown_timeout_ms,
            cancel_timeout: cli.cancel_timeout_ms,
            max_concurrent: cli.max_concurrent,
            max_tracked: cli.max_tracked,
            max_connections: cli.max_connections.unwrap_or_else(default_connections),
            read_only: cli.read_only,
            redis: cli.redis.filter(|url| !url.is_empty()),
            replica: cli.replica,
            lease: cli.lease_ms,
            every: cli.every,
        }))
    }
}

/// The one-line reason for a clap error, in the words this server always used.
fn message(error: &clap::Error) -> String {
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split_whitespace().next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let missing_value =
        matches!(error.get(ContextKind::InvalidValue), Some(ContextValue::String(value)) if value.is_empty());
    match error.kind() {
        ErrorKind::UnknownArgument => format!("unknown argument {arg:?}"),
        ErrorKind::InvalidValue if missing_value => format!("{arg} needs a value"),
        _ => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned(),
    }
}

fn number(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("must be a whole number, got {value:?}"))
}

/// A timeout in milliseconds, at most [`MAX_TIMEOUT_MS`].
fn millis(value: &str) -> Result<Duration, String> {
    match number(value)? {
        ms if ms > MAX_TIMEOUT_MS => Err(format!("must be at most {MAX_TIMEOUT_MS} ms, got {ms}")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn lease(value: &str) -> Result<Duration, String> {
    let lease = millis(value)?;
    if lease < Duration::from_millis(MIN_LEASE_MS) {
        return Err(format!("must be at least {MIN_LEASE_MS} ms"));
    }
    Ok(lease)
}

/// The longest period `--every` takes: a day.
const MAX_PERIOD_MS: u64 = 24 * 60 * 60 * 1_000;

/// `NAME=MS`: a schedule's name (checked again by `Worker::schedule`) and its period.
fn every(value: &str) -> Result<(String, Duration), String> {
    let (name, ms) = value
        .split_once('=')
        .ok_or_else(|| format!("must be NAME=MS, got {:?}", bounded(value)))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the schedule's name must not be empty".to_owned());
    }
    match number(ms)? {
        0 => Err("the period must be at least 1 ms".to_owned()),
        ms if ms > MAX_PERIOD_MS => Err(format!("the period must be at most {MAX_PERIOD_MS} ms")),
        ms => Ok((name.to_owned(), Duration::from_millis(ms))),
    }
}

/// At most 64 characters of user input in a message.
fn bounded(value: &str) -> String {
    value.chars().take(64).collect()
}

fn concurrency(value: &str) -> Result<usize, String> {
    match number(value)? {
        0 => Err("the concurrency limit must be at least 1".into()),
        limit => usize::try_from(limit).map_err(|_| "concurrency limit too large".into()),
    }
}

fn tracked(value: &str) -> Result<usize, String> {
    match number(value)? {
        0 => Err("the tracking cap must be at least 1".into()),
        limit => usize::try_from(limit).map_err(|_| "tracking cap too large".into()),
    }
}

fn connections(value: &str) -> Result<usize, String> {
    match number(value)? {
        0 => Err("the connection cap must be at least 1".into()),
        limit => usize::try_from(limit).map_err(|_| "connection cap too large".into()),
    }
}

/// File descriptors left for everything but client connections (the listener, Redis, logs).
const RESERVED_FILES: usize = 128;

/// The soft limit on open files less [`RESERVED_FILES`], at least 16; 1 024 where the limit
/// cannot be read (`/proc/self/limits` is Linux's).
fn default_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        })
        .unwrap_or(1_024 + RESERVED_FILES);
    soft.saturating_sub(RESERVED_FILES).max(16)
}
