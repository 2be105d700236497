//! The loop every follower shares: read the log from a durable named cursor, hand each batch
//! of records to the follower, then persist the position — at most once per
//! [`limits::CURSOR_COMMIT_EVERY`], and when the loop stops. Delivery is at-least-once: after a
//! crash the records since the last commit come again, so a follower must be idempotent.
//!
//! Why not after every batch: a commit is an atomic file replace (two fsyncs and a rename,
//! a journal commit on the log's disk). In a rush the log turns durable hundreds of times a
//! second, and a commit per batch made the follower's fsyncs compete with the log's own.
//!
//! The loop runs on a thread of its own (the cursor blocks while it waits for new records) and
//! stops when its handle is stopped or dropped.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use taquilla_log::cursor::{CursorError, CursorReader, POLL_MAX_RECORDS};
use taquilla_log::{EventLog, Record};

use crate::limits;

/// How long one poll waits for new records: bounds how late a stop is noticed.
const POLL_WAIT: Duration = Duration::from_millis(200);
/// Pause after a failed read before the next try.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A running follower loop.
pub struct FollowerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FollowerHandle {
    /// Stops the loop after its current batch and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("a follower thread panicked");
        }
    }
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts following `log` as cursor `name` (checkpoint in `checkpoint_dir`), calling
/// `on_records` with each batch before its position is committed.
pub fn spawn(
    name: &str,
    log: Arc<dyn EventLog>,
    checkpoint_dir: &Path,
    mut on_records: impl FnMut(&[Record]) + Send + 'static,
) -> Result<FollowerHandle, CursorError> {
    let mut cursor = CursorReader::open(log, checkpoint_dir, name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("taquilla-follow-{name}"))
        .spawn(move || {
            let mut committed_at = Instant::now();
            while !stopping.load(Ordering::Acquire) {
                if let Err(e) = step(&mut cursor, &mut on_records, &mut committed_at) {
                    tracing::error!(cursor = cursor.name(), error = %e, "follower cannot read the log");
                    std::thread::sleep(ERROR_PAUSE);
                }
            }
            if let Err(e) = cursor.commit() {
                tracing::error!(cursor = cursor.name(), error = %e, "follower cannot save its position");
            }
        })?;
    Ok(FollowerHandle {
        stop,
        thread: Some(thread),
    })
}

fn step(
    cursor: &mut CursorReader,
    on_records: &mut impl FnMut(&[Record]),
    committed_at: &mut Instant,
) -> Result<(), CursorError> {
    let records = cursor.poll(POLL_MAX_RECORDS, POLL_WAIT)?;
    if !records.is_empty() {
        on_records(&records);
    }
    if cursor.position() != cursor.committed() && committed_at.elapsed() >= limits::CURSOR_COMMIT_EVERY {
        cursor.commit()?;
        *committed_at = Instant::now();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;
    use std::sync::mpsc;

    /// Commits are spaced out, but stopping saves the position: a follower stopped cleanly
    /// starts again after the last record it was handed.
    #[tokio::test(flavor = "current_thread")]
    async fn stopping_saves_the_position_of_the_last_batch() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_support::engine(&dir.path().join("data"));
        let cursors = dir.path().join("cursors");
        let (seen_tx, seen_rx) = mpsc::channel();
        let follower = spawn("test", engine.log().clone(), &cursors, move |records| {
            let _ = seen_tx.send(records.last().map(|r| r.lsn));
        })
        .unwrap();
        for n in ["a", "b", "c"] {
            engine.create_sale(test_support::sale_spec(n), None).await.unwrap();
        }
        let last = engine.log().durable_lsn();
        // Wait (bounded by the poll timeout, not by a guess) until the follower was handed the last record.
        while seen_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the follower reads on")
            != Some(last)
        {}
        follower.stop();

        let reopened = CursorReader::open(engine.log().clone(), &cursors, "test").unwrap();
        assert_eq!(
            reopened.committed(),
            last,
            "the position of the last batch was saved on stop"
        );
    }
}
