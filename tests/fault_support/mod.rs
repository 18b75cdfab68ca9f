//! The fault tools of `tests/cluster_faults.rs`, in one place: a TCP proxy between one replica
//! and Redis that can black-hole the link (stop forwarding and stop reading, without closing a
//! socket), SIGSTOP/SIGCONT of a replica, and the recorder of a scenario's history (every answer
//! of every replica to the polling clients, with times; every start and end of a task body, from
//! the replicas' logs). The invariants are in `checker.rs`; this module only records.

#![allow(dead_code)] // not every scenario uses every tool

pub(crate) mod checker;

use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Client;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use checker::{Answer, Body, History};

/// A loopback TCP proxy to `127.0.0.1:upstream`. While black-holed, it neither forwards nor
/// reads (so the kernel buffers fill, and the peers see no reset, no close, no answer), and
/// accepted connections wait the same way; healing forwards whatever was buffered.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (open, gate) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let gate = gate.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(client_read, server_write, gate.clone()));
                    pump(server_read, client_write, gate).await;
                });
            }
        });
        Self { port, open, task }
    }

    /// `redis://127.0.0.1:PORT` through the proxy.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops forwarding and reading, in both directions, keeping every socket open.
    pub(crate) fn black_hole(&self) {
        self.open.send_replace(false);
    }

    /// Forwards again (whatever was buffered meanwhile goes through).
    pub(crate) fn heal(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` while the gate is open; while it is closed, reads nothing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    let mut closing = gate.clone();
    loop {
        if gate.wait_for(|open| *open).await.is_err() {
            return;
        }
        tokio::select! {
            read = from.read(&mut buffer) => {
                let Ok(read @ 1..) = read else { return };
                // Held while closed: a chunk read just before the black hole waits too.
                let open = gate.wait_for(|open| *open).await.is_ok();
                if !open {
                    return;
                }
                if to.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
            // Closed while waiting to read: stop reading.
            _ = async { closing.wait_for(|open| !*open).await.is_ok() } => {}
        }
    }
}

/// Sends a signal to a process through `kill` (no libc in the tests).
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Milliseconds since the Unix epoch, the unit of every time in a history.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// What the polling clients record, shared by all of them.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl Recorder {
    pub(crate) fn push(&self, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(answer);
    }

    pub(crate) fn answers(&self) -> Vec<Answer> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One request to `replica` at `base` + `path` (GET or DELETE), recorded with its times.
    /// A request gets 10 s: the checker decides what is too slow.
    pub(crate) async fn ask(
        &self,
        client: &Client,
        replica: &str,
        base: &str,
        method: &str,
        job: &str,
    ) -> Answer {
        let url = format!("{base}/jobs/{job}");
        let sent = now_ms();
        let request = match method {
            "DELETE" => client.delete(&url),
            _ => client.get(&url),
        };
        let response = request.timeout(Duration::from_secs(10)).send().await;
        let (code, status) = match response {
            Ok(response) => {
                let code = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (code, body["status"].as_str().map(str::to_owned))
            }
            Err(_) => (0, None),
        };
        let answer = Answer {
            replica: replica.to_owned(),
            job: job.to_owned(),
            method: method.to_owned(),
            sent,
            received: now_ms(),
            code,
            status,
        };
        self.push(answer.clone());
        answer
    }

    /// Polls `GET /jobs/{job}` on `replica` every 50–200 ms until `stop`, except while
    /// `paused` says the replica is stopped (a request to a stopped process only hangs).
    pub(crate) fn poll(
        &self,
        client: Client,
        replica: String,
        base: String,
        jobs: Vec<String>,
        paused: watch::Receiver<bool>,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let recorder = self.clone();
        tokio::spawn(async move {
            let mut round = 0u64;
            while !*stop.borrow() {
                if !*paused.borrow() {
                    for job in &jobs {
                        recorder.ask(&client, &replica, &base, "GET", job).await;
                    }
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(50 + (round * 37) % 150)).await;
            }
        })
    }
}

/// The body starts and ends, and the moments a replica found its run dead, from one replica's
/// logs (the demo logs `job body started` / `job body ended` with the job id, and the mirror
/// logs `this replica's run was found dead` at WARN).
pub(crate) fn bodies(replica: &str, logs: &str) -> (Vec<Body>, Vec<u64>) {
    let mut bodies: Vec<Body> = Vec::new();
    let mut deaths = Vec::new();
    for line in logs.lines() {
        let Some(at) = log_time(line) else { continue };
        if line.contains("run was found dead") {
            deaths.push(at);
        }
        let Some(job) = field(line, "job_id=") else {
            continue;
        };
        if line.contains("job body started") {
            bodies.push(Body {
                replica: replica.to_owned(),
                job,
                started: at,
                ended: None,
            });
        } else if line.contains("job body ended") {
            if let Some(body) = bodies
                .iter_mut()
                .rev()
                .find(|body| body.job == job && body.ended.is_none())
            {
                body.ended = Some(at);
            }
        }
    }
    (bodies, deaths)
}

fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(name)? + name.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '}' || c == ':')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// The leading RFC 3339 UTC timestamp of a tracing-subscriber line
/// (`2026-12-06T21:30:00.123456Z`), in ms since the Unix epoch.
fn log_time(line: &str) -> Option<u64> {
    let stamp = line.split_whitespace().next()?;
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    u64::try_from(ms).ok()
}

/// Builds the history of a scenario from the recorded answers and the replicas' logs.
pub(crate) fn history(recorder: &Recorder, logs: &[(&str, String)]) -> History {
    let mut history = History {
        answers: recorder.answers(),
        ..History::default()
    };
    for (replica, text) in logs {
        let (bodies, deaths) = bodies(replica, text);
        history.bodies.extend(bodies);
        history
            .deaths
            .extend(deaths.into_iter().map(|at| ((*replica).to_owned(), at)));
    }
    history
}

#[test]
fn log_times_parse() {
    assert_eq!(log_time("1970-01-01T00:00:01.5Z  INFO x"), Some(1500));
    assert_eq!(
        log_time("2000-03-01T00:00:00.000000Z  INFO x"),
        Some(951_868_800_000)
    );
    let logs =
        "2000-03-01T00:00:00.000000Z  INFO task{task_id=j1 worker=w}: api: job body started job_id=j1\n\
                2000-03-01T00:00:01.000000Z  INFO task{task_id=j1 worker=w}: api: job body ended job_id=j1";
    let (bodies, _) = bodies("a", logs);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].ended, Some(951_868_801_000));
}
