//! Schedules: periodic and cron tasks, each tick an ordinary task of the worker.
//!
//! `Worker::schedule` and its neighbours (`api.rs`) keep every schedule in the worker's
//! `Table` (`table.rs`, with its locking rules); one driver task per worker (`driver.rs`)
//! walks the table's queue of next ticks and submits each due tick through one function,
//! `driver::submit_tick`. Cadences (`cadence.rs`, `cron.rs`) compute tick times from the
//! cadence alone, read against the clock of `clock.rs`.

mod api;
mod cadence;
mod claimer;
mod clock;
mod config;
#[cfg(feature = "cron")]
mod cron;
mod driver;
mod error;
mod info;
mod table;
mod tick;

pub use api::MAX_SCHEDULE_NAME;
pub use config::{Missed, Overlap, Schedule};
#[cfg(feature = "cron")]
pub use error::CronError;
pub use error::ScheduleError;
pub use info::{LastRun, ScheduleInfo};
pub use tick::Tick;

#[cfg(feature = "redis")]
pub(crate) use claimer::{BoxFuture, Claimed, TickBody, TickClaimer};
pub(crate) use table::Schedules;
