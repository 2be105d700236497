//! Every limit of the log, in one place (TigerBeetle's `constants.zig`): record and frame
//! sizes, snapshot and cursor bounds, and the defaults and bounds of a file log's buffers and
//! segments. Units last in names. The relations between them are asserted when compiling,
//! below; messages quote the constants, never a retyped number.

use crate::file::{SEGMENT_HEADER_BYTES, frame};

/// Largest payload one record may carry.
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 1 << 20;
/// Longest correlation id a record may carry.
pub const CORRELATION_ID_MAX_BYTES: usize = 64;
/// Largest body a valid frame can have; anything longer is damage, not a record.
pub const FRAME_BODY_MAX_BYTES: usize =
    frame::BODY_FIXED_MAX_BYTES + CORRELATION_ID_MAX_BYTES + RECORD_PAYLOAD_MAX_BYTES;
/// Largest whole frame (header and body).
pub const FRAME_MAX_BYTES: usize = frame::FRAME_HEADER_BYTES + FRAME_BODY_MAX_BYTES;

/// Largest snapshot body accepted on save and on load: about 20 million holds of one sale.
/// (Loading reads the whole body into memory.)
pub const SNAPSHOT_MAX_BYTES: usize = 1 << 30;

/// A snapshot is written and synced in parts of this size by default
/// (`SnapshotStore::open_with`), with [`SNAPSHOT_WRITE_PAUSE_MS`] between them: at most one
/// part of its data is ever queued in front of the log's next `fdatasync` on the same disk.
pub const SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT: usize = 1 << 20;
/// Pause after each synced part of a snapshot, so the commit path's fsyncs get the disk.
pub const SNAPSHOT_WRITE_PAUSE_MS: u64 = 1;

/// Most records one cursor `poll` returns, whatever is asked.
pub const POLL_MAX_RECORDS: usize = 65_536;
/// Longest cursor name.
pub const CURSOR_NAME_MAX_CHARS: usize = 64;

/// A file log's segment size unless told otherwise (`FileLogOptions::segment_size_bytes`).
pub const SEGMENT_SIZE_BYTES_DEFAULT: u64 = 64 << 20;
/// Every this-many records get an entry in the sparse in-memory index, by default.
pub const INDEX_INTERVAL_RECORDS_DEFAULT: u64 = 1024;
/// Largest encoded batch one `append` accepts, by default; at least one largest frame.
pub const APPEND_BATCH_MAX_BYTES_DEFAULT: usize = 64 << 20;
/// Size of each read buffer of scans and recovery, by default.
pub const READ_BUFFER_BYTES_DEFAULT: usize = 1 << 20;
/// Smallest read buffer a file log uses, whatever its options say.
pub const READ_BUFFER_BYTES_MIN: usize = 64 * 1024;
/// A reader's first read; it doubles per read up to the buffer's size, so a cursor that
/// wants ten records does not read a megabyte.
pub const READ_FIRST_BYTES: usize = 16 * 1024;
/// Read buffers kept for reuse by scans; more concurrent scans allocate their own.
pub const READ_BUFFERS_KEPT: usize = 4;
/// Where recent scans stopped, kept so a follower's next scan starts exactly there.
pub const RESUME_HINTS_KEPT: usize = 8;
/// Zeros written per `write` when preparing or checking a segment.
pub const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// Pause between the background preparer's chunks, so its writes and fsyncs interleave with
/// the commit path's instead of queueing one segment's worth of I/O in front of a flush.
pub const PREPARE_PAUSE_MS: u64 = 1;

// Relations between limits, checked when compiling.
const _: () = {
    assert!(FRAME_MAX_BYTES >= frame::FRAME_HEADER_BYTES + CORRELATION_ID_MAX_BYTES + RECORD_PAYLOAD_MAX_BYTES);
    // A frame's body length is stored in a u32.
    assert!(FRAME_BODY_MAX_BYTES <= u32::MAX as usize);
    // The default options pass `FileLog::open`'s checks.
    assert!(APPEND_BATCH_MAX_BYTES_DEFAULT >= FRAME_MAX_BYTES);
    assert!(SEGMENT_SIZE_BYTES_DEFAULT > SEGMENT_HEADER_BYTES);
    assert!(INDEX_INTERVAL_RECORDS_DEFAULT >= 1);
    assert!(READ_FIRST_BYTES <= READ_BUFFER_BYTES_MIN);
    assert!(SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT >= 1 && SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT <= SNAPSHOT_MAX_BYTES);
    assert!(READ_BUFFER_BYTES_MIN <= READ_BUFFER_BYTES_DEFAULT);
    assert!(POLL_MAX_RECORDS >= 1);
    // A cursor name is a file name.
    assert!(CURSOR_NAME_MAX_CHARS <= 200);
};
