//! The loop every follower shares: read the log from a durable named cursor, hand each batch
//! of records to the follower, then persist the position. Delivery is at-least-once: after a
//! crash the records since the last commit come again, so a follower must be idempotent.
//!
//! The loop runs on a thread of its own (the cursor blocks while it waits for new records) and
//! stops when its handle is stopped or dropped.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use taquilla_log::cursor::{CursorError, CursorReader, POLL_MAX_RECORDS};
use taquilla_log::{EventLog, Record};

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
            while !stopping.load(Ordering::Acquire) {
                if let Err(e) = step(&mut cursor, &mut on_records) {
                    tracing::error!(cursor = cursor.name(), error = %e, "follower cannot read the log");
                    std::thread::sleep(ERROR_PAUSE);
                }
            }
        })?;
    Ok(FollowerHandle {
        stop,
        thread: Some(thread),
    })
}

fn step(cursor: &mut CursorReader, on_records: &mut impl FnMut(&[Record])) -> Result<(), CursorError> {
    let records = cursor.poll(POLL_MAX_RECORDS, POLL_WAIT)?;
    if records.is_empty() {
        return Ok(());
    }
    on_records(&records);
    cursor.commit()
}
