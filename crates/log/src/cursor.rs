//! [`CursorReader`]: a named, durable reader of the event feed (the event bus's consumer side).
//!
//! Each reader follows the log by LSN at its own pace and persists its position only when told
//! (`commit`), in `checkpoint_dir/<name>.cursor`. Delivery is at-least-once: records polled
//! after the last commit are delivered again after a restart, so consumers must be idempotent
//! (by LSN). The checkpoint file is tiny and rewritten atomically
//! ([`crate::fsutil::replace_file`]) with a CRC, so a crash never leaves a half-written position.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::limits::{CURSOR_NAME_MAX_CHARS, POLL_MAX_RECORDS};
use crate::{EventLog, LogError, Lsn, Record, fsutil};

const MAGIC: [u8; 8] = *b"TQCURS\0\x01";
const FILE_BYTES: usize = 8 + 8 + 4;
const FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("invalid cursor name {0:?}: 1..={max} characters of [A-Za-z0-9_-]", max = CURSOR_NAME_MAX_CHARS)]
    InvalidName(String),
    #[error("corrupt cursor checkpoint {path}: {reason}")]
    Corrupt { path: PathBuf, reason: &'static str },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cursor I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether `name` may name a cursor (it becomes a file name).
pub fn valid_cursor_name(name: &str) -> bool {
    (1..=CURSOR_NAME_MAX_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub struct CursorReader {
    log: Arc<dyn EventLog>,
    path: PathBuf,
    name: String,
    /// LSN of the last record returned by `poll`.
    position: Lsn,
    /// LSN last persisted by `commit`.
    committed: Lsn,
}

impl CursorReader {
    /// Opens the cursor `name`, resuming after its persisted checkpoint (from the start if none).
    pub fn open(log: Arc<dyn EventLog>, checkpoint_dir: &Path, name: &str) -> Result<Self, CursorError> {
        if !valid_cursor_name(name) {
            return Err(CursorError::InvalidName(name.to_owned()));
        }
        std::fs::create_dir_all(checkpoint_dir)?;
        let path = checkpoint_dir.join(format!("{name}.cursor"));
        let committed = read_checkpoint(&path)?.unwrap_or(0);
        Ok(CursorReader {
            log,
            path,
            name: name.to_owned(),
            position: committed,
            committed,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// LSN of the last record handed out.
    pub fn position(&self) -> Lsn {
        self.position
    }

    /// LSN persisted by the last `commit` (or found at open).
    pub fn committed(&self) -> Lsn {
        self.committed
    }

    /// The next up to `max` (at most [`POLL_MAX_RECORDS`]) durable records after the position,
    /// waiting up to `timeout` for some if there are none. Empty on timeout.
    pub fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>, CursorError> {
        let max = max.min(POLL_MAX_RECORDS);
        if max == 0 {
            return Ok(Vec::new());
        }
        if self.log.durable_lsn() <= self.position && self.log.wait_durable(self.position, timeout) <= self.position {
            return Ok(Vec::new());
        }
        let records = self.log.read(self.position, max)?;
        if let Some(last) = records.last() {
            assert_eq!(records[0].lsn, self.position + 1, "a cursor reads on without gaps");
            self.position = last.lsn;
        }
        Ok(records)
    }

    /// Persists the position: after a restart, reading resumes after it.
    pub fn commit(&mut self) -> Result<(), CursorError> {
        if self.position == self.committed {
            return Ok(());
        }
        let mut bytes = [0u8; FILE_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..16].copy_from_slice(&self.position.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..16]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        fsutil::replace_file(&self.path, &bytes, FILE_MODE)?;
        self.committed = self.position;
        Ok(())
    }
}

fn read_checkpoint(path: &Path) -> Result<Option<Lsn>, CursorError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason| CursorError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if file.metadata()?.len() != FILE_BYTES as u64 {
        return Err(corrupt("wrong file length"));
    }
    let mut bytes = [0u8; FILE_BYTES];
    file.read_exact(&mut bytes)?;
    if bytes[..8] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[16..20]);
    if crc32c::crc32c(&bytes[..16]) != u32::from_le_bytes(crc) {
        return Err(corrupt("CRC mismatch"));
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    Ok(Some(u64::from_le_bytes(lsn)))
}
