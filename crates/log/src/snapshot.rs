//! [`SnapshotStore`]: one snapshot per partition, so recovery replays only the log after it.
//!
//! A snapshot is a cache of a fold of the log, never the source of truth: if one is missing,
//! corrupt or unreadable, the caller rebuilds state from the log. `load` therefore reports
//! damage as a distinct [`SnapshotError::Corrupt`] the caller can choose to ignore, rather than
//! something that stops the process.
//!
//! The engine keeps one snapshot per sale (a sale is a partition of the log).
//!
//! File `dir/p-<partition>.snap`: a 48-byte header then the opaque body.
//! `[8 magic][u32 LE format version][u64 LE partition][u64 LE seq][u64 LE lsn][u64 LE len]
//! [u32 LE crc32c]`; the CRC covers the header fields after the magic up to `len`, then the
//! body, so a damaged seq or lsn is caught as well as a damaged body. Writes are atomic
//! ([`crate::fsutil::replace_file_with`]), and paced: the body goes out in synced parts, so a
//! big sale's snapshot never queues hundreds of MB on the disk ahead of the log's fsyncs.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::limits::SNAPSHOT_MAX_BYTES;
use crate::limits::{SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT, SNAPSHOT_WRITE_PAUSE_MS};
use crate::{Lsn, PartitionId, Seq, fsutil};

const MAGIC: [u8; 8] = *b"TQSNAP\0\0";
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 8 * 4 + 4;
/// Snapshots hold the sales' state: readable by the owner only.
const FILE_MODE: u32 = 0o600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub partition: PartitionId,
    /// Seq of the last record folded into the snapshot.
    pub seq: Seq,
    /// LSN of the last record folded into the snapshot: replay resumes after it.
    pub lsn: Lsn,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file exists but can't be trusted. Snapshots are a cache: ignore it and replay.
    #[error("corrupt snapshot {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("snapshot of {len} bytes exceeds the limit of {max} bytes", max = SNAPSHOT_MAX_BYTES)]
    TooLarge { len: usize },
    #[error("snapshot I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// How a [`SnapshotStore`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// A snapshot is written and synced in parts of this many bytes (at least 1), with
    /// [`SNAPSHOT_WRITE_PAUSE_MS`] between them ([`fsutil::write_paced`]).
    pub write_chunk_bytes: usize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            write_chunk_bytes: SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT,
        }
    }
}

/// Snapshots of all partitions, in one directory.
pub struct SnapshotStore {
    dir: PathBuf,
    opts: SnapshotOptions,
}

impl SnapshotStore {
    /// Opens (creating if absent) the store in `dir` and removes temp files of interrupted saves.
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        Self::open_with(dir, SnapshotOptions::default())
    }

    /// [`SnapshotStore::open`] with options. A `write_chunk_bytes` of 0 is taken as 1.
    pub fn open_with(dir: &Path, opts: SnapshotOptions) -> Result<Self, SnapshotError> {
        std::fs::create_dir_all(dir)?;
        fsutil::remove_temp_files(dir)?;
        let opts = SnapshotOptions {
            write_chunk_bytes: opts.write_chunk_bytes.max(1),
        };
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            opts,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a partition's snapshot.
    pub fn path(&self, partition: PartitionId) -> PathBuf {
        self.dir.join(format!("p-{partition}.snap"))
    }

    /// Atomically replaces the partition's snapshot: a crash leaves either the old or the new.
    /// The new one is written in synced parts ([`SnapshotOptions::write_chunk_bytes`]) to a temp
    /// file, which replaces the old one only once complete.
    pub fn save(&self, partition: PartitionId, seq: Seq, lsn: Lsn, bytes: &[u8]) -> Result<(), SnapshotError> {
        if bytes.len() > SNAPSHOT_MAX_BYTES {
            return Err(SnapshotError::TooLarge { len: bytes.len() });
        }
        let header = encode_header(partition, seq, lsn, bytes);
        fsutil::replace_file_with(&self.path(partition), FILE_MODE, |file| {
            file.write_all(&header)?;
            let pause = Duration::from_millis(SNAPSHOT_WRITE_PAUSE_MS);
            fsutil::write_paced(file, bytes, self.opts.write_chunk_bytes, pause)
        })?;
        Ok(())
    }

    /// The partition's snapshot, `None` if it has none, `Err(Corrupt)` if it can't be trusted.
    pub fn load(&self, partition: PartitionId) -> Result<Option<Snapshot>, SnapshotError> {
        let path = self.path(partition);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file_len = file.metadata()?.len();
        let mut header = [0u8; HEADER_BYTES];
        if file_len < HEADER_BYTES as u64 {
            return Err(corrupt(format!("file of {file_len} bytes is shorter than the header")));
        }
        file.read_exact(&mut header)?;
        if header[..8] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        let version = u32_at(&header, 8);
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unknown format version {version}")));
        }
        let (p, seq, lsn, len) = (
            u64_at(&header, 12),
            u64_at(&header, 20),
            u64_at(&header, 28),
            u64_at(&header, 36),
        );
        let crc = u32_at(&header, 44);
        if p != partition {
            return Err(corrupt(format!("holds partition {p}")));
        }
        if len > SNAPSHOT_MAX_BYTES as u64 || file_len != HEADER_BYTES as u64 + len {
            return Err(corrupt(format!(
                "body length {len} does not match the file length {file_len}"
            )));
        }
        // len <= SNAPSHOT_MAX_BYTES, so it fits in usize.
        let mut bytes = vec![0u8; len as usize];
        file.read_exact(&mut bytes)?;
        let actual = crc32c::crc32c_append(crc32c::crc32c(&header[12..44]), &bytes);
        if actual != crc {
            return Err(corrupt("CRC mismatch".into()));
        }
        Ok(Some(Snapshot {
            partition,
            seq,
            lsn,
            bytes,
        }))
    }

    /// Partitions that have a snapshot file, ascending.
    pub fn list(&self) -> Result<Vec<PartitionId>, SnapshotError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(p) = name
                .strip_prefix("p-")
                .and_then(|n| n.strip_suffix(".snap"))
                .and_then(|n| n.parse().ok())
            {
                out.push(p);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Removes the partition's snapshot, if any.
    pub fn remove(&self, partition: PartitionId) -> Result<(), SnapshotError> {
        match std::fs::remove_file(self.path(partition)) {
            Ok(()) => Ok(File::open(&self.dir)?.sync_all()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn encode_header(partition: PartitionId, seq: Seq, lsn: Lsn, bytes: &[u8]) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&partition.to_le_bytes());
    h[20..28].copy_from_slice(&seq.to_le_bytes());
    h[28..36].copy_from_slice(&lsn.to_le_bytes());
    h[36..44].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[12..44]), bytes);
    h[44..48].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u32_at(b: &[u8; HEADER_BYTES], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8; HEADER_BYTES], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
