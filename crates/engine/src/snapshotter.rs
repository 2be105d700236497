//! Snapshots off the shard thread.
//!
//! A shard never serializes a sale while it runs (that stalled every sale of the shard for as
//! long as a big sale took to encode). It asks this thread instead, at most one request per
//! sale at a time, and reads the outcome back between batches. This thread rebuilds the sale
//! exactly as recovery would — its last snapshot plus the **durable** records after it
//! ([`crate::recovery::rebuild_sale`]) — encodes it and replaces the snapshot atomically. It
//! never touches the live state or its lock, and a snapshot holds only durable records by
//! construction (invariant 3), so no flush is needed first. The cost is a transient copy of
//! the sale and the CPU of a replay, on a thread of its own, and the writes of the file.
//! Neither may slow the writers: the thread runs at the lowest normal priority
//! (`taquilla_os::process::run_in_background`), so a shard or flusher that wakes takes the
//! core from it at once, and the file goes out in synced, paced parts
//! (`SnapshotStore::save`), so the log's fsyncs never queue behind a whole snapshot.
//!
//! A failed snapshot (a full disk, say) is retried with exponential delay on the engine's
//! clock ([`Backoff`]), a bounded number of times, with one warning per attempt; after the
//! last the shard waits for its next normal trigger (another `snapshot_every_records`
//! records). The shard never waits for any of it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use taquilla_domain::{SaleId, Timestamp};
use taquilla_log::Lsn;

use crate::Shared;
use crate::limits::{IDLE_WAIT_MS_MAX, SNAPSHOT_RETRIES_MAX, SNAPSHOT_RETRY_FIRST_MS};
use crate::recovery::{encode_snapshot, rebuild_sale};
use crate::shard::FailOnPanic;

/// What a shard hears back about a sale it asked to snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// The sale's snapshot now covers its records up to `seq` (or already did).
    Saved { sale: SaleId, seq: u64 },
    /// Every retry failed: ask again at the next normal trigger.
    GaveUp { sale: SaleId },
}

pub(crate) enum Msg {
    /// Snapshot `sale`, covering at least its records up to `upto`.
    Snapshot {
        sale: SaleId,
        upto: Lsn,
        done: Sender<Done>,
    },
    /// Run the retries due by the clock's now, then answer (tests on a manual clock).
    Sync(tokio::sync::oneshot::Sender<()>),
    /// Finish the requests queued before it (one attempt each, no retries) and exit.
    Stop,
}

/// When a failed snapshot is tried again: after `SNAPSHOT_RETRY_FIRST_MS`, doubling, at most
/// `SNAPSHOT_RETRIES_MAX` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Failed attempts so far.
    failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    RetryAt(Timestamp),
    GiveUp,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { failures: 0 }
    }

    /// Records a failed attempt at `now` and says what comes next.
    pub(crate) fn failed(&mut self, now: Timestamp) -> Next {
        self.failures += 1;
        if self.failures > SNAPSHOT_RETRIES_MAX {
            return Next::GiveUp;
        }
        let delay_ms = SNAPSHOT_RETRY_FIRST_MS << (self.failures - 1);
        Next::RetryAt(Timestamp(now.0 + delay_ms as i64))
    }
}

struct Job {
    sale: SaleId,
    upto: Lsn,
    done: Sender<Done>,
}

struct Retry {
    job: Job,
    at: Timestamp,
    backoff: Backoff,
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Msg>) {
    let _fail_on_panic = FailOnPanic {
        shared: shared.clone(),
        thread: "snapshotter",
        shard: 0,
    };
    if let Err(error) = taquilla_os::process::run_in_background() {
        tracing::warn!(%error, "could not lower the snapshot thread's priority: snapshots may slow the writers");
    }
    let mut retries: Vec<Retry> = Vec::new();
    loop {
        let now = shared.clock.now();
        let wait_ms = retries
            .iter()
            .map(|r| (r.at.0 - now.0).max(0) as u64)
            .min()
            .unwrap_or(IDLE_WAIT_MS_MAX)
            .min(IDLE_WAIT_MS_MAX);
        match rx.recv_timeout(Duration::from_millis(wait_ms)) {
            Ok(Msg::Snapshot { sale, upto, done }) => {
                let job = Job { sale, upto, done };
                attempt(&shared, job, Backoff::new(), &mut retries);
            }
            Ok(Msg::Sync(reply)) => {
                run_due(&shared, &mut retries);
                let _ = reply.send(());
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        run_due(&shared, &mut retries);
    }
    // Requests queued before the stop get one attempt each; retries are dropped (the shard
    // snapshots on shutdown if configured).
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Snapshot { sale, upto, done } = msg {
            attempt(&shared, Job { sale, upto, done }, Backoff::new(), &mut Vec::new());
        }
    }
}

fn run_due(shared: &Shared, retries: &mut Vec<Retry>) {
    let now = shared.clock.now();
    let (due, later): (Vec<Retry>, Vec<Retry>) = std::mem::take(retries).into_iter().partition(|r| r.at <= now);
    *retries = later;
    for r in due {
        attempt(shared, r.job, r.backoff, retries);
    }
}

/// One try at snapshotting `sale`; a failure is scheduled for a retry or given up.
fn attempt(shared: &Shared, job: Job, mut backoff: Backoff, retries: &mut Vec<Retry>) {
    let sale = job.sale;
    match snapshot(shared, sale, job.upto) {
        Ok(seq) => {
            let _ = job.done.send(Done::Saved { sale, seq });
        }
        Err(error) => {
            shared.stats.snapshot_failures.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("taquilla_snapshot_failures_total").increment(1);
            match backoff.failed(shared.clock.now()) {
                Next::RetryAt(at) => {
                    tracing::warn!(
                        sale = sale.0,
                        %error,
                        retry_in_ms = at.0 - shared.clock.now().0,
                        "snapshot failed; retrying later (replay on restart is longer meanwhile)"
                    );
                    retries.push(Retry { job, at, backoff });
                }
                Next::GiveUp => {
                    tracing::warn!(
                        sale = sale.0,
                        %error,
                        "snapshot failed again; giving up until the sale's next snapshot is due"
                    );
                    let _ = job.done.send(Done::GaveUp { sale });
                }
            }
        }
    }
}

/// Rebuilds `sale` from its snapshot and the durable log and saves it; returns the seq its
/// snapshot now covers.
fn snapshot(shared: &Shared, sale: SaleId, upto: Lsn) -> Result<u64, String> {
    // What the shard had appended when it asked: make it durable (sharing the flusher's
    // fsync when one is under way), so the snapshot covers at least that.
    let started = std::time::Instant::now();
    shared.log.flush(upto).map_err(|e| e.to_string())?;
    let rebuilt = rebuild_sale(
        shared.log.as_ref(),
        &shared.snapshots,
        sale,
        shared.config.idempotency_ttl_ms,
    )
    .map_err(|e| e.to_string())?;
    if rebuilt.seq == rebuilt.base_seq {
        // Nothing durable since the snapshot on disk: it is already current.
        return Ok(rebuilt.seq);
    }
    let rebuilt_at = started.elapsed();
    let bytes = encode_snapshot(&rebuilt.state).map_err(|e| e.to_string())?;
    let encoded_at = started.elapsed();
    drop(rebuilt.state);
    let dropped_at = started.elapsed();
    shared
        .snapshots
        .save(sale.0, rebuilt.seq, rebuilt.lsn, &bytes)
        .map_err(|e| e.to_string())?;
    let saved_at = started.elapsed();
    drop(bytes);
    tracing::debug!(
        sale = sale.0,
        rebuild_ms = rebuilt_at.as_millis() as u64,
        encode_ms = (encoded_at - rebuilt_at).as_millis() as u64,
        drop_ms = (dropped_at - encoded_at).as_millis() as u64,
        save_ms = (saved_at - dropped_at).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    shared.stats.snapshots.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("taquilla_snapshots_total").increment(1);
    Ok(rebuilt.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_gives_up() {
        let mut b = Backoff::new();
        let t = Timestamp(1_000_000);
        let mut delays = Vec::new();
        while let Next::RetryAt(at) = b.failed(t) {
            delays.push(at.0 - t.0);
        }
        let expected: Vec<i64> = (0..SNAPSHOT_RETRIES_MAX)
            .map(|i| (SNAPSHOT_RETRY_FIRST_MS << i) as i64)
            .collect();
        assert_eq!(delays, expected);
        assert_eq!(b.failed(t), Next::GiveUp, "stays given up");
    }
}
