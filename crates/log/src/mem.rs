//! [`MemLog`]: an in-memory [`EventLog`] for tests of the layers above the log.
//!
//! Same contract as the file log (it passes the same [`crate::conformance`] suite): same
//! limits, conditional appends, and readers see only "durable" records — `flush` just marks
//! them durable. [`MemLog::after_crash`] gives what a restart would find (the durable prefix),
//! so tests can exercise recovery paths without files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;

use crate::{Append, EventLog, LogError, Lsn, PartitionId, Record, RecordRef, Seq};

/// Records handed to a scan visitor per lock acquisition: the lock is not held while visiting
/// (a visitor may call back into the log), and each chunk costs one reused allocation.
const SCAN_CHUNK_RECORDS: usize = 1024;

#[derive(Default)]
pub struct MemLog {
    state: Mutex<State>,
    durable_cv: Condvar,
}

#[derive(Default, Clone)]
struct State {
    /// Record `i` has lsn `i + 1`. `Arc` so scans copy pointers, not payloads.
    records: Vec<Arc<Record>>,
    next_seq: FxHashMap<PartitionId, Seq>,
    durable_lsn: Lsn,
}

impl MemLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new log holding what a restart after a crash would find: the durable records only.
    pub fn after_crash(&self) -> MemLog {
        let st = self.state.lock();
        let durable = st.durable_lsn as usize;
        let records: Vec<Arc<Record>> = st.records[..durable].to_vec();
        let mut next_seq = FxHashMap::default();
        for r in &records {
            next_seq.insert(r.partition, r.seq + 1);
        }
        MemLog {
            state: Mutex::new(State {
                records,
                next_seq,
                durable_lsn: st.durable_lsn,
            }),
            durable_cv: Condvar::new(),
        }
    }
}

impl EventLog for MemLog {
    fn append(&self, batch: &[Append<'_>]) -> Result<Lsn, LogError> {
        for rec in batch {
            crate::file::frame::validate(rec)?;
        }
        let mut st = self.state.lock();
        let mut pending: FxHashMap<PartitionId, Seq> = FxHashMap::default();
        for rec in batch {
            let next = pending
                .get(&rec.partition)
                .or_else(|| st.next_seq.get(&rec.partition))
                .copied()
                .unwrap_or(1);
            if rec.expected_seq != next {
                return Err(LogError::SeqConflict {
                    partition: rec.partition,
                    expected: rec.expected_seq,
                    actual: next,
                });
            }
            pending.insert(rec.partition, next + 1);
        }
        for rec in batch {
            let lsn = st.records.len() as Lsn + 1;
            st.records.push(Arc::new(Record {
                lsn,
                partition: rec.partition,
                seq: rec.expected_seq,
                timestamp_ms: rec.timestamp_ms,
                // Same normalisation as the file format: an empty id is no id.
                correlation_id: rec.correlation_id.filter(|c| !c.is_empty()).map(str::to_owned),
                payload: rec.payload.to_vec(),
            }));
        }
        st.next_seq.extend(pending);
        Ok(st.records.len() as Lsn)
    }

    fn flush(&self, upto: Lsn) -> Result<(), LogError> {
        let mut st = self.state.lock();
        let upto = upto.min(st.records.len() as Lsn);
        if upto > st.durable_lsn {
            st.durable_lsn = upto;
            self.durable_cv.notify_all();
        }
        Ok(())
    }

    fn last_lsn(&self) -> Lsn {
        self.state.lock().records.len() as Lsn
    }

    fn durable_lsn(&self) -> Lsn {
        self.state.lock().durable_lsn
    }

    fn next_seq(&self, partition: PartitionId) -> Seq {
        self.state.lock().next_seq.get(&partition).copied().unwrap_or(1)
    }

    fn scan(&self, after: Lsn, visit: &mut dyn FnMut(RecordRef<'_>) -> bool) -> Result<(), LogError> {
        let mut chunk: Vec<Arc<Record>> = Vec::new();
        let mut pos = after as usize;
        loop {
            chunk.clear();
            {
                let st = self.state.lock();
                let end = (st.durable_lsn as usize).min(pos.saturating_add(SCAN_CHUNK_RECORDS));
                if pos >= end {
                    return Ok(());
                }
                chunk.extend(st.records[pos..end].iter().cloned());
            }
            for r in &chunk {
                if !visit(Record::as_ref(r)) {
                    return Ok(());
                }
            }
            pos += chunk.len();
        }
    }

    fn wait_durable(&self, after: Lsn, timeout: Duration) -> Lsn {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.state.lock();
        loop {
            if st.durable_lsn > after {
                return st.durable_lsn;
            }
            match deadline {
                Some(d) => {
                    if self.durable_cv.wait_until(&mut st, d).timed_out() {
                        return st.durable_lsn;
                    }
                }
                None => self.durable_cv.wait(&mut st),
            }
        }
    }
}
