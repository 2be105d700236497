//! The second half of group commit: make appended records durable, then answer.
//!
//! The shard appends a batch and hands this thread "flush up to LSN x, then send these
//! replies", and goes on deciding the next batch while the fsync runs. One fsync here covers
//! every batch that arrived meanwhile, so the slower the disk, the larger the group. Every
//! reply — rejections too, since they were decided against state that included earlier, not
//! yet durable batches — waits for durability of everything appended before it was decided.
//! The channel to this thread is bounded: a disk that falls behind stops the shard, whose
//! queue then fills, which callers see as `Overloaded`.
//!
//! The durable point it waits for only moves forward. Like the shard, the thread marks the
//! engine failed if it panics, before the replies it holds are dropped (their callers hear
//! `Stopped`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Receiver;
use taquilla_log::Lsn;

use crate::limits::FLUSH_QUEUE_BATCHES;
use crate::shard::{FailOnPanic, PendingReply};
use crate::{EngineError, Shared};

/// Replies to send once everything up to `upto` is durable.
pub(crate) struct Durable {
    pub upto: Lsn,
    pub replies: Vec<PendingReply>,
}

pub(crate) fn run(shard: usize, shared: Arc<Shared>, rx: Receiver<Durable>) {
    let mut group: Vec<Durable> = Vec::with_capacity(FLUSH_QUEUE_BATCHES);
    let _fail_on_panic = FailOnPanic {
        shared: shared.clone(),
        thread: "flusher",
        shard,
    };
    // The durable point asked for so far: the shard hands over increasing lsns.
    let mut durable_upto = 0;
    while let Ok(first) = rx.recv() {
        group.push(first);
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let upto = group.iter().map(|d| d.upto).max().unwrap_or(0);
        assert!(
            upto >= durable_upto,
            "durable point moved back from {durable_upto} to {upto}"
        );
        durable_upto = upto;
        let result = if shared.failed.load(Ordering::Acquire) {
            Err(())
        } else if upto > shared.log.durable_lsn() {
            let started = Instant::now();
            let r = shared.log.flush(upto);
            metrics::histogram!("taquilla_fsync_seconds").record(started.elapsed().as_secs_f64());
            shared.stats.flushes.fetch_add(1, Ordering::Relaxed);
            // A flush that returns covers what it was asked for: only then is anyone told.
            assert!(
                r.is_err() || shared.log.durable_lsn() >= upto,
                "flush to {upto} returned with the log durable to {}",
                shared.log.durable_lsn()
            );
            r.map_err(|e| {
                tracing::error!(error = %e, "log flush failed: the engine stops");
                // Before any reply: whoever hears "stopped" also sees why.
                shared.failed.store(true, Ordering::Release);
            })
        } else {
            Ok(())
        };
        for d in group.drain(..) {
            for r in d.replies {
                match &result {
                    Ok(()) => r.send(),
                    Err(()) => r.fail(EngineError::Stopped),
                }
            }
        }
    }
}
