//! The `03_job_server` example against slow, idle and hostile clients, as a real process: every
//! connection that sends nothing, sends its head a byte a second, idles between requests or
//! never finishes its body is closed (or answered `408`) by the settings of `console::serve`;
//! 1 100 idle clients under a limit of 1 024 open files do not lock the server out.

#![cfg(feature = "axum")]

mod server_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use server_support::Server;

/// The demo's header-read timeout.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How much later than the timeout a close may come on a loaded machine.
const SLACK: Duration = Duration::from_secs(8);

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Connects, runs `send` on a thread, and reads until the server closes (or `limit` passes):
/// what it answered and when it closed.
fn probe(addr: &str, send: Sends, limit: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let started = Instant::now();
    let sender = thread::spawn(move || send(&mut writer));
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("still open after {limit:?} ({error}); read so far: {answer:?}"),
        }
    }
    let took = started.elapsed();
    drop(stream);
    let _ = sender.join();
    (String::from_utf8_lossy(&answer).into_owned(), took)
}

/// What a probe sends on its connection.
type Sends = fn(&mut TcpStream);

fn nothing(_: &mut TcpStream) {}

fn byte_a_second(stream: &mut TcpStream) {
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" {
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
        thread::sleep(Duration::from_secs(1));
    }
}

fn one_request_then_idle(stream: &mut TcpStream) {
    let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
}

fn short_body(stream: &mut TcpStream) {
    let _ = stream.write_all(
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\":",
    );
}

fn huge_declared_body(stream: &mut TcpStream) {
    let _ = stream.write_all(
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
    );
}

#[test]
fn slow_and_idle_connections_are_closed() {
    let server = Server::start(&[("CANCEL_TIMEOUT_MS", "1000")]);
    let addr = address(&server);
    let limit = HEADER_READ_TIMEOUT + SLACK + Duration::from_secs(10);
    let probes: Vec<(&str, Sends)> = vec![
        ("sends nothing", nothing),
        ("a byte a second", byte_a_second),
        ("idle after one request", one_request_then_idle),
        ("body never finished", short_body),
        ("body declared too large", huge_declared_body),
    ];
    let handles: Vec<_> = probes
        .into_iter()
        .map(|(name, send)| {
            let addr = addr.clone();
            thread::spawn(move || (name, probe(&addr, send, limit)))
        })
        .collect();
    for handle in handles {
        let (name, (answer, took)) = handle.join().expect("probe thread");
        eprintln!("{name}: closed after {took:?}: {answer:?}");
        match name {
            "sends nothing" | "a byte a second" => {
                assert!(answer.is_empty(), "{name}: {answer}");
                assert!(
                    took >= HEADER_READ_TIMEOUT - Duration::from_secs(1),
                    "{name}: {took:?}"
                );
                assert!(took <= HEADER_READ_TIMEOUT + SLACK, "{name}: {took:?}");
            }
            "idle after one request" => {
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                assert!(took <= HEADER_READ_TIMEOUT + SLACK, "{name}: {took:?}");
            }
            // The request timeout: the cancel wait (1 s + 1 s) plus 5 s.
            "body never finished" => {
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
                assert!(answer.ends_with(r#"{"error":"request timeout"}"#), "{answer}");
                assert!(took <= Duration::from_secs(7) + SLACK, "{name}: {took:?}");
            }
            _ => {
                assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
                assert!(answer.contains("application/json"), "{answer}");
                assert!(took < Duration::from_secs(5), "refused from the head: {took:?}");
            }
        }
    }
}

#[test]
fn idle_clients_beyond_the_file_limit_do_not_lock_the_server_out() {
    let server = Server::start_with_file_limit(1024, &[]);
    let addr = address(&server);
    let idle: Vec<TcpStream> = (0..1_100)
        .map(|_| TcpStream::connect(&addr).expect("an idle client connects"))
        .collect();
    thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let (answer, _) = probe(
        &addr,
        |stream| {
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        },
        HEADER_READ_TIMEOUT * 3,
    );
    let took = started.elapsed();
    eprintln!("/health answered after {took:?} with 1 100 idle clients connected");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took <= HEADER_READ_TIMEOUT + SLACK, "{took:?}");
    assert_eq!(idle.len(), 1_100, "the idle clients are still there");
    assert!(
        !server.logs().contains("Too many open files"),
        "{}",
        server.logs()
    );
}
