//! File-system helpers the durable pieces share: atomic replacement of a file, written at
//! once or (a large one, [`write_paced`]) in synced parts.
//!
//! Snapshots and cursor checkpoints are rewritten whole; a crash in the middle must leave the
//! old content or the new, never a mix. [`replace_file`] does that with the usual dance: a temp
//! file in the same directory, written and fsynced, renamed over the target, and the directory
//! fsynced so that the rename itself is durable. A crash may leave the temp file behind; its
//! name ([`is_temp_file`]) never matches the target's, so it is never read as the file, and
//! [`remove_temp_files`] clears such leftovers where no writer can be running.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a temp file's name holds after the target's name: `.<name>.tmp-<pid>-<n>`.
const TEMP_MARKER: &str = ".tmp-";

/// Atomically replaces the file at `path` with `bytes`, with permission bits `mode` (e.g.
/// `0o600`; applied exactly, whatever the umask). Durable when it returns: after a crash,
/// `path` holds the old content or the new one.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace_file_with(path, mode, |file| file.write_all(bytes))
}

/// [`replace_file`], with the content written by `write` (so a large file can be written in
/// parts without being copied into one buffer first).
pub fn replace_file_with(path: &Path, mode: u32, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_path(path)?;
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `file` in parts of `chunk_bytes`, each synced (`fdatasync`) before the
/// next and followed by `pause`. For a large file written beside a log that fsyncs on the
/// same disk: one big write left to the final fsync would put all of it in the disk's queue
/// ahead of the log's next flush; this way at most one part is. Inside
/// [`replace_file_with`], the replacement stays atomic: the parts go to the temp file.
pub fn write_paced(file: &mut File, bytes: &[u8], chunk_bytes: usize, pause: Duration) -> io::Result<()> {
    assert!(chunk_bytes >= 1, "a part holds at least a byte");
    for part in bytes.chunks(chunk_bytes) {
        file.write_all(part)?;
        file.sync_data()?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    Ok(())
}

/// Bytes free for an unprivileged writer on the file system holding `path` (`statvfs`:
/// available blocks times the fragment size).
// The counts are u64 on 64-bit Linux, narrower elsewhere: the conversions are for those.
#[allow(clippy::useless_conversion)]
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

/// Whether `file_name` is one of [`replace_file`]'s temp files (a leftover, after a crash).
pub fn is_temp_file(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(TEMP_MARKER)
}

/// Removes [`replace_file`]'s leftover temp files in `dir`; returns how many. Only where no
/// `replace_file` into `dir` can be running (e.g. when a store is opened).
pub fn remove_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_temp_file) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A name no other writer uses: the target's, the process id and a counter.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no UTF-8 file name", path.display()),
        ));
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{name}{TEMP_MARKER}{}-{n}", std::process::id());
    assert!(is_temp_file(&tmp), "temp file names are recognisable");
    Ok(parent_dir(path).join(tmp))
}
