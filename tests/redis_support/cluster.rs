//! A real Redis Cluster for the tests: three masters with one replica each, six `redis-server`
//! processes on free loopback ports, each in a temporary directory of its own (for its
//! `nodes.conf`), joined by `redis-cli --cluster create`. Every wait is bounded and fails with
//! a message; every process is killed and every directory removed on drop.
//!
//! Skipped (`None`) like `RedisServer::start` (`redis_support/mod.rs`) when there is no
//! `redis-server` here, unless `BACKGROUND_WORKER_REDIS_REQUIRED=1`. A suite includes it with
//! `#[path = "redis_support/cluster.rs"] mod cluster;` (so the suites without a cluster do not
//! compile it).

#![allow(dead_code)] // each test file uses a part of this module

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long the cluster may take to form, or to settle after a failover.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `cluster-node-timeout`: how long a master may be unreachable before its replica takes over.
const NODE_TIMEOUT_MS: u64 = 1000;

/// One node: its port and its process (`None` once killed).
struct Node {
    port: u16,
    child: Option<Child>,
}

/// A Redis Cluster of three masters and three replicas on `127.0.0.1`.
pub(crate) struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct NodeLine {
    pub(crate) id: String,
    pub(crate) port: u16,
    pub(crate) master: bool,
    pub(crate) failed: bool,
    /// The id of its master, for a replica.
    pub(crate) master_id: Option<String>,
    /// Its slot ranges, for a master.
    pub(crate) slots: Vec<(u16, u16)>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

fn available() -> bool {
    ["redis-server", "redis-cli"].iter().all(|program| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// A command to the node on `port` over a fresh connection with short timeouts.
pub(crate) fn node_cmd<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut conn)
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

impl RedisCluster {
    /// A fresh cluster with `cluster_state:ok` on every node, or `None` (the test is skipped)
    /// without `redis-server` here.
    pub(crate) fn start(test: &str) -> Option<Self> {
        if !available() {
            assert!(
                std::env::var("BACKGROUND_WORKER_REDIS_REQUIRED").as_deref() != Ok("1"),
                "{test}: redis-server/redis-cli are not installed, and BACKGROUND_WORKER_REDIS_REQUIRED=1"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: no redis-server on the PATH");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("bw-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = free_port();
            // The bus port explicitly: the default (port + 10 000) is out of range for a port
            // above 55 535, which a free ephemeral port often is, and may be taken.
            let child = cluster.spawn(port, free_port());
            cluster.nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("timeout")
            .arg("60")
            .arg("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_settled("the new cluster");
        Some(cluster)
    }

    fn spawn(&self, port: u16, bus_port: u16) -> Child {
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("create a node's directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &bus_port.to_string()])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--appendonly", "no", "--save", ""])
            // A replica syncs at once (the default waits 5 s), so it can take over soon.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--dir", &dir.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} never accepted"
            );
            thread::sleep(Duration::from_millis(10));
        }
        child
    }

    /// Every live node says `cluster_state:ok`, every live node's view has three masters that
    /// are not failed and cover all 16384 slots, and every live replica's link to its master is
    /// up (it has synced: it could take over).
    pub(crate) fn wait_settled(&self, what: &str) {
        wait_for(
            &format!("{what}: cluster_state:ok everywhere"),
            SETTLE_TIMEOUT,
            || {
                for port in self.live_ports() {
                    let info: String = node_cmd(port, &["CLUSTER", "INFO"]).ok()?;
                    if !info.contains("cluster_state:ok") {
                        return None;
                    }
                    let masters: Vec<NodeLine> =
                        parse_nodes(&node_cmd::<String>(port, &["CLUSTER", "NODES"]).ok()?)
                            .into_iter()
                            .filter(|line| line.master && !line.failed && !line.slots.is_empty())
                            .collect();
                    let covered: u32 = masters
                        .iter()
                        .flat_map(|line| &line.slots)
                        .map(|(from, to)| u32::from(to - from) + 1)
                        .sum();
                    if masters.len() != 3 || covered != 16384 {
                        return None;
                    }
                    let replication: String = node_cmd(port, &["INFO", "replication"]).ok()?;
                    if replication.contains("role:slave") && !replication.contains("master_link_status:up") {
                        return None;
                    }
                }
                Some(())
            },
        );
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    /// `CLUSTER NODES` as a live node sees it.
    pub(crate) fn nodes(&self) -> Vec<NodeLine> {
        let port = self.live_ports()[0];
        parse_nodes(&node_cmd::<String>(port, &["CLUSTER", "NODES"]).expect("CLUSTER NODES"))
    }

    /// The slot of the hash tag `{namespace}`, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub(crate) fn slot_of(&self, namespace: &str) -> u16 {
        let port = self.live_ports()[0];
        node_cmd(port, &["CLUSTER", "KEYSLOT", &format!("{{{namespace}}}")]).expect("CLUSTER KEYSLOT")
    }

    /// The master that serves `namespace`'s slot.
    pub(crate) fn master_of(&self, namespace: &str) -> NodeLine {
        let slot = self.slot_of(namespace);
        self.nodes()
            .into_iter()
            .find(|line| {
                line.master
                    && !line.failed
                    && line.slots.iter().any(|(from, to)| (*from..=*to).contains(&slot))
            })
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// A live replica of `master` (waiting until the node asked knows one).
    pub(crate) fn replica_of(&self, master: &NodeLine) -> NodeLine {
        wait_for(
            &format!("a live replica of master {}", master.port),
            SETTLE_TIMEOUT,
            || {
                self.nodes()
                    .into_iter()
                    .find(|line| !line.failed && line.master_id.as_deref() == Some(master.id.as_str()))
            },
        )
    }

    /// A master that does NOT serve `namespace`'s slot: a URL that names it gets `MOVED` for
    /// every key of the namespace.
    pub(crate) fn other_master(&self, namespace: &str) -> NodeLine {
        let owner = self.master_of(namespace);
        self.nodes()
            .into_iter()
            .find(|line| line.master && !line.failed && line.id != owner.id && !line.slots.is_empty())
            .expect("another master")
    }

    /// The classic pub/sub channels of `namespace` that some live node has a subscriber for
    /// (`PUBSUB CHANNELS` is per node in a cluster), across all live nodes.
    pub(crate) fn subscribed_channels(&self, namespace: &str) -> Vec<String> {
        let pattern = format!("{{{namespace}}}:cancel:*");
        let mut channels: Vec<String> = self
            .live_ports()
            .into_iter()
            .filter_map(|port| node_cmd::<Vec<String>>(port, &["PUBSUB", "CHANNELS", &pattern]).ok())
            .flatten()
            .collect();
        channels.sort();
        channels.dedup();
        channels
    }

    /// `redis+cluster://127.0.0.1:PORT`: the mirror's URL for a cluster reached through that
    /// node.
    pub(crate) fn url(port: u16) -> String {
        format!("redis+cluster://127.0.0.1:{port}")
    }

    /// `run_id` of the node on `port`.
    pub(crate) fn run_id(port: u16) -> String {
        let info: String = node_cmd(port, &["INFO", "server"]).expect("INFO server");
        info.lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .expect("run_id in INFO server")
            .trim()
            .to_owned()
    }

    /// A manual failover of `namespace`'s slot: `CLUSTER FAILOVER` on its master's replica,
    /// which waits for the replica to catch up (no write is lost). Returns the new master.
    pub(crate) fn failover(&self, namespace: &str) -> NodeLine {
        let old = self.master_of(namespace);
        let replica = self.replica_of(&old);
        let () = node_cmd(replica.port, &["CLUSTER", "FAILOVER"]).expect("CLUSTER FAILOVER");
        let promoted = wait_for("the replica promoted", SETTLE_TIMEOUT, || {
            let now = self.master_of(namespace);
            (now.port == replica.port).then_some(now)
        });
        self.wait_settled("after CLUSTER FAILOVER");
        promoted
    }

    /// Kills (SIGKILL) the master of `namespace`'s slot and waits until its replica took over
    /// (after `cluster-node-timeout`). Returns the new master.
    pub(crate) fn kill_master(&mut self, namespace: &str) -> NodeLine {
        let old = self.master_of(namespace);
        let replica = self.replica_of(&old);
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == old.port)
            .expect("the master is one of ours");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut seen = String::new();
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let promoted = loop {
            if let Ok(text) = node_cmd::<String>(replica.port, &["CLUSTER", "NODES"]) {
                if let Some(line) = parse_nodes(&text)
                    .into_iter()
                    .find(|line| line.port == replica.port && line.master && !line.slots.is_empty())
                {
                    break line;
                }
                seen = text;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} did not take over from {} within {SETTLE_TIMEOUT:?}; it sees:\n{seen}",
                replica.port,
                old.port
            );
            thread::sleep(Duration::from_millis(50));
        };
        self.wait_settled("after the master was killed");
        promoted
    }
}

impl RedisCluster {
    /// Kills (SIGKILL) the master of `namespace`'s slot and its replica: the slot has no
    /// server any more (`CLUSTERDOWN` for its keys).
    pub(crate) fn kill_shard(&mut self, namespace: &str) {
        let master = self.master_of(namespace);
        let replica = self.replica_of(&master);
        for node in &mut self.nodes {
            if node.port == master.port || node.port == replica.port {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

impl RedisCluster {
    fn signal(&self, port: u16, signal: &str) {
        let node = self
            .nodes
            .iter()
            .find(|node| node.port == port)
            .expect("one of ours");
        let child = node.child.as_ref().expect("a live node");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} the node on port {port}");
    }

    /// SIGSTOPs the node on `port` (it stops replicating); [`thaw`](Self::thaw) continues it.
    pub(crate) fn freeze(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// SIGCONTs the node on `port`.
    pub(crate) fn thaw(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    /// SIGKILLs the node on `port`.
    pub(crate) fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("one of ours");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the node on `port` serves `namespace`'s slot as its master, and the cluster
    /// settled.
    pub(crate) fn wait_serving(&self, namespace: &str, port: u16) {
        wait_for(&format!("node {port} serves the slot"), SETTLE_TIMEOUT, || {
            let slot = self.slot_of(namespace);
            parse_nodes(&node_cmd::<String>(port, &["CLUSTER", "NODES"]).ok()?)
                .into_iter()
                .find(|line| {
                    line.port == port
                        && line.master
                        && line.slots.iter().any(|(from, to)| (*from..=*to).contains(&slot))
                })
        });
        self.wait_settled("after the takeover");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a stopped process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses `CLUSTER NODES`: `id ip:port@cport flags master ping pong epoch link slot...`.
pub(crate) fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let address = fields[1].split('@').next()?;
            let port = address.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = fields[2].split(',').collect();
            let slots = fields[8..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| {
                    let mut parts = range.split('-');
                    let from: u16 = parts.next()?.parse().ok()?;
                    let to: u16 = parts.next().map_or(Some(from), |to| to.parse().ok())?;
                    Some((from, to))
                })
                .collect();
            Some(NodeLine {
                id: fields[0].to_owned(),
                port,
                master: flags.contains(&"master"),
                failed: flags.iter().any(|flag| flag.starts_with("fail")),
                master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}
