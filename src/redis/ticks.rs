//! Claimed ticks: the mirror as its worker's tick claimer (the core's
//! `schedule::TickClaimer`), registered by [`RedisMirror::start`](crate::RedisMirror::start).
//! Each tick of a schedule is a claimed submission of its run id `NAME@MS` that is claimed
//! once (`scripts/claim.lua`, ARGV[9]): refused over any record of the id, so that one replica
//! runs each tick, and a replica that comes late to a tick that already ended does not run it
//! again.

use std::sync::atomic::Ordering;

use crate::error::SubmitError;
use crate::redis::error::ClaimError;
use crate::redis::mirror::Inner;
use crate::schedule::{BoxFuture, Claimed, TickBody, TickClaimer};

impl TickClaimer for Inner {
    fn claim_tick(&self, run_id: String, body: TickBody) -> BoxFuture<'_, Claimed> {
        Box::pin(async move {
            if self.shared.closing.load(Ordering::Acquire) || self.shared.stop.is_cancelled() {
                return Claimed::Refused {
                    reason: "the redis mirror is closing".to_owned(),
                };
            }
            let claimed = self
                .claimed(run_id, true, true, move |ctx, token| {
                    body(ctx.expect("a context submission has a context"), token.get())
                })
                .await;
            match claimed {
                Ok(_) => Claimed::Here,
                Err(ClaimError::Held { replica, .. }) => Claimed::Elsewhere { replica },
                Err(ClaimError::Submit(SubmitError::ShuttingDown { .. })) => Claimed::ShuttingDown,
                Err(error) => Claimed::Refused {
                    reason: error.to_string(),
                },
            }
        })
    }
}
