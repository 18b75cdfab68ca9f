//! Runs the `03_job_server` example as a real child process, for `tests/server.rs` and
//! `tests/server_load.rs`.
//!
//! The example binary is looked up next to the test binary (`target/<profile>/examples/`), where
//! `cargo test` builds it; when it is missing or older than its sources (as after
//! `cargo test --test server`), it is built with the same cargo, profile and target directory.
//! Every server is killed when its [`Server`] is dropped, so a failing test leaks no process; its
//! stderr (the server's logs) is printed then.

#![allow(dead_code)] // each test file uses a part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use background_worker::ShutdownReport;

const EXAMPLE: &str = "03_job_server";
/// How long the server may take to print its address (a cold start, not a build).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `03_job_server` process.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on an ephemeral loopback port with these environment variables and
    /// waits for its `listening on ADDR` line.
    pub(crate) fn start(envs: &[(&str, &str)]) -> Self {
        Self::start_command(Command::new(example_binary()), envs)
    }

    /// As [`start`](Self::start), under a soft limit of `files` open files (`ulimit -n`, through
    /// `sh`, so the tests need no libc).
    pub(crate) fn start_with_file_limit(files: u32, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(example_binary());
        Self::start_command(command, envs)
    }

    fn start_command(mut command: Command, envs: &[(&str, &str)]) -> Self {
        command
            .args(["--addr", "127.0.0.1:0"])
            .env_remove("PORT")
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the example server");

        let (lines, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buffer = [0; 8192];
            while let Ok(read @ 1..) = err.read(&mut buffer) {
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });

        let mut server = Self {
            child,
            base: String::new(),
            stdout,
            stderr,
        };
        let line = server
            .next_line(STARTUP_TIMEOUT)
            .expect("the server prints `listening on ADDR`");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        server.base = format!("http://{addr}");
        server
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id, for signals.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as Kubernetes does (through `kill`, so the tests need no libc).
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Kills the process outright (SIGKILL): no drain, no flush, as after an OOM kill.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next stdout line, if one comes within `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        self.stdout.recv_timeout(timeout).ok()
    }

    /// After the process exited: its `shutdown_report {json}` line, parsed.
    pub(crate) fn shutdown_report(&self) -> ShutdownReport {
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(Duration::from_secs(5)) {
            if let Some(json) = line.strip_prefix("shutdown_report ") {
                return serde_json::from_str(json).expect("the shutdown report is valid JSON");
            }
            rest.push(line);
        }
        panic!("no shutdown_report line on stdout; other lines: {rest:?}");
    }

    /// What the server logged so far.
    pub(crate) fn logs(&self) -> String {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "---- job server logs ----\n{}---- end of job server logs ----",
                self.logs()
            );
        }
    }
}

/// Runs the example with these arguments and environment to completion (for settings errors).
pub(crate) fn run_to_end(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(example_binary())
        .args(args)
        .env_remove("PORT")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    // Bad settings exit at once; a server that started by mistake is killed after a while.
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("collect the example's output")
}

/// The example binary, built if it is missing or stale. Built at most once per test binary.
pub(crate) fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // target/<profile>/deps/<test binary> -> target/<profile>
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let binary = profile_dir
            .join("examples")
            .join(format!("{EXAMPLE}{}", std::env::consts::EXE_SUFFIX));
        if is_stale(&binary) {
            build(profile_dir);
        }
        assert!(
            binary.is_file(),
            "example binary not found at {}",
            binary.display()
        );
        binary
    })
}

/// Missing, or older than a source file of the example or the library.
fn is_stale(binary: &Path) -> bool {
    let Some(built) = modified(binary) else {
        return true;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        root.join("examples").join(EXAMPLE),
        root.join("src"),
        root.join("src").join("redis"),
        root.join("src").join("redis").join("scripts"),
        root.join("src").join("redis").join("scripts").join("includes"),
        root.join("src").join("console"),
        root.join("src").join("console").join("assets"),
    ];
    dirs.iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter_map(|entry| modified(&entry.path()))
        .any(|source| source > built)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

fn build(profile_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    };
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
    // The features this test was built with, so the binary matches (`--redis` needs `redis`,
    // `GET /metrics` needs `metrics`).
    let mut features = vec!["axum"];
    if cfg!(feature = "metrics") {
        features.push("metrics");
    }
    if cfg!(feature = "redis") {
        features.push("redis");
    }
    if cfg!(feature = "redis-tls") {
        features.push("redis-tls");
    }
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--example",
            EXAMPLE,
            "--features",
            &features.join(","),
            "--profile",
            &profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo to build the example");
    assert!(
        status.success(),
        "building the {EXAMPLE} example failed: {status}"
    );
}
