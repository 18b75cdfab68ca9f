//! What a running task can see of itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::sync::tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::progress::Progress;
use crate::slot::{Slot, StopPoll};

/// The handle a task body receives from
/// [`Worker::submit_with_context`](crate::Worker::submit_with_context).
///
/// It carries the task's id and its own [`CancellationToken`], made when the body first asks
/// for it ([`token`](Self::token)): a body that never asks costs no token, and one that only
/// waits with [`cancelled`](Self::cancelled) or looks with [`is_cancelled`](Self::is_cancelled)
/// needs none either. The token is cancelled when
/// [`Worker::cancel`](crate::Worker::cancel) is called for this task, when
/// [`Worker::shutdown`](crate::Worker::shutdown) begins, or when the last [`Worker`](crate::Worker)
/// handle is dropped. A task that watches it can wind down on its own (flush, checkpoint,
/// release) within the cancel or shutdown timeout; after that it is aborted.
///
/// `TaskContext` is cheap to clone: clones share the same token. A clone that first asks for
/// the token after the task was told to stop, and a context kept past the end of its task, get
/// a cancelled token if they had none.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::{TaskStatus, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
/// worker
///     .submit_with_context("sync", |ctx| async move {
///         loop {
///             tokio::select! {
///                 _ = ctx.cancelled() => return Ok(()), // checkpoint, then stop
///                 _ = tokio::time::sleep(Duration::from_secs(1)) => { /* one batch */ }
///             }
///         }
///     })
///     .await?;
///
/// assert_eq!(worker.cancel("sync").await?, TaskStatus::Cancelled);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TaskContext {
    slot: Arc<Slot>,
    /// The slot's token, once this context asked for it.
    token: OnceLock<CancellationToken>,
}

impl TaskContext {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        Self {
            slot,
            token: OnceLock::new(),
        }
    }

    /// The task's id, as given to `submit_with_context`.
    #[must_use]
    pub fn id(&self) -> &str {
        self.slot.id()
    }

    /// The task's own cancellation token, which [`cancel`](crate::Worker::cancel),
    /// [`shutdown`](crate::Worker::shutdown) and dropping the last handle cancel.
    ///
    /// It is not a child of a worker-wide token: creating and dropping a child takes its
    /// parent's lock, which every task would contend on. The worker cancels each live task's
    /// token itself instead. Tokens you derive from it with
    /// [`child_token`](CancellationToken::child_token) are cancelled with it.
    ///
    /// Cancelling it yourself cancels only this task, which then ends as
    /// [`TaskStatus::Cancelled`](crate::TaskStatus::Cancelled).
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        self.token.get_or_init(|| self.slot.context_token())
    }

    /// Returns `true` once the task has been asked to stop (or has cancelled its own token).
    /// Makes no token.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        match self.token.get() {
            Some(token) => token.is_cancelled(),
            None => self.slot.stopped(),
        }
    }

    /// Completes when the task is asked to stop ([`cancel`](crate::Worker::cancel),
    /// [`shutdown`](crate::Worker::shutdown), the last handle dropped), when its token is
    /// cancelled (if [`token`](Self::token) made one: the body may cancel it itself), or at once
    /// if the task is over (a context kept past the end of its task).
    ///
    /// Makes no token: the wait is kept in the task's own state and woken by the stop, so
    /// stopping a task whose body waits here costs no token and no allocation. Once this task
    /// has a token, the wait goes through it instead, in a small allocation of its own per
    /// call.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future loses nothing, and a new call completes
    /// immediately if cancellation was requested meanwhile.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            context: self,
            token: None,
        }
    }

    /// Reports how far along the task is; readable through
    /// [`Worker::task_info`](crate::Worker::task_info). The latest report wins.
    ///
    /// It takes a lock of this task's own, so it never contends with other tasks. Once the task is
    /// terminal, reports are ignored: the progress shown is the last one made while it ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{Progress, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let worker = Worker::new();
    /// worker.submit_with_context("import", |ctx| async move {
    ///     ctx.set_progress(0.25);                                      // a fraction
    ///     ctx.set_progress((500, 1_000));                              // done of total
    ///     ctx.set_progress(Progress::counter(900, 1_000).with_message("almost"));
    ///     Ok(())
    /// }).await?;
    /// worker.wait("import").await;
    ///
    /// let progress = worker.task_info("import").unwrap().progress.unwrap();
    /// assert_eq!(progress.done, Some(900));
    /// assert_eq!(progress.message.as_deref(), Some("almost"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_progress(&self, progress: impl Into<Progress>) {
        self.slot.set_progress(progress.into());
    }
}

/// The future of [`TaskContext::cancelled`]: completes when the task is asked to stop, when its
/// token is cancelled, or at once if the task is over.
///
/// It is `Unpin`: it can be awaited by `&mut` in a loop without pinning it first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::{TaskStatus, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
/// worker
///     .submit_with_context("batches", |ctx| async move {
///         let mut cancelled = ctx.cancelled(); // one wait for the whole loop
///         loop {
///             tokio::select! {
///                 () = &mut cancelled => return Ok(()),
///                 () = tokio::time::sleep(Duration::from_secs(1)) => { /* one batch */ }
///             }
///         }
///     })
///     .await?;
/// tokio::time::sleep(Duration::from_secs(3)).await;
///
/// assert_eq!(worker.cancel("batches").await?, TaskStatus::Cancelled);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'a> {
    context: &'a TaskContext,
    /// The wait on the task's token, once it has one (see [`TaskContext::cancelled`]).
    token: Option<Pin<Box<WaitForCancellationFuture<'a>>>>,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.token.is_none() && this.context.token.get().is_none() {
            match this.context.slot.poll_stopped(cx.waker()) {
                StopPoll::Yes => return Poll::Ready(()),
                StopPoll::Waiting => return Poll::Pending,
                StopPoll::HasToken => {}
            }
        }
        let context = this.context;
        this.token
            .get_or_insert_with(|| Box::pin(context.token().cancelled()))
            .as_mut()
            .poll(cx)
    }
}
