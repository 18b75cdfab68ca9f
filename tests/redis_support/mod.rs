//! Real `redis-server` processes for the Redis tests, on free loopback ports.
//!
//! Outside CI, without a `redis-server` on the `PATH`, [`RedisServer::start`] prints that the
//! test is skipped and returns `None`. With `BACKGROUND_WORKER_REDIS_REQUIRED=1` (set by
//! `.ci/run`) it panics instead, so CI cannot pass without running them. Every server runs
//! without persistence (`--save '' --appendonly no`), so a restart starts empty, as a Redis
//! that lost its data would; each is killed when dropped.

#![allow(dead_code)] // each test file uses a part of this module

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a fresh `redis-server` may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process on `127.0.0.1:port`.
pub(crate) struct RedisServer {
    child: Option<Child>,
    /// Started by this test (not the shared one of `.ci/run`): it may be stopped and restarted.
    owned: bool,
    pub(crate) port: u16,
    extra: Vec<String>,
}

/// Whether the Redis tests must run (CI) rather than be skipped.
fn required() -> bool {
    std::env::var("BACKGROUND_WORKER_REDIS_REQUIRED").is_ok_and(|value| value == "1")
}

fn available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    /// A fresh server, or `None` (the test is skipped) if there is no `redis-server` here.
    pub(crate) fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &[])
    }

    /// The server `.ci/run` started (`BACKGROUND_WORKER_REDIS_PORT`), shared by the tests that
    /// neither stop it nor change its settings (each uses a namespace of its own); a fresh one
    /// when that is not set.
    pub(crate) fn shared(test: &str) -> Option<Self> {
        match std::env::var("BACKGROUND_WORKER_REDIS_PORT")
            .ok()
            .and_then(|port| port.parse().ok())
        {
            Some(port) => Some(Self {
                child: None,
                owned: false,
                port,
                extra: Vec::new(),
            }),
            None => Self::start(test),
        }
    }

    /// As [`start`](Self::start), with more `redis-server` arguments (`--requirepass x`).
    pub(crate) fn start_with(test: &str, extra: &[&str]) -> Option<Self> {
        if !available() {
            assert!(
                !required(),
                "{test}: redis-server is not installed, and BACKGROUND_WORKER_REDIS_REQUIRED=1"
            );
            // Straight to stderr, past the test harness's capture, so the skip shows in the run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no redis-server on the PATH (install the redis-server package to run it)"
            );
            return None;
        }
        let mut server = Self {
            child: None,
            owned: true,
            port: free_port(),
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never accepted",
                self.port
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:PORT`
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: it loses everything, as a crash would).
    pub(crate) fn stop(&mut self) {
        assert!(self.owned, "only a server of this test can be stopped");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub(crate) fn restart(&mut self) {
        assert!(self.owned, "only a server of this test can be restarted");
        self.stop();
        self.spawn();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server: `STOP` black-holes it (connections stay
    /// open, nothing answers), as a paused or partitioned Redis would. Dropping the server
    /// kills it even while stopped.
    pub(crate) fn signal(&self, signal: &str) {
        assert!(self.owned, "only a server of this test can be paused");
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// A plain client connection, for looking at (or tampering with) what the mirror wrote.
    pub(crate) async fn client(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every key of the namespace (`SCAN`, never `KEYS`).
pub(crate) async fn namespace_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    namespace: &str,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{namespace}}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Polls `check` every 20 ms until it returns `Some`, failing after `limit`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
