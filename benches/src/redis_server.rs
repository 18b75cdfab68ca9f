//! A `redis-server` for the Redis benches (`mirror`, `claims`): the one the environment names,
//! or one started on a free loopback port and killed on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` this bench started, killed on drop.
pub struct Server(pub Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `BACKGROUND_WORKER_REDIS_PORT`'s server, or a fresh one without persistence; `None` when
/// none can be started (no `redis-server` installed).
pub fn redis() -> Option<(Server, u16)> {
    if let Some(port) = std::env::var("BACKGROUND_WORKER_REDIS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        return Some((Server(None), port));
    }
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(Some(child));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some((server, port))
}
