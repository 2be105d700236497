//! [`FileLog`]: the embedded event log — segmented files in one directory, group commit.
//!
//! Layout of the data directory:
//! - `LOCK`: held with an exclusive `flock` for the log's lifetime, so two processes (or two
//!   opens in one process) never write the same log.
//! - `<first lsn, 20 digits>.seg`: segments, each an 8-byte magic header then frames (see
//!   [`frame`]). A segment is rolled once it passes `segment_size_bytes`; the finished one is
//!   fsynced then, so a flush only ever has to fsync the current segment.
//! - `next.seg.prealloc`: the next segment being prepared (see below); not part of the log,
//!   deleted at open.
//!
//! Segments are preallocated (`preallocate`, on by default): a segment starts as its header
//! followed by zeros up to `segment_size_bytes`, written and fsynced by a background thread
//! (started once the current segment is half full) before the segment is used, and appends
//! overwrite the zeros. An `fdatasync` after an
//! overwrite inside the file writes only the data, while one after an append must also write
//! the inode for the new size (on ext4, a second synchronous write): this is the commit path's
//! largest cost. The data ends at the first all-zero frame header (a real frame's length is
//! never 0). A sealed segment is cut to its data when it is rolled. The active segment is
//! preallocated at open if it is empty; one that is not (an older log, or a roll that found no
//! prepared segment ready) is rolled as soon as a prepared one is ready.
//!
//! A frame is only ever written into allocated space: before a batch is written (or when a
//! writer claims space ahead, [`EventLog::reserve`]), the log rolls to the next segment or
//! extends the current one with zeros, and a full file system (`ENOSPC`, a quota) shows
//! there, with nothing of the batch written: [`LogError::StorageFull`], the log intact and
//! usable once there is space again. (On a copy-on-write file system an overwrite can still
//! meet `ENOSPC`; that write error poisons the log like any other.)
//!
//! Writes and durability are separate: `append` encodes a batch into a reused buffer and does
//! one `write` under the writer mutex; `flush` does one `fdatasync` for everything written when
//! it starts, on a shared handle, so appends continue while it runs and concurrent flushers
//! share it. A failed fsync poisons the log for good (the kernel may have dropped the dirty
//! pages, so a retry that "succeeds" proves nothing — PostgreSQL's fsyncgate).
//!
//! Readers only see durable records (`lsn <= durable_lsn`), found through a sparse in-memory
//! index (every `index_interval_records`-th record, plus each segment start) so a cursor in the
//! middle of a big log starts near its position.
//!
//! Recovery (`open`) verifies every frame's CRC and the contiguity of LSNs and per-partition
//! seqs. A damaged tail of the last segment with no valid frame after it is a torn, never
//! acknowledged write: it is cut off (or zeroed, inside a preallocated segment, so that no
//! stale frame can ever follow new ones); any other damage is reported as
//! [`LogError::Corrupt`]. After the data, a segment must hold only zeros.

pub mod frame;
mod prepare;
mod reader;
mod recover;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;

use crate::limits::{
    APPEND_BATCH_MAX_BYTES_DEFAULT, FRAME_MAX_BYTES, INDEX_INTERVAL_RECORDS_DEFAULT, READ_BUFFER_BYTES_DEFAULT,
    READ_BUFFER_BYTES_MIN, READ_BUFFERS_KEPT, RESUME_HINTS_KEPT, SEGMENT_SIZE_BYTES_DEFAULT, ZERO_CHUNK_BYTES,
};
use crate::{Append, EventLog, LogError, Lsn, PartitionId, RecordRef, RecoveryReport, Seq, TruncatedTail};
use prepare::prepare_segment;
use reader::{FrameReader, Next};
use recover::recover;

/// First bytes of every segment: name, two reserved bytes, segment format version.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TQLOG\0\0\x01";
/// Length of the segment header.
pub const SEGMENT_HEADER_BYTES: u64 = SEGMENT_MAGIC.len() as u64;
/// Name of the lock file in the data directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// Name of the segment being prepared (zero-filled) for the next roll.
pub const PREPARED_FILE_NAME: &str = "next.seg.prealloc";
/// The unit a disk writes whole (at least): a torn write leaves whole sectors unwritten.
const SECTOR_BYTES: u64 = 512;

/// Tuning of a [`FileLog`].
#[derive(Debug, Clone)]
pub struct FileLogOptions {
    /// A segment is rolled when a batch would take it past this size (a single batch larger
    /// than this still goes into one segment).
    pub segment_size_bytes: u64,
    /// Every this-many records get an entry in the in-memory sparse index.
    pub index_interval_records: u64,
    /// Largest encoded batch one `append` accepts; larger batches are rejected whole.
    pub append_batch_max_bytes: usize,
    /// Size of each read buffer used by scans and recovery (at least
    /// [`READ_BUFFER_BYTES_MIN`]).
    pub read_buffer_bytes: usize,
    /// Zero-fill segments to `segment_size_bytes` before use (see the module docs).
    pub preallocate: bool,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            segment_size_bytes: SEGMENT_SIZE_BYTES_DEFAULT,
            index_interval_records: INDEX_INTERVAL_RECORDS_DEFAULT,
            append_batch_max_bytes: APPEND_BATCH_MAX_BYTES_DEFAULT,
            read_buffer_bytes: READ_BUFFER_BYTES_DEFAULT,
            preallocate: true,
        }
    }
}

/// The file name of the segment whose first record is `first_lsn`.
pub fn segment_file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}.seg")
}

fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The embedded, file-backed [`EventLog`].
pub struct FileLog {
    dir: PathBuf,
    opts: FileLogOptions,
    writer: Mutex<Writer>,
    /// Held by the one thread doing an fsync; concurrent flushers queue on it and re-check.
    sync_lock: Mutex<()>,
    last_lsn: AtomicU64,
    durable_lsn: AtomicU64,
    durable_mx: Mutex<()>,
    durable_cv: Condvar,
    poisoned: AtomicBool,
    catalog: RwLock<Catalog>,
    read_buffers: Mutex<Vec<Vec<u8>>>,
    /// Ring of recent scan end positions (lsn of the next frame, its segment and offset), so
    /// a follower's next scan starts exactly there instead of at the previous sparse-index
    /// entry (up to `index_interval_records` frames back).
    resume_hints: Mutex<([IndexEntry; RESUME_HINTS_KEPT], usize)>,
    /// The background preparation of the next segment, if one was started.
    preparer: Mutex<Option<JoinHandle<()>>>,
    /// Set by the preparer once `PREPARED_FILE_NAME` is complete and durable.
    prepared_ready: Arc<AtomicBool>,
    /// Asks a running preparer to stop (the log is being dropped).
    prepare_cancel: Arc<AtomicBool>,
    /// Set when a preparation failed (e.g. a full disk): no more are tried until the next
    /// roll, so the preparer competes with appends for the last free space at most once per
    /// segment.
    prepare_failed: Arc<AtomicBool>,
    /// Declared last so it is dropped (unlocked) after everything else is closed.
    _lock_file: File,
}

/// State changed by appends.
struct Writer {
    /// The current segment, opened for positional writes; shared with flushers.
    file: Arc<File>,
    segment_start_lsn: Lsn,
    /// Where the data ends (the next frame goes here).
    segment_len_bytes: u64,
    /// The file's length: past `segment_len_bytes` when the segment is preallocated.
    file_len_bytes: u64,
    /// Whether the next segment's preparation was started for this one.
    next_requested: bool,
    last_lsn: Lsn,
    next_seq: FxHashMap<PartitionId, Seq>,
    /// Per-batch scratch, reused: next seqs of the partitions a batch touches.
    pending_seq: FxHashMap<PartitionId, Seq>,
    /// Per-batch scratch, reused: the encoded batch.
    buf: Vec<u8>,
    /// Per-batch scratch, reused: (lsn, offset within `buf`) of records to index.
    marks: Vec<(Lsn, u64)>,
    /// Bytes writers have claimed ([`EventLog::reserve`]) and not yet appended: the space
    /// allocated after the data is always at least this (see [`FileLog::allocate`]).
    reserved_bytes: u64,
}

/// Where records are: segments and the sparse index. Only grows.
struct Catalog {
    segments: Vec<SegmentMeta>,
    /// Sorted by lsn; includes each segment's first record.
    index: Vec<IndexEntry>,
}

struct SegmentMeta {
    first_lsn: Lsn,
    path: PathBuf,
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    lsn: Lsn,
    segment: usize,
    offset: u64,
}

fn corrupt(segment: &Path, offset: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        segment: segment.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// A full file system or quota: the one I/O failure a write may recover from.
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn check_options(opts: &FileLogOptions) -> Result<(), LogError> {
    if opts.segment_size_bytes <= SEGMENT_HEADER_BYTES {
        return Err(LogError::InvalidOptions(format!(
            "segment_size_bytes must be more than the {SEGMENT_HEADER_BYTES}-byte header"
        )));
    }
    if opts.index_interval_records == 0 {
        return Err(LogError::InvalidOptions(
            "index_interval_records must be at least 1".into(),
        ));
    }
    if opts.append_batch_max_bytes < FRAME_MAX_BYTES {
        return Err(LogError::InvalidOptions(format!(
            "append_batch_max_bytes must hold the largest frame ({FRAME_MAX_BYTES} bytes)"
        )));
    }
    Ok(())
}

/// Takes the data directory's lock file, held for the log's lifetime.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let lock_path = dir.join(LOCK_FILE_NAME);
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    match lock_file.try_lock() {
        Ok(()) => Ok(lock_file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked(lock_path)),
        Err(std::fs::TryLockError::Error(e)) => Err(LogError::Io(e)),
    }
}

impl FileLog {
    /// Opens (creating if absent) the log in `dir`, recovering what is on disk.
    pub fn open(dir: &Path, opts: FileLogOptions) -> Result<(FileLog, RecoveryReport), LogError> {
        check_options(&opts)?;
        std::fs::create_dir_all(dir)?;
        let lock_file = lock_dir(dir)?;
        // A preparation cut off by a crash or a drop: never part of the log.
        let prepared = dir.join(PREPARED_FILE_NAME);
        match std::fs::remove_file(&prepared) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(LogError::Io(e)),
            _ => {}
        }
        let opts = FileLogOptions {
            read_buffer_bytes: opts.read_buffer_bytes.max(READ_BUFFER_BYTES_MIN),
            ..opts
        };
        let rec = recover(dir, &opts)?;
        let last = rec
            .catalog
            .segments
            .last()
            .ok_or_else(|| corrupt(dir, 0, "no segment after recovery"))?;
        let mut file_len_bytes = rec.last_segment_file_len_bytes;
        if opts.preallocate
            && rec.last_segment_len_bytes == SEGMENT_HEADER_BYTES
            && file_len_bytes < opts.segment_size_bytes
        {
            // An empty active segment (a new log, or a roll that found nothing prepared):
            // swap in a preallocated one now, since nothing has to be carried over. On a full
            // disk the log opens all the same, on the plain segment (appends allocate as
            // they go, and answer `StorageFull` until there is space).
            match prepare_segment(&prepared, opts.segment_size_bytes, &AtomicBool::new(false), None) {
                Ok(_) => {
                    std::fs::rename(&prepared, &last.path)?;
                    sync_dir(dir)?;
                    file_len_bytes = opts.segment_size_bytes;
                }
                Err(e) if is_no_space(&e) => {
                    std::fs::remove_file(&prepared)?;
                    tracing::warn!(error = %e, "no space to preallocate the log's segment; opening without");
                }
                Err(e) => return Err(LogError::Io(e)),
            }
        }
        let writer = Writer {
            file: Arc::new(OpenOptions::new().write(true).open(&last.path)?),
            segment_start_lsn: last.first_lsn,
            segment_len_bytes: rec.last_segment_len_bytes,
            file_len_bytes,
            next_requested: false,
            last_lsn: rec.report.last_lsn,
            next_seq: rec.next_seq,
            pending_seq: FxHashMap::default(),
            buf: Vec::new(),
            marks: Vec::new(),
            reserved_bytes: 0,
        };
        let log = FileLog::assemble(dir, opts, writer, rec.catalog, lock_file);
        log.maybe_prepare_next(&mut log.writer.lock());
        Ok((log, rec.report))
    }

    /// The log over what recovery rebuilt: everything on disk is durable.
    fn assemble(dir: &Path, opts: FileLogOptions, writer: Writer, catalog: Catalog, lock_file: File) -> FileLog {
        let last_lsn = writer.last_lsn;
        let no_hint = IndexEntry {
            lsn: 0,
            segment: 0,
            offset: 0,
        };
        FileLog {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(writer),
            sync_lock: Mutex::new(()),
            last_lsn: AtomicU64::new(last_lsn),
            durable_lsn: AtomicU64::new(last_lsn),
            durable_mx: Mutex::new(()),
            durable_cv: Condvar::new(),
            poisoned: AtomicBool::new(false),
            catalog: RwLock::new(catalog),
            read_buffers: Mutex::new(Vec::new()),
            resume_hints: Mutex::new(([no_hint; RESUME_HINTS_KEPT], 0)),
            preparer: Mutex::new(None),
            prepared_ready: Arc::new(AtomicBool::new(false)),
            prepare_cancel: Arc::new(AtomicBool::new(false)),
            prepare_failed: Arc::new(AtomicBool::new(false)),
            _lock_file: lock_file,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Paths of the segments, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.catalog.read().segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Whether an earlier I/O failure has stopped the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(LogError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Any failure on the write path leaves the file in an unknown state: stop for good.
    fn poison<E>(&self, e: E) -> E {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(dir = %self.dir.display(), "event log poisoned by an I/O failure");
        e
    }

    /// Closes the current segment (cut to its data, fsynced) and starts a new one at
    /// `w.last_lsn + 1`: the prepared one if it is ready, else a new file.
    fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        // Only a segment with records is left, and its data is all inside the file.
        assert!(w.segment_start_lsn <= w.last_lsn, "roll of a segment without records");
        assert!(
            w.segment_len_bytes > SEGMENT_HEADER_BYTES,
            "roll of a segment without data"
        );
        assert!(
            w.segment_len_bytes <= w.file_len_bytes,
            "segment data past the file's end"
        );
        if w.file_len_bytes > w.segment_len_bytes {
            w.file
                .set_len(w.segment_len_bytes)
                .map_err(|e| self.poison(LogError::Io(e)))?;
            w.file_len_bytes = w.segment_len_bytes;
        }
        w.file.sync_data().map_err(|e| self.poison(LogError::Io(e)))?;
        let first_lsn = w.last_lsn + 1;
        let path = self.dir.join(segment_file_name(first_lsn));
        let (file, file_len_bytes) = match self.take_prepared() {
            Some((file, len)) => {
                std::fs::rename(self.dir.join(PREPARED_FILE_NAME), &path).map_err(|e| self.poison(LogError::Io(e)))?;
                (file, len)
            }
            None => (self.new_plain_segment(&path)?, SEGMENT_HEADER_BYTES),
        };
        // The new name must be durable before a flush can call records in it durable.
        sync_dir(&self.dir).map_err(|e| self.poison(LogError::Io(e)))?;
        w.file = Arc::new(file);
        w.segment_start_lsn = first_lsn;
        w.segment_len_bytes = SEGMENT_HEADER_BYTES;
        w.file_len_bytes = file_len_bytes;
        let mut cat = self.catalog.write();
        let segment = cat.segments.len();
        // Segments start in LSN order, the new one right after the last record.
        assert!(
            cat.segments.last().is_some_and(|s| s.first_lsn < first_lsn),
            "roll to lsn {first_lsn} does not follow the last segment"
        );
        cat.segments.push(SegmentMeta { first_lsn, path });
        cat.index.push(IndexEntry {
            lsn: first_lsn,
            segment,
            offset: SEGMENT_HEADER_BYTES,
        });
        drop(cat);
        assert_eq!(w.segment_start_lsn, w.last_lsn + 1, "a roll starts at last + 1");
        w.next_requested = false;
        // A preparation that failed (a full disk) is tried again once per segment.
        self.prepare_failed.store(false, Ordering::Release);
        self.maybe_prepare_next(w);
        Ok(())
    }

    /// A new segment without preallocation: the header only. On a full disk the file is
    /// removed again and the error is [`LogError::StorageFull`]: the log stays where it was.
    fn new_plain_segment(&self, path: &Path) -> Result<File, LogError> {
        let created = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(path)
            .and_then(|mut f| {
                f.write_all(&SEGMENT_MAGIC)?;
                Ok(f)
            });
        match created {
            Ok(f) => Ok(f),
            Err(e) if is_no_space(&e) => match std::fs::remove_file(path) {
                Ok(()) => Err(LogError::StorageFull(e)),
                Err(rm) if rm.kind() == std::io::ErrorKind::NotFound => Err(LogError::StorageFull(e)),
                Err(rm) => Err(self.poison(LogError::Io(rm))),
            },
            Err(e) => Err(self.poison(LogError::Io(e))),
        }
    }

    /// Bytes that can be appended without allocating: the allocated space after the data,
    /// up to the segment's size (past it a batch rolls to the next segment), or all of it in
    /// a segment without records (a batch larger than a segment goes into one segment).
    fn room(&self, w: &Writer) -> u64 {
        let end = if w.segment_len_bytes > SEGMENT_HEADER_BYTES {
            w.file_len_bytes.min(self.opts.segment_size_bytes)
        } else {
            w.file_len_bytes
        };
        end.saturating_sub(w.segment_len_bytes)
    }

    /// Makes sure `needed` bytes can be appended without allocating: by rolling to the next
    /// segment (the prepared one if ready) when they do not fit in this one, then by
    /// extending the file with zeros. Frames are only ever written into allocated space, so
    /// a full disk shows here, before anything is written: [`LogError::StorageFull`], and the
    /// log is as it was.
    fn allocate(&self, w: &mut Writer, needed: u64) -> Result<(), LogError> {
        if self.room(w) >= needed {
            return Ok(());
        }
        let nonempty = w.segment_len_bytes > SEGMENT_HEADER_BYTES;
        let full = w.segment_len_bytes + needed > self.opts.segment_size_bytes;
        // A segment without enough preallocated space is left as soon as a prepared one is ready.
        if nonempty && (full || self.prepared_ready.load(Ordering::Acquire)) {
            self.roll(w)?;
        }
        if self.room(w) < needed {
            self.extend(w, needed)?;
        }
        assert!(self.room(w) >= needed, "allocated {} of {needed} bytes", self.room(w));
        Ok(())
    }

    /// Extends the current segment with zeros so that exactly `needed` bytes fit after its
    /// data (no more: a segment without preallocation is left for a prepared one as soon as
    /// one is ready). Zeros after the data are what a preallocated segment holds, so recovery
    /// reads them as its end either way.
    fn extend(&self, w: &mut Writer, needed: u64) -> Result<(), LogError> {
        let target = w.segment_len_bytes + needed;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = w.file_len_bytes;
        while at < target {
            let n = (target - at).min(ZERO_CHUNK_BYTES as u64) as usize;
            if let Err(e) = w.file.write_all_at(&zeros[..n], at) {
                if !is_no_space(&e) {
                    return Err(self.poison(LogError::Io(e)));
                }
                // Give the space back: only zeros were written past the old end.
                w.file
                    .set_len(w.file_len_bytes)
                    .map_err(|e| self.poison(LogError::Io(e)))?;
                return Err(LogError::StorageFull(e));
            }
            at += n as u64;
        }
        w.file_len_bytes = target;
        Ok(())
    }

    /// Checks the batch's seqs (each partition's next, in order) and encodes its frames into
    /// the writer's scratch buffer, noting which records the sparse index gets. Returns the
    /// batch's last lsn; writes nothing.
    fn encode_batch(&self, w: &mut Writer, batch: &[Append<'_>]) -> Result<Lsn, LogError> {
        w.buf.clear();
        w.marks.clear();
        w.pending_seq.clear();
        let interval = self.opts.index_interval_records;
        let mut cur: Option<(PartitionId, Seq)> = None;
        let mut lsn = w.last_lsn;
        for rec in batch {
            let next = match cur {
                Some((p, next)) if p == rec.partition => next,
                _ => {
                    if let Some((p, next)) = cur {
                        w.pending_seq.insert(p, next);
                    }
                    w.pending_seq
                        .get(&rec.partition)
                        .or_else(|| w.next_seq.get(&rec.partition))
                        .copied()
                        .unwrap_or(1)
                }
            };
            if rec.expected_seq != next {
                return Err(LogError::SeqConflict {
                    partition: rec.partition,
                    expected: rec.expected_seq,
                    actual: next,
                });
            }
            cur = Some((rec.partition, next + 1));
            lsn += 1;
            if (lsn - 1).is_multiple_of(interval) {
                w.marks.push((lsn, w.buf.len() as u64));
            }
            frame::encode(&mut w.buf, lsn, rec);
            if w.buf.len() > self.opts.append_batch_max_bytes {
                return Err(LogError::InvalidRecord(
                    format!(
                        "batch larger than append_batch_max_bytes ({})",
                        self.opts.append_batch_max_bytes
                    )
                    .into(),
                ));
            }
        }
        if let Some((p, next)) = cur {
            w.pending_seq.insert(p, next);
        }
        Ok(lsn)
    }

    /// Writes the encoded batch after the segment's data; returns where it starts.
    fn write_batch(&self, w: &mut Writer) -> Result<u64, LogError> {
        let base = w.segment_len_bytes;
        if let Err(e) = w.file.write_all_at(&w.buf, base) {
            // Part of the batch may be in the file: a later append after it would look like
            // corruption at recovery. Stop instead.
            return Err(self.poison(LogError::Io(e)));
        }
        w.segment_len_bytes += w.buf.len() as u64;
        // The segment's data only grows.
        assert!(w.segment_len_bytes > base, "an append wrote nothing");
        w.file_len_bytes = w.file_len_bytes.max(w.segment_len_bytes);
        self.maybe_prepare_next(w);
        Ok(base)
    }

    /// Adds the batch's marked records (written at `base`) to the sparse index.
    fn index_batch(&self, w: &Writer, base: u64) {
        if w.marks.is_empty() {
            return;
        }
        let mut cat = self.catalog.write();
        let segment = cat.segments.len() - 1;
        for &(mark_lsn, rel) in &w.marks {
            if mark_lsn != w.segment_start_lsn {
                cat.index.push(IndexEntry {
                    lsn: mark_lsn,
                    segment,
                    offset: base + rel,
                });
            }
        }
    }

    fn take_buffer(&self) -> Vec<u8> {
        self.read_buffers
            .lock()
            .pop()
            .unwrap_or_else(|| vec![0; self.opts.read_buffer_bytes])
    }

    fn return_buffer(&self, mut buf: Vec<u8>) {
        // A buffer grown for a huge frame is cut back so idle memory stays bounded.
        buf.truncate(self.opts.read_buffer_bytes);
        buf.shrink_to(self.opts.read_buffer_bytes);
        let mut kept = self.read_buffers.lock();
        if kept.len() < READ_BUFFERS_KEPT {
            kept.push(buf);
        }
    }

    fn scan_with(
        &self,
        reader: &mut Option<FrameReader>,
        buf: &mut Option<Vec<u8>>,
        after: Lsn,
        durable: Lsn,
        visit: &mut dyn FnMut(RecordRef<'_>) -> bool,
    ) -> Result<(), LogError> {
        let (start, mut path) = self.scan_start(after + 1)?;
        let (mut segment, mut expected) = (start.segment, start.lsn);
        let file = File::open(&path)?;
        let r = reader.insert(FrameReader::new(file, start.offset, buf.take().unwrap_or_default()));
        while expected <= durable {
            match r.next()? {
                Next::Record { record, offset } => {
                    if record.lsn != expected {
                        return Err(corrupt(
                            &path,
                            offset,
                            format!("lsn {}, expected {expected}", record.lsn),
                        ));
                    }
                    expected += 1;
                    if record.lsn > after && !visit(record) {
                        break;
                    }
                }
                Next::Eof => {
                    // Segments before the current one end at a frame boundary; move on.
                    segment += 1;
                    path = self.segment_starting_at(segment, expected, &path, r.offset())?;
                    r.reset(File::open(&path)?, SEGMENT_HEADER_BYTES);
                }
                Next::Bad { offset, reason } => return Err(corrupt(&path, offset, reason)),
            }
        }
        // The reader is now at the frame with lsn `expected`: remember that for the next scan.
        self.remember_resume(IndexEntry {
            lsn: expected,
            segment,
            offset: r.offset(),
        });
        Ok(())
    }

    /// Where a scan for `target` starts: the nearest index entry or resume hint at or
    /// before it, and its segment's path.
    fn scan_start(&self, target: Lsn) -> Result<(IndexEntry, PathBuf), LogError> {
        let cat = self.catalog.read();
        let i = cat.index.partition_point(|e| e.lsn <= target);
        let mut entry = i
            .checked_sub(1)
            .and_then(|i| cat.index.get(i))
            .copied()
            .ok_or_else(|| corrupt(&self.dir, 0, format!("no index entry for lsn {target}")))?;
        for hint in &self.resume_hints.lock().0 {
            if hint.lsn <= target && hint.lsn > entry.lsn {
                entry = *hint;
            }
        }
        Ok((entry, cat.segments[entry.segment].path.clone()))
    }

    /// The path of segment number `segment`, which must start at lsn `expected` (a scan
    /// reached the end of the previous one, `ended`, at `offset`).
    fn segment_starting_at(
        &self,
        segment: usize,
        expected: Lsn,
        ended: &Path,
        offset: u64,
    ) -> Result<PathBuf, LogError> {
        match self.catalog.read().segments.get(segment) {
            Some(s) if s.first_lsn == expected => Ok(s.path.clone()),
            _ => Err(corrupt(ended, offset, format!("segment ends before lsn {expected}"))),
        }
    }

    fn remember_resume(&self, at: IndexEntry) {
        let mut hints = self.resume_hints.lock();
        let slot = hints.1;
        hints.0[slot] = at;
        hints.1 = (slot + 1) % RESUME_HINTS_KEPT;
    }
}

impl EventLog for FileLog {
    fn append(&self, batch: &[Append<'_>]) -> Result<Lsn, LogError> {
        self.append_reserved(batch, 0)
    }

    fn reserve(&self, bytes: u64) -> Result<(), LogError> {
        let mut guard = self.writer.lock();
        self.check_poisoned()?;
        let w = &mut *guard;
        self.allocate(w, w.reserved_bytes + bytes)?;
        w.reserved_bytes += bytes;
        Ok(())
    }

    fn append_reserved(&self, batch: &[Append<'_>], reserved: u64) -> Result<Lsn, LogError> {
        for rec in batch {
            frame::validate(rec)?;
        }
        let mut guard = self.writer.lock();
        self.check_poisoned()?;
        let w = &mut *guard;
        if batch.is_empty() {
            assert!(reserved <= w.reserved_bytes, "released more than was reserved");
            w.reserved_bytes -= reserved;
            return Ok(w.last_lsn);
        }
        assert_eq!(
            w.last_lsn,
            self.last_lsn.load(Ordering::Relaxed),
            "last lsn out of step"
        );
        // On any conflict nothing was written: the scratch is dropped at the next batch.
        let lsn = self.encode_batch(w, batch)?;
        assert!(
            reserved <= w.reserved_bytes,
            "released {reserved} bytes of {} reserved",
            w.reserved_bytes
        );
        w.reserved_bytes -= reserved;
        // Space for the batch and for what others still hold reserved. Within the caller's
        // claim this allocates nothing; otherwise a full disk fails here, nothing written.
        if let Err(e) = self.allocate(w, w.buf.len() as u64 + w.reserved_bytes) {
            w.reserved_bytes += reserved;
            return Err(e);
        }
        let base = self.write_batch(w)?;
        for (&p, &next) in &w.pending_seq {
            w.next_seq.insert(p, next);
        }
        self.index_batch(w, base);
        // LSNs are contiguous: the batch took exactly the next ones.
        assert_eq!(lsn, w.last_lsn + batch.len() as u64, "batch lsns not contiguous");
        w.last_lsn = lsn;
        self.last_lsn.store(lsn, Ordering::Release);
        assert!(
            self.durable_lsn.load(Ordering::Acquire) <= lsn,
            "durable past the last lsn"
        );
        // Keep the scratch buffer from pinning a huge batch's memory forever.
        if w.buf.capacity() > 4 * self.opts.read_buffer_bytes {
            w.buf = Vec::new();
        }
        Ok(lsn)
    }

    fn flush(&self, upto: Lsn) -> Result<(), LogError> {
        self.check_poisoned()?;
        let upto = upto.min(self.last_lsn.load(Ordering::Acquire));
        if self.durable_lsn.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let _sync = self.sync_lock.lock();
        // Another flusher may have covered us (or failed) while we queued.
        self.check_poisoned()?;
        if self.durable_lsn.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let (target, file) = {
            let w = self.writer.lock();
            (w.last_lsn, Arc::clone(&w.file))
        };
        // Earlier segments were fsynced when rolled, so the current one is all that can be
        // dirty up to `target`.
        assert!(target >= upto, "flush to {upto} past the last lsn {target}");
        if let Err(e) = file.sync_data() {
            return Err(self.poison(LogError::Io(e)));
        }
        // One flusher at a time (sync_lock): the durable point only moves forward, and never
        // past what was appended.
        let before = self.durable_lsn.fetch_max(target, Ordering::AcqRel);
        assert!(before <= target, "durable lsn moved back from {before} to {target}");
        assert!(
            target <= self.last_lsn.load(Ordering::Acquire),
            "durable past the last lsn"
        );
        let _g = self.durable_mx.lock();
        self.durable_cv.notify_all();
        Ok(())
    }

    fn last_lsn(&self) -> Lsn {
        self.last_lsn.load(Ordering::Acquire)
    }

    fn durable_lsn(&self) -> Lsn {
        self.durable_lsn.load(Ordering::Acquire)
    }

    fn next_seq(&self, partition: PartitionId) -> Seq {
        self.writer.lock().next_seq.get(&partition).copied().unwrap_or(1)
    }

    fn scan(&self, after: Lsn, visit: &mut dyn FnMut(RecordRef<'_>) -> bool) -> Result<(), LogError> {
        let durable = self.durable_lsn();
        if after >= durable {
            return Ok(());
        }
        let mut buf = Some(self.take_buffer());
        let mut reader = None;
        let result = self.scan_with(&mut reader, &mut buf, after, durable, visit);
        if let Some(r) = reader {
            self.return_buffer(r.into_buffer());
        }
        result
    }

    fn wait_durable(&self, after: Lsn, timeout: Duration) -> Lsn {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.durable_mx.lock();
        loop {
            let d = self.durable_lsn.load(Ordering::Acquire);
            if d > after {
                return d;
            }
            match deadline {
                Some(deadline) => {
                    if self.durable_cv.wait_until(&mut g, deadline).timed_out() {
                        return self.durable_lsn.load(Ordering::Acquire);
                    }
                }
                None => self.durable_cv.wait(&mut g),
            }
        }
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        self.prepare_cancel.store(true, Ordering::Release);
        if let Some(preparer) = self.preparer.get_mut().take() {
            let _ = preparer.join();
        }
        let _ = std::fs::remove_file(self.dir.join(PREPARED_FILE_NAME));
    }
}
