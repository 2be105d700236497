//! Preparing the next segment: a file of the segment's size, the header and then zeros,
//! written and fsynced by a background thread before the roll that takes it, so that an
//! `fdatasync` after an append inside it never has to write the inode (see `file.rs`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{FileLog, PREPARED_FILE_NAME, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, Writer};
use crate::limits::{PREPARE_PAUSE_MS, ZERO_CHUNK_BYTES};

impl FileLog {
    /// Starts preparing the next segment in the background, unless that is off or running.
    fn start_preparing(&self) {
        if !self.opts.preallocate || self.prepare_failed.load(Ordering::Acquire) {
            return;
        }
        let mut slot = self.preparer.lock();
        if let Some(running) = slot.take() {
            if !running.is_finished() {
                *slot = Some(running);
                return;
            }
            let _ = running.join();
        }
        if self.prepared_ready.load(Ordering::Acquire) {
            // Finished just after a roll looked: keep it for the next one.
            return;
        }
        let path = self.dir.join(PREPARED_FILE_NAME);
        let size = self.opts.segment_size_bytes;
        let ready = Arc::clone(&self.prepared_ready);
        let cancel = Arc::clone(&self.prepare_cancel);
        let failed = Arc::clone(&self.prepare_failed);
        let spawned =
            std::thread::Builder::new()
                .name("taquilla-log-prep".into())
                .spawn(move || {
                    match prepare_segment(&path, size, &cancel, Some(Duration::from_millis(PREPARE_PAUSE_MS))) {
                        Ok(true) => ready.store(true, Ordering::Release),
                        Ok(false) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Release);
                            let _ = std::fs::remove_file(&path);
                            tracing::warn!(
                                error = %e,
                                "could not prepare a log segment: the next one is written without \
                                 preallocation, and preparing is tried again after it"
                            );
                        }
                    }
                });
        match spawned {
            Ok(handle) => *slot = Some(handle),
            Err(e) => tracing::warn!(error = %e, "could not start preparing the next log segment"),
        }
    }

    /// The prepared segment (open for writing, and its length), if one is complete.
    pub(super) fn take_prepared(&self) -> Option<(File, u64)> {
        if !self.prepared_ready.swap(false, Ordering::AcqRel) {
            return None;
        }
        if let Some(done) = self.preparer.lock().take() {
            let _ = done.join();
        }
        let path = self.dir.join(PREPARED_FILE_NAME);
        let opened = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| Ok((f.metadata()?.len(), f)));
        match opened {
            Ok((len, file)) => Some((file, len)),
            Err(e) => {
                tracing::warn!(error = %e, "the prepared log segment could not be opened");
                None
            }
        }
    }

    /// Starts preparing the next segment once the current one is half full, or at once if it
    /// is not preallocated (so it can be left early). Not earlier: a new log's first seconds,
    /// often its busiest, are not shared with 64 MiB of background writes.
    pub(super) fn maybe_prepare_next(&self, w: &mut Writer) {
        let preallocated = w.file_len_bytes > w.segment_len_bytes;
        if !w.next_requested && (!preallocated || w.segment_len_bytes > self.opts.segment_size_bytes / 2) {
            w.next_requested = true;
            self.start_preparing();
        }
    }
}

/// Writes a segment of `size` bytes to `path`: the header, then zeros; fsynced. False if
/// `cancel` was set before it was done. With `pace`, each chunk is synced and followed by that
/// pause (the background preparer); without, it is written at full speed (at open).
pub(super) fn prepare_segment(
    path: &Path,
    size: u64,
    cancel: &AtomicBool,
    pace: Option<Duration>,
) -> std::io::Result<bool> {
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
    file.write_all(&SEGMENT_MAGIC)?;
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut at = SEGMENT_HEADER_BYTES;
    while at < size {
        if cancel.load(Ordering::Acquire) {
            return Ok(false);
        }
        let n = (size - at).min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all(&zeros[..n])?;
        at += n as u64;
        if let Some(pause) = pace {
            file.sync_data()?;
            std::thread::sleep(pause);
        }
    }
    file.sync_all()?;
    Ok(true)
}
