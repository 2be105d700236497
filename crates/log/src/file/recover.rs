//! Opening a log: read every segment in order, check every frame and the contiguity of LSNs
//! and per-partition seqs, and repair a torn tail of the last segment (see `file.rs`).

use super::*;

/// What recovery rebuilt.
pub(super) struct Recovered {
    pub(super) catalog: Catalog,
    pub(super) next_seq: FxHashMap<PartitionId, Seq>,
    pub(super) last_segment_len_bytes: u64,
    /// The last segment's file length: past its data when it is preallocated.
    pub(super) last_segment_file_len_bytes: u64,
    pub(super) report: RecoveryReport,
}

fn list_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, LogError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_segment_name) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|s| s.0);
    Ok(segments)
}

/// Reads every segment in order, checking frames and contiguity, and repairs a torn tail of
/// the last one (see the module docs).
pub(super) fn recover(dir: &Path, opts: &FileLogOptions) -> Result<Recovered, LogError> {
    let segments = list_or_create_segments(dir)?;
    let count = segments.len();
    let mut rec = Recovered {
        catalog: Catalog {
            segments: Vec::with_capacity(count),
            index: Vec::new(),
        },
        next_seq: FxHashMap::default(),
        last_segment_len_bytes: SEGMENT_HEADER_BYTES,
        last_segment_file_len_bytes: SEGMENT_HEADER_BYTES,
        report: RecoveryReport {
            segments: count,
            ..RecoveryReport::default()
        },
    };
    let mut buf = vec![0u8; opts.read_buffer_bytes];
    for (i, (first_lsn, path)) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        // Records are numbered from 1 without gaps, so the next lsn is the count plus one.
        let expected = rec.report.records + 1;
        if first_lsn != expected {
            return Err(corrupt(
                &path,
                0,
                format!("missing segment: this one starts at lsn {first_lsn}, expected {expected}"),
            ));
        }
        let file = open_segment(&path, is_last)?;
        let mut len = file.metadata()?.len();
        let (end, damage);
        (end, damage, buf) = replay_segment(&mut rec, opts, file.try_clone()?, &path, first_lsn, buf)?;
        // After the records, only zeros (a preallocated rest) may follow.
        if let Some(dirty_end) = last_nonzero_end(&file, end, len)? {
            if !is_last {
                return Err(corrupt(&path, end, damage));
            }
            let tail = Tail {
                end,
                dirty_end,
                len,
                damage,
            };
            len = cut_torn_tail(&file, &path, tail, &mut rec.report)?;
        }
        if is_last {
            rec.last_segment_len_bytes = end;
            rec.last_segment_file_len_bytes = len;
        }
        rec.catalog.segments.push(SegmentMeta { first_lsn, path });
    }
    rec.report.last_lsn = rec.report.records;
    Ok(rec)
}

/// The segments in the directory by first lsn; a new log gets its first, empty one.
fn list_or_create_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, LogError> {
    let mut segments = list_segments(dir)?;
    if segments.is_empty() {
        let path = dir.join(segment_file_name(1));
        let mut f = OpenOptions::new().create_new(true).write(true).open(&path)?;
        f.write_all(&SEGMENT_MAGIC)?;
        f.sync_all()?;
        sync_dir(dir)?;
        segments.push((1, path));
    }
    Ok(segments)
}

/// Opens a segment (for writing too if it is the last) and checks its header. A header torn
/// while the last segment was being created at a roll is rewritten: nothing was ever in it.
fn open_segment(path: &Path, is_last: bool) -> Result<File, LogError> {
    let file = OpenOptions::new().read(true).write(is_last).open(path)?;
    let mut header = [0u8; SEGMENT_MAGIC.len()];
    let got = read_full_at(&file, &mut header, 0)?;
    if got < header.len() && is_last && header[..got] == SEGMENT_MAGIC[..got] {
        file.set_len(0)?;
        file.write_all_at(&SEGMENT_MAGIC, 0)?;
        file.sync_all()?;
        if got > 0 {
            tracing::warn!(segment = %path.display(), bytes = got, "repaired a torn segment header");
        }
    } else if header != SEGMENT_MAGIC {
        return Err(corrupt(path, 0, "bad segment header"));
    }
    Ok(file)
}

/// Reads a segment's frames into `rec`: checks that LSNs and per-partition seqs are
/// contiguous, counts the records and indexes every `index_interval_records`-th. Returns
/// where the records end and why they end there, with the read buffer.
fn replay_segment(
    rec: &mut Recovered,
    opts: &FileLogOptions,
    file: File,
    path: &Path,
    first_lsn: Lsn,
    buf: Vec<u8>,
) -> Result<(u64, &'static str, Vec<u8>), LogError> {
    let segment = rec.catalog.segments.len();
    rec.catalog.index.push(IndexEntry {
        lsn: first_lsn,
        segment,
        offset: SEGMENT_HEADER_BYTES,
    });
    let mut reader = FrameReader::new(file, SEGMENT_HEADER_BYTES, buf);
    let (end, damage) = loop {
        match reader.next()? {
            Next::Record { record, offset } => {
                let expected = rec.report.records + 1;
                if record.lsn != expected {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("lsn {}, expected {expected}", record.lsn),
                    ));
                }
                let want = rec.next_seq.get(&record.partition).copied().unwrap_or(1);
                if record.seq != want {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("partition {}: seq {}, expected {want}", record.partition, record.seq),
                    ));
                }
                rec.next_seq.insert(record.partition, want + 1);
                if (record.lsn - 1).is_multiple_of(opts.index_interval_records) && record.lsn != first_lsn {
                    rec.catalog.index.push(IndexEntry {
                        lsn: record.lsn,
                        segment,
                        offset,
                    });
                }
                rec.report.records += 1;
            }
            Next::Eof => break (reader.offset(), "data after the end of the records"),
            Next::Bad { offset, reason } => break (offset, reason),
        }
    };
    Ok((end, damage, reader.into_buffer()))
}

/// Non-zero bytes after the last valid record of the last segment.
struct Tail {
    /// Where the records end.
    end: u64,
    /// The end of the last non-zero byte.
    dirty_end: u64,
    /// The file's length.
    len: u64,
    /// Why the records end at `end`.
    damage: &'static str,
}

/// Removes a torn tail (a partial write that was never acknowledged) durably, before anything
/// is appended after it: cut off at the file's end, or zeroed where preallocated zeros follow.
/// Damage with a valid frame after it is no torn tail but corruption. Returns the new length.
fn cut_torn_tail(file: &File, path: &Path, tail: Tail, report: &mut RecoveryReport) -> Result<u64, LogError> {
    let Tail {
        end,
        dirty_end,
        mut len,
        damage,
    } = tail;
    // A frame may end in zero bytes: look a whole frame past the last non-zero one.
    let search_end = dirty_end.saturating_add(FRAME_MAX_BYTES as u64).min(len);
    // Frames behind a sector that never reached the disk are part of the torn write: a flush
    // succeeds only once every byte written before it is on disk, so no record after such a
    // hole was acknowledged (overwrites of a preallocated file reach the disk in no
    // particular order when power is lost).
    if let Some(valid_at) = find_valid_frame_after(file, end, search_end)?
        && !has_unwritten_sector(file, end, valid_at)?
    {
        return Err(corrupt(
            path,
            end,
            format!("{damage}, but a valid frame follows at offset {valid_at}"),
        ));
    }
    if dirty_end == len {
        file.set_len(end)?;
        len = end;
    } else {
        write_zeros_at(file, end, dirty_end)?;
    }
    file.sync_all()?;
    let bytes = dirty_end - end;
    tracing::warn!(
        segment = %path.display(), offset = end, bytes, reason = damage,
        "removed a torn tail of the event log"
    );
    report.truncated = Some(TruncatedTail {
        segment: path.to_path_buf(),
        offset: end,
        bytes,
    });
    Ok(len)
}

/// Reads as much of `buf` as the file has at `offset`.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The end of the last non-zero byte in `from..len`, or `None` if it is all zeros.
fn last_nonzero_end(file: &File, from: u64, len: u64) -> Result<Option<u64>, LogError> {
    let mut chunk = vec![0u8; ZERO_CHUNK_BYTES];
    let mut at = from;
    let mut last = None;
    while at < len {
        let want = (len - at).min(ZERO_CHUNK_BYTES as u64) as usize;
        let got = read_full_at(file, &mut chunk[..want], at)?;
        let part = &chunk[..got];
        // The OR-fold vectorises; the byte search runs only on a chunk that has data.
        if part.iter().fold(0u8, |acc, &b| acc | b) != 0
            && let Some(i) = part.iter().rposition(|&b| b != 0)
        {
            last = Some(at + i as u64 + 1);
        }
        if got < want {
            break;
        }
        at += got as u64;
    }
    Ok(last)
}

/// Whether a sector in `from..to` was never written: the part of it inside the range runs
/// to the sector's end and is all zeros. (A sector is the unit a disk writes whole; the
/// part of the first sector before `from` holds earlier, durable data.)
fn has_unwritten_sector(file: &File, from: u64, to: u64) -> Result<bool, LogError> {
    let len = usize::try_from(to.saturating_sub(from))
        .map_err(|_| LogError::InvalidRecord("segment tail too large to examine".into()))?;
    let mut bytes = vec![0u8; len];
    let got = read_full_at(file, &mut bytes, from)?;
    let to = from + got as u64;
    let mut start = from;
    loop {
        let sector_end = (start / SECTOR_BYTES + 1) * SECTOR_BYTES;
        if sector_end > to {
            return Ok(false);
        }
        let part = &bytes[(start - from) as usize..(sector_end - from) as usize];
        if part.iter().all(|&b| b == 0) {
            return Ok(true);
        }
        start = sector_end;
    }
}

/// Overwrites `from..to` with zeros.
fn write_zeros_at(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Looks for any valid frame starting after `bad` (exclusive) and before `len`. Only run on
/// the damaged tail of the last segment, which is bounded by the segment size plus one batch.
fn find_valid_frame_after(file: &File, bad: u64, len: u64) -> Result<Option<u64>, LogError> {
    let from = bad + 1;
    if from >= len {
        return Ok(None);
    }
    let rest_len =
        usize::try_from(len - from).map_err(|_| LogError::InvalidRecord("segment tail too large to examine".into()))?;
    let mut rest = vec![0u8; rest_len];
    let got = read_full_at(file, &mut rest, from)?;
    rest.truncate(got);
    for q in 0..rest.len() {
        if frame::decode(&rest[q..]).is_ok() {
            return Ok(Some(from + q as u64));
        }
    }
    Ok(None)
}
