//! [`Conn`]: the mirror's connection to Redis, one node or a Redis Cluster. Every script,
//! pipeline and command of the mirror goes through it; the rest of the mirror does not know
//! which it is.
//!
//! On a Cluster every key of a namespace shares one hash tag, so every script and pipeline has
//! one slot: redis-rs's cluster connection sends it to that slot's master, follows `MOVED` and
//! `ASK`, and refreshes its slot map after a failover. The cluster connection is made on first
//! use (as the single-node connection manager is), so a replica starts while the cluster is
//! down.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::Mutex;

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
}

impl Conn {
    pub(crate) fn cluster(client: ClusterClient) -> Self {
        Self::Cluster(Arc::new(Lazy {
            client,
            conn: Mutex::new(None),
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

/// The settings of a cluster client: the same bounds as the single-node connection's.
pub(crate) fn cluster_client(
    node: redis::ConnectionInfo,
    call_timeout: Duration,
) -> RedisResult<ClusterClient> {
    ClusterClient::builder(vec![node])
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(call_timeout)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(1_000)
        .build()
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(lazy) => Box::pin(async move { lazy.get().await?.req_packed_command(cmd).await }),
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
                lazy.get()
                    .await?
                    .req_packed_commands(pipeline, offset, count)
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
