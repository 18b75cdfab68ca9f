//! The hook through which a cluster integration (the Redis mirror, feature `redis`) takes over
//! the submission of a worker's ticks, so that one replica runs each tick. The core defines the
//! trait and keeps a weak reference to the one claimer a worker may have; the integration
//! implements it and registers itself (`Worker::claim_ticks_with`). Imports run one way: the
//! core never names the integration.

use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, Weak};

use crate::context::TaskContext;
use crate::sync::Mutex;

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tick's run, ready to be spawned: called once, in the run's task, with the run's context
/// and the tick's fencing token.
pub(crate) type TickBody = Box<dyn FnOnce(TaskContext, u64) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// What became of a tick handed to a [`TickClaimer`].
#[derive(Debug)]
pub(crate) enum Claimed {
    /// Claimed (with a mirror) and spawned here.
    Here,
    /// Another replica claimed this tick (it runs or ran there): not an error.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the mirror's answer
    Elsewhere { replica: String },
    /// The worker is shutting down: the driver stops.
    ShuttingDown,
    /// Not run anywhere by this replica: the claim could not be made (Redis unreachable, not
    /// known yet, the worker refused the spawn, ...).
    Refused { reason: String },
}

/// Submits a tick as a claimed submission: the task `run_id` is spawned on this worker only if
/// the tick was claimed for the whole cluster.
pub(crate) trait TickClaimer: Send + Sync {
    fn claim_tick(&self, run_id: String, body: TickBody) -> BoxFuture<'_, Claimed>;
}

/// A worker's claimer slot. Held weakly: the claimer (a mirror) holds the worker, and the
/// worker must not keep it alive in return.
#[derive(Default)]
pub(crate) struct ClaimerSlot(Mutex<Option<Weak<dyn TickClaimer>>>);

impl std::fmt::Debug for ClaimerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimerSlot")
            .field("set", &self.get().is_some())
            .finish()
    }
}

/// What the slot holds for one tick.
pub(crate) enum Submitter {
    /// No claimer was ever registered: the tick runs locally.
    Local,
    /// The registered claimer.
    Claimer(std::sync::Arc<dyn TickClaimer>),
    /// A claimer was registered and is gone (its mirror was dropped): the tick is not run,
    /// never silently local.
    Gone,
}

impl ClaimerSlot {
    /// Registers `claimer`; `false` (and nothing changes) if one is registered already.
    pub(crate) fn set(&self, claimer: Weak<dyn TickClaimer>) -> bool {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        *slot = Some(claimer);
        true
    }

    /// Whether a claimer was registered (even one that is gone).
    pub(crate) fn is_set(&self) -> bool {
        self.get().is_some()
    }

    fn get(&self) -> Option<Weak<dyn TickClaimer>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn submitter(&self) -> Submitter {
        match self.get() {
            None => Submitter::Local,
            Some(weak) => weak.upgrade().map_or(Submitter::Gone, Submitter::Claimer),
        }
    }
}
