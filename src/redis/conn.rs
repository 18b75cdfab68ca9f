//! [`Conn`]: the mirror's connection to Redis, one node or a Redis Cluster. Every script,
//! pipeline and command of the mirror goes through it; the rest of the mirror does not know
//! which it is.
//!
//! On a Cluster every key of a namespace shares one hash tag, so every script and pipeline has
//! one slot: redis-rs's cluster connection sends it to that slot's master, follows `MOVED` and
//! `ASK`, and refreshes its slot map after a failover. The cluster connection is made on first
//! use (as the single-node connection manager is), so a replica starts while the cluster is
//! down.
//!
//! Invariants on a Cluster:
//! - Every command and pipeline is routed to the master of the namespace's slot (the slot of
//!   the hash tag `{ns}` that every key carries): keyed ones would go there anyway, and keyless
//!   ones must, so that a script's `TIME` and `INFO server` (the epoch's `run_id`) are the
//!   server's whose data they judge.
//! - The cluster client answers a command for a slot whose master it cannot reach from that
//!   shard's replica or, failing that, from any node. Keyed commands then get `MOVED` (an
//!   error, as they should), but a keyless one would succeed on the wrong server. So the keyless
//!   commands the mirror sends (`TIME`, `PING`, `INFO`) run inside a one-key script on the
//!   namespace's hash tag ([`PINNED`]): only the slot's master answers them, and health never
//!   counts another node's answer as Redis being reachable.
//! - A moving or downed cluster (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`,
//!   `READONLY`, `LOADING`, no connection for the slot) is a connection error
//!   ([`is_cluster_unsettled`]): retried, and shown in health.
//! - Cancels use classic pub/sub (`PUBLISH` in the scripts), which a cluster broadcasts to
//!   every node, so the cancel listener's [`Subscriber`] may sit on any node; it re-subscribes
//!   after a reconnect or a topology change, and the listener affirms its subscription every
//!   heartbeat (an idle cluster connection never refreshes its slot map). A message lost
//!   meanwhile is still read from the stored request at the next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Arg, Cmd, Pipeline, ProtocolVersion, PushInfo, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::{mpsc, Mutex};

/// Runs its arguments as one command, on the server that owns `KEYS[1]` (the namespace's hash
/// tag): a keyless command pinned to the namespace slot's master.
const PINNED: &str = "return redis.call(unpack(ARGV))";

/// Keyless commands the mirror sends, pinned to the slot's master on a cluster.
const KEYLESS: [&[u8]; 3] = [b"TIME", b"PING", b"INFO"];

/// One connection, cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis server: a connection manager that reconnects in the background.
    Single(ConnectionManager),
    /// A Redis Cluster: connected on first use, then shared.
    Cluster(Arc<Lazy>),
}

/// A cluster connection made on first use (and made again while making it fails).
pub(crate) struct Lazy {
    client: ClusterClient,
    conn: Mutex<Option<ClusterConnection>>,
    /// The master of the namespace's slot.
    route: Route,
    /// `{ns}`: the key that pins a keyless command to that slot.
    tag: String,
}

impl Conn {
    /// A cluster connection whose every call goes to the master of `namespace`'s slot.
    pub(crate) fn cluster(client: ClusterClient, namespace: &str) -> Self {
        let tag = format!("{{{namespace}}}");
        Self::Cluster(Arc::new(Lazy {
            client,
            conn: Mutex::new(None),
            route: Route::with_key(&tag, SlotAddr::Master),
            tag,
        }))
    }
}

impl Lazy {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        let mut conn = self.conn.lock().await;
        if let Some(conn) = &*conn {
            return Ok(conn.clone());
        }
        let made = self.client.get_async_connection().await?;
        *conn = Some(made.clone());
        Ok(made)
    }
}

/// The settings of a cluster client: the same bounds as the single-node connection's. Its own
/// retries stay few and short: `call.rs` retries on top, and bounds each call.
pub(crate) fn cluster_client(node: redis::ConnectionInfo, call_timeout: Duration) -> ClusterClientBuilder {
    ClusterClient::builder(vec![node])
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(call_timeout)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(1_000)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(lazy) => Box::pin(async move {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(lazy.route));
                let cmd = pinned(cmd, &lazy.tag).unwrap_or_else(|| cmd.clone());
                lazy.get().await?.route_command(cmd, route).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(lazy) => Box::pin(async move {
                let route = SingleNodeRoutingInfo::SpecificNode(lazy.route);
                lazy.get()
                    .await?
                    .route_pipeline(pipeline.clone(), offset, count, route)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(_) => 0,
        }
    }
}

/// `cmd` as a [`PINNED`] script call, if it is one of the [`KEYLESS`] commands.
fn pinned(cmd: &Cmd, tag: &str) -> Option<Cmd> {
    let mut args = cmd.args_iter();
    let Some(Arg::Simple(name)) = args.next() else {
        return None;
    };
    if !KEYLESS.iter().any(|keyless| name.eq_ignore_ascii_case(keyless)) {
        return None;
    }
    let mut script = redis::cmd("EVAL");
    script.arg(PINNED).arg(1).arg(tag).arg(name);
    for arg in args {
        match arg {
            Arg::Simple(arg) => script.arg(arg),
            _ => return None,
        };
    }
    Some(script)
}

/// Whether `error` says the cluster is moving or down (a failover or a resharding under way, a
/// redirect the client could not follow, no reachable node for the slot): worth a retry, and a
/// sign of trouble for health.
pub(crate) fn is_cluster_unsettled(error: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    error.is_cluster_error()
        || error.kind() == ErrorKind::ClusterConnectionNotFound
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading
            )
        )
}

/// The cancel listener's connection: RESP3, its push messages sent to a channel, its
/// subscriptions restored after a reconnect (and, on a cluster, after a topology change).
pub(crate) enum Subscriber {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Subscriber {
    /// Opens one to the URL's node (`cluster: false`) or to the cluster it belongs to. A
    /// single-node one connects lazily; a cluster one connects here (so this fails while the
    /// cluster cannot be reached: try again).
    pub(crate) async fn open(
        client: &redis::Client,
        cluster: bool,
        config: ConnectionManagerConfig,
        call_timeout: Duration,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> RedisResult<Self> {
        let info = client.get_connection_info().clone();
        if cluster {
            let client = cluster_client(info, call_timeout)
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(pushes)
                .build()?;
            return Ok(Self::Cluster(client.get_async_connection().await?));
        }
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = config.set_push_sender(pushes).set_automatic_resubscription();
        Ok(Self::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }

    /// Subscribes to `channel` (kept across reconnects). Subscribing again to a channel already
    /// subscribed is harmless, and on a cluster makes the client check the node it is on.
    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single(conn) => conn.subscribe(channel).await,
            Self::Cluster(conn) => conn.subscribe(channel).await,
        }
    }

    /// Unsubscribes from `channel`.
    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single(conn) => conn.unsubscribe(channel).await,
            Self::Cluster(conn) => conn.unsubscribe(channel).await,
        }
    }
}
