//! The event log: the source of truth of every sale.
//!
//! [`EventLog`] is the port. Records are appended in one global order (the [`Lsn`], which is
//! also the cursor of the event feed) and each belongs to a partition, where it has a
//! per-partition sequence number. The log is generic; its user, the engine, keeps each sale
//! in a partition of its own (a sale is a partition of the log). An append is conditional on the partition's expected next
//! sequence number, so a stale writer is fenced. Appends are made durable in groups by
//! [`EventLog::flush`] (group commit: one fsync for everything appended so far).
//!
//! Implementations: [`file::FileLog`] (embedded default: segmented files, length + CRC32C
//! framing) and `mem::MemLog` (tests). Both pass the same `conformance` suite, which a
//! replicated implementation (NATS JetStream, later) must pass too. The memory log and the
//! suite are test code, compiled only with the `test-util` feature (tests and other crates'
//! dev-dependencies enable it), so release builds hold release code.
//!
//! Limits live in [`limits`]; [`fsutil::replace_file`] is the one atomic file replacement
//! (snapshots, cursors).

#[cfg(feature = "test-util")]
pub mod conformance;
pub mod cursor;
pub mod file;
pub mod fsutil;
pub mod limits;
#[cfg(feature = "test-util")]
pub mod mem;
pub mod snapshot;

use std::borrow::Cow;
use std::path::PathBuf;

pub use limits::{CORRELATION_ID_MAX_BYTES, RECORD_PAYLOAD_MAX_BYTES};

/// Global position of a record: 1 for the first record, contiguous. 0 means "before the first".
pub type Lsn = u64;
/// A partition: an independent sequence of records (the engine's sales, one each).
pub type PartitionId = u64;
/// Per-partition sequence number of a record: 1 for the partition's first record, contiguous.
pub type Seq = u64;

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    pub partition: PartitionId,
    /// The sequence number this record must get: the partition's last seq + 1 (1 for a new
    /// partition). Anything else fails the whole batch with [`LogError::SeqConflict`].
    pub expected_seq: Seq,
    pub timestamp_ms: i64,
    pub correlation_id: Option<&'a str>,
    pub payload: &'a [u8],
}

/// A record as read back, borrowing the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub lsn: Lsn,
    pub partition: PartitionId,
    pub seq: Seq,
    pub timestamp_ms: i64,
    pub correlation_id: Option<&'a str>,
    pub payload: &'a [u8],
}

/// An owned record (feed, cursor readers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub lsn: Lsn,
    pub partition: PartitionId,
    pub seq: Seq,
    pub timestamp_ms: i64,
    pub correlation_id: Option<String>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            lsn: self.lsn,
            partition: self.partition,
            seq: self.seq,
            timestamp_ms: self.timestamp_ms,
            correlation_id: self.correlation_id.as_deref(),
            payload: &self.payload,
        }
    }
}

impl RecordRef<'_> {
    pub fn to_owned(&self) -> Record {
        Record {
            lsn: self.lsn,
            partition: self.partition,
            seq: self.seq,
            timestamp_ms: self.timestamp_ms,
            correlation_id: self.correlation_id.map(str::to_owned),
            payload: self.payload.to_vec(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("partition {partition}: expected seq {expected}, but the next seq is {actual}")]
    SeqConflict {
        partition: PartitionId,
        expected: Seq,
        actual: Seq,
    },
    #[error("record too large or malformed: {0}")]
    InvalidRecord(Cow<'static, str>),
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
    #[error("corrupt log: segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("the data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The file system is full (`ENOSPC`, or a quota): nothing of the batch was written and the
    /// log is intact, so writing may resume once there is space again. Not a poison.
    #[error("the disk is full: {0}")]
    StorageFull(std::io::Error),
    /// A previous fsync failed: nothing after it can be trusted durable; the process must stop.
    #[error("the log failed earlier and accepts no more writes")]
    Poisoned,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What recovery found when opening a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub last_lsn: Lsn,
    /// A torn tail (a partial last write that was never acknowledged) that was cut off.
    pub truncated: Option<TruncatedTail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
}

/// The log port. All methods take `&self`: appends from several writers are serialised
/// inside, and `flush` from several threads coalesces into as few fsyncs as possible.
pub trait EventLog: Send + Sync + 'static {
    /// Appends a batch in order, all or nothing, and returns the LSN of its last record (the
    /// current last LSN for an empty batch). Not durable until `flush` covers it. On
    /// [`LogError::StorageFull`] nothing was appended and the log goes on.
    fn append(&self, batch: &[Append<'_>]) -> Result<Lsn, LogError>;

    /// Claims `bytes` of space for appends to come, allocating it now if needed, so that an
    /// [`EventLog::append_reserved`] covered by the claim cannot fail for lack of space.
    /// [`LogError::StorageFull`] if the disk has no room: nothing changed. A writer that must
    /// not apply a change it cannot log reserves before applying it (frame sizes: at most
    /// [`file::frame::encoded_len_max`]). Logs that never run out of space keep the default.
    fn reserve(&self, bytes: u64) -> Result<(), LogError> {
        let _ = bytes;
        Ok(())
    }

    /// [`EventLog::append`], releasing `reserved` bytes the caller reserved (at least the
    /// batch's size, or the append may itself fail with [`LogError::StorageFull`]); what the
    /// batch did not use is released too.
    fn append_reserved(&self, batch: &[Append<'_>], reserved: u64) -> Result<Lsn, LogError> {
        let _ = reserved;
        self.append(batch)
    }

    /// Blocks until every record up to `upto` is durable. Concurrent callers share fsyncs.
    fn flush(&self, upto: Lsn) -> Result<(), LogError>;

    /// The last LSN appended (durable or not).
    fn last_lsn(&self) -> Lsn;

    /// The last LSN known durable. Readers never see records past it.
    fn durable_lsn(&self) -> Lsn;

    /// The seq the partition's next record must carry (1 for an unknown partition).
    fn next_seq(&self, partition: PartitionId) -> Seq;

    /// Visits durable records with LSN > `after`, in order, until `visit` returns false or
    /// the durable end is reached. For replay and feeds; must not allocate per record.
    fn scan(&self, after: Lsn, visit: &mut dyn FnMut(RecordRef<'_>) -> bool) -> Result<(), LogError>;

    /// Convenience over `scan`: up to `max` durable records after `after`.
    fn read(&self, after: Lsn, max: usize) -> Result<Vec<Record>, LogError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        self.scan(after, &mut |r| {
            out.push(r.to_owned());
            out.len() < max
        })?;
        Ok(out)
    }

    /// Blocks until `durable_lsn() > after` or the timeout passes; returns the durable LSN.
    fn wait_durable(&self, after: Lsn, timeout: std::time::Duration) -> Lsn;
}
