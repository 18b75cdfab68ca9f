//! What a [`Worker`] handle tells about its tasks without changing them: statuses, counts,
//! snapshots, health and the stream of status changes. Each reads the registry or the counters
//! and returns at once.

use crate::sync::tokio::sync::broadcast;
use crate::sync::tokio::time::Instant;

use crate::info::{Health, TaskEvent, TaskInfo};
use crate::status::TaskStatus;
use crate::worker::Worker;

impl Worker {
    /// The status of the task named `id`, or `None` if no such task was ever submitted or its
    /// entry was removed by [`cleanup_finished_tasks`](Worker::cleanup_finished_tasks).
    ///
    /// This reads the registry directly; it never waits on the task.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let worker = background_worker::Worker::new();
    /// assert_eq!(worker.get_task_status("nope").await, None);
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Completes at its first poll; cancel safe.
    pub async fn get_task_status(&self, id: &str) -> Option<TaskStatus> {
        self.shared().registry.status(id)
    }

    /// Number of tracked entries, whatever their status (finished ones count until they are
    /// cleaned up).
    #[must_use]
    pub fn task_count(&self) -> usize {
        self.shared().registry.len()
    }

    /// Number of tasks whose body is running now (not counting pending ones).
    ///
    /// # Cancel safety
    ///
    /// Completes at its first poll; cancel safe.
    pub async fn running_task_count(&self) -> usize {
        self.shared().count(&TaskStatus::Running)
    }

    /// Returns `true` if an entry with this id is tracked, whatever its status.
    #[must_use]
    pub fn has_task(&self, id: &str) -> bool {
        self.shared().registry.contains(id)
    }

    /// The worker's name, from [`WorkerBuilder::name`](crate::WorkerBuilder::name) (`"default"` unless set).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared().config.name
    }

    /// Returns `true` once [`shutdown`](Worker::shutdown) has begun; from then on every submit is
    /// refused with [`SubmitError::ShuttingDown`](crate::SubmitError::ShuttingDown).
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shared().registry.is_closed()
    }

    /// A snapshot of the task named `id`: status, submission, start and finish times, queued and
    /// run time, latest progress. `None` if no such task is tracked.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = background_worker::Worker::new();
    /// worker.submit("job", || async { Ok(()) }).await.unwrap();
    /// worker.wait("job").await;
    ///
    /// let info = worker.task_info("job").unwrap();
    /// assert!(info.status.is_terminal());
    /// assert!(info.finished_at.is_some());
    /// assert!(worker.task_info("other").is_none());
    /// # }
    /// ```
    #[must_use]
    pub fn task_info(&self, id: &str) -> Option<TaskInfo> {
        let slot = self.shared().registry.slot(id)?;
        Some(slot.info(Instant::now()))
    }

    /// Snapshots of every tracked task, in no particular order.
    ///
    /// The registry is read one shard at a time and no lock is held once this returns; tasks that
    /// change status meanwhile show either their old or their new status.
    #[must_use]
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.shared().infos(|_| true)
    }

    /// Snapshots of the tracked tasks whose status passes `filter`.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::TaskStatus;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = background_worker::Worker::new();
    /// worker.submit("ok", || async { Ok(()) }).await.unwrap();
    /// worker.submit("bad", || async { anyhow::bail!("nope") }).await.unwrap();
    /// worker.wait("ok").await;
    /// worker.wait("bad").await;
    ///
    /// let failed = worker.tasks_where(|status| matches!(status, TaskStatus::Failed(_)));
    /// assert_eq!(failed.len(), 1);
    /// assert_eq!(failed[0].id, "bad");
    /// # }
    /// ```
    #[must_use]
    pub fn tasks_where(&self, filter: impl FnMut(&TaskStatus) -> bool) -> Vec<TaskInfo> {
        self.shared().infos(filter)
    }

    /// A cheap summary for health endpoints: counts per status, whether the worker accepts
    /// work, the concurrency limit and how many tasks wait for a permit. Reads counters only.
    #[must_use]
    pub fn health(&self) -> Health {
        self.shared().health()
    }

    /// A stream of every status change from now on: `Pending` at submission, `Running` when the
    /// body starts, then the terminal status, with the time of the change.
    ///
    /// Use it to mirror statuses into a database or a metrics system. The worker never waits for
    /// subscribers: one that falls more than 1024 events behind gets
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged) and resumes with
    /// the oldest events still buffered. Events are built only once someone has subscribed.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{TaskStatus, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::new();
    /// let mut events = worker.subscribe();
    /// worker.submit("job", || async { Ok(()) }).await.unwrap();
    ///
    /// let statuses: Vec<TaskStatus> = [
    ///     events.recv().await.unwrap(),
    ///     events.recv().await.unwrap(),
    ///     events.recv().await.unwrap(),
    /// ].into_iter().map(|event| event.status).collect();
    /// assert_eq!(statuses, [TaskStatus::Pending, TaskStatus::Running, TaskStatus::Completed]);
    /// # }
    /// ```
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.shared().subscribe()
    }

    /// Removes every finished (completed, failed or cancelled) entry and returns how many were
    /// removed. Pending and running tasks are never removed, whatever this races with.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let worker = background_worker::Worker::new();
    /// worker.submit("done", || async { Ok(()) }).await.unwrap();
    /// worker.wait("done").await;
    /// assert_eq!(worker.cleanup_finished_tasks().await, 1);
    /// assert!(!worker.has_task("done"));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Completes at its first poll; cancel safe.
    pub async fn cleanup_finished_tasks(&self) -> usize {
        self.shared().remove_finished()
    }
}
