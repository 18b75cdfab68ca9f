//! Settings from the command line and the environment, parsed by hand.

use std::time::Duration;

pub(crate) const USAGE: &str = "\
usage: 03_job_server [--addr HOST:PORT] [--shutdown-timeout-ms N] [--cancel-timeout-ms N] [--max-concurrent N]

  --addr HOST:PORT          where to listen (default 127.0.0.1:3000; env PORT sets the port on 127.0.0.1)
  --shutdown-timeout-ms N   how long running jobs get to stop on SIGTERM (default 5000; env SHUTDOWN_TIMEOUT_MS)
  --cancel-timeout-ms N     how long DELETE /jobs/{id} waits before aborting (default 5000; env CANCEL_TIMEOUT_MS)
  --max-concurrent N        jobs running at once, the others wait (default no limit; env MAX_CONCURRENT)
  -h, --help                print this help";

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 3000;
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Timeouts above this are refused: an orchestrator kills the process long before.
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) addr: String,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) cancel_timeout: Duration,
    pub(crate) max_concurrent: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Config),
    Help,
}

impl Config {
    /// Reads the flags in `args`, then falls back to the environment through `env`.
    pub(crate) fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Parsed, String> {
        let mut addr = None;
        let mut shutdown_ms = None;
        let mut cancel_ms = None;
        let mut max_concurrent = None;

        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(Parsed::Help);
            }
            // Both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
                _ => (arg, None),
            };
            let slot = match flag.as_str() {
                "--addr" => &mut addr,
                "--shutdown-timeout-ms" => &mut shutdown_ms,
                "--cancel-timeout-ms" => &mut cancel_ms,
                "--max-concurrent" => &mut max_concurrent,
                other => return Err(format!("unknown argument {other:?}")),
            };
            let value = match inline.or_else(|| args.next()) {
                Some(value) => value,
                None => return Err(format!("{flag} needs a value")),
            };
            *slot = Some((flag, value));
        }

        let addr = match addr {
            Some((_, addr)) => addr,
            None => match env("PORT") {
                Some(port) => {
                    let port: u16 = port
                        .trim()
                        .parse()
                        .map_err(|_| format!("PORT must be a port number, got {port:?}"))?;
                    format!("{DEFAULT_HOST}:{port}")
                }
                None => format!("{DEFAULT_HOST}:{DEFAULT_PORT}"),
            },
        };
        let shutdown_timeout = millis(shutdown_ms, "SHUTDOWN_TIMEOUT_MS", &env)?;
        let cancel_timeout = millis(cancel_ms, "CANCEL_TIMEOUT_MS", &env)?;
        let max_concurrent = match number(max_concurrent, "MAX_CONCURRENT", &env)? {
            Some((_, 0)) => return Err("the concurrency limit must be at least 1".into()),
            Some((_, limit)) => Some(usize::try_from(limit).map_err(|_| "concurrency limit too large")?),
            None => None,
        };
        Ok(Parsed::Run(Self {
            addr,
            shutdown_timeout,
            cancel_timeout,
            max_concurrent,
        }))
    }
}

/// A timeout in milliseconds from the flag, else the environment, else the default.
fn millis(
    flag: Option<(String, String)>,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, String> {
    match number(flag, var, env)? {
        Some((name, ms)) if ms > MAX_TIMEOUT_MS => {
            Err(format!("{name} must be at most {MAX_TIMEOUT_MS} ms, got {ms}"))
        }
        Some((_, ms)) => Ok(Duration::from_millis(ms)),
        None => Ok(Duration::from_millis(DEFAULT_TIMEOUT_MS)),
    }
}

/// A whole number from the flag, else the environment variable `var`, with the name it came from.
fn number(
    flag: Option<(String, String)>,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, u64)>, String> {
    let Some((name, value)) = flag.or_else(|| env(var).map(|value| (var.to_owned(), value))) else {
        return Ok(None);
    };
    match value.trim().parse() {
        Ok(number) => Ok(Some((name, number))),
        Err(_) => Err(format!("{name} must be a whole number, got {value:?}")),
    }
}
