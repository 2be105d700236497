//! The on-disk record frame: what one record looks like in a segment file.
//!
//! `[u32 LE body_len][u32 LE crc32c(body)][body]`, where the body is
//! `[u8 version=1][varint lsn][varint partition][varint seq][zigzag varint timestamp_ms]
//! [varint corr_len][corr bytes][payload]`. The length comes first so a reader can tell a frame
//! that runs past the end of the file (a torn write) from a damaged one (CRC mismatch); the
//! CRC covers the whole body so any flipped bit is caught before the record is trusted.
//!
//! Encoding appends to a caller-owned buffer (no allocation once it has grown); decoding is in
//! two steps, [`decode_info`] (owned offsets, so a reader can refill its buffer in a loop
//! without holding a borrow) and [`FrameInfo::record`] (the borrowed [`RecordRef`]).

pub use crate::limits::{FRAME_BODY_MAX_BYTES, FRAME_MAX_BYTES};
use crate::{Append, CORRELATION_ID_MAX_BYTES, LogError, Lsn, PartitionId, RECORD_PAYLOAD_MAX_BYTES, RecordRef, Seq};

/// Bytes before the body: length and CRC.
pub const FRAME_HEADER_BYTES: usize = 8;
/// The body format this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Longest a varint (u64) can be.
const VARINT_MAX_BYTES: usize = 10;
/// Largest fixed part of a body: the version byte and five varints.
pub(crate) const BODY_FIXED_MAX_BYTES: usize = 1 + 5 * VARINT_MAX_BYTES;

/// Checks a record against the limits. Done for a whole batch before anything is encoded, so
/// a rejected batch writes nothing.
pub fn validate(rec: &Append<'_>) -> Result<(), LogError> {
    if rec.payload.len() > RECORD_PAYLOAD_MAX_BYTES {
        return Err(LogError::InvalidRecord(
            format!(
                "payload of {} bytes, longer than the limit of {RECORD_PAYLOAD_MAX_BYTES}",
                rec.payload.len()
            )
            .into(),
        ));
    }
    if let Some(c) = rec.correlation_id
        && c.len() > CORRELATION_ID_MAX_BYTES
    {
        return Err(LogError::InvalidRecord(
            format!(
                "correlation id of {} bytes, longer than the limit of {CORRELATION_ID_MAX_BYTES}",
                c.len()
            )
            .into(),
        ));
    }
    Ok(())
}

/// The exact encoded size of a record's frame.
pub fn encoded_len(lsn: Lsn, rec: &Append<'_>) -> usize {
    let corr_len = rec.correlation_id.map_or(0, str::len);
    FRAME_HEADER_BYTES
        + 1
        + varint_len(lsn)
        + varint_len(rec.partition)
        + varint_len(rec.expected_seq)
        + varint_len(zigzag(rec.timestamp_ms))
        + varint_len(corr_len as u64)
        + corr_len
        + rec.payload.len()
}

/// The most bytes the frame of a record with this payload and correlation id can take,
/// whatever its lsn, partition, seq and timestamp: what a writer reserves before it has them
/// all ([`crate::EventLog::reserve`]).
pub fn encoded_len_max(payload_len: usize, correlation_id_len: usize) -> usize {
    const VARINT_MAX_BYTES: usize = 10;
    FRAME_HEADER_BYTES
        + 1
        + 4 * VARINT_MAX_BYTES
        + varint_len(correlation_id_len as u64)
        + correlation_id_len
        + payload_len
}

/// Appends the frame of `rec` (with `lsn` and seq `rec.expected_seq`) to `buf`. The record
/// must have passed [`validate`]. An empty correlation id is stored as none.
#[inline]
pub fn encode(buf: &mut Vec<u8>, lsn: Lsn, rec: &Append<'_>) {
    assert!(rec.payload.len() <= RECORD_PAYLOAD_MAX_BYTES, "payload over the limit");
    assert!(
        rec.correlation_id.is_none_or(|c| c.len() <= CORRELATION_ID_MAX_BYTES),
        "correlation id over the limit"
    );
    let corr: &[u8] = rec.correlation_id.map_or(&[], str::as_bytes);
    // The fixed part is built on the stack so the buffer sees four memcpys, not a push per byte.
    let mut fixed = [0u8; BODY_FIXED_MAX_BYTES];
    fixed[0] = FORMAT_VERSION;
    let mut n = 1;
    n += put_varint(&mut fixed[n..], lsn);
    n += put_varint(&mut fixed[n..], rec.partition);
    n += put_varint(&mut fixed[n..], rec.expected_seq);
    n += put_varint(&mut fixed[n..], zigzag(rec.timestamp_ms));
    n += put_varint(&mut fixed[n..], corr.len() as u64);

    let start = buf.len();
    let body_len = n + corr.len() + rec.payload.len();
    buf.reserve(FRAME_HEADER_BYTES + body_len);
    buf.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    buf.extend_from_slice(&fixed[..n]);
    buf.extend_from_slice(corr);
    buf.extend_from_slice(rec.payload);
    let body = &buf[start + FRAME_HEADER_BYTES..];
    assert_eq!(body.len(), body_len, "frame body of the length encoded");
    let crc = crc32c::crc32c(body);
    // body_len <= FRAME_BODY_MAX_BYTES (validated), which fits in u32.
    buf[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Where the fields of a decoded frame are, relative to the frame's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Header plus body.
    pub frame_len: usize,
    pub lsn: Lsn,
    pub partition: PartitionId,
    pub seq: Seq,
    pub timestamp_ms: i64,
    corr_start: usize,
    corr_end: usize,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer holds only part of the frame; `needed` bytes (from the frame start) would
    /// let decoding proceed. Never more than [`FRAME_MAX_BYTES`].
    Incomplete { needed: usize },
    /// The bytes are not a valid frame.
    Bad(&'static str),
}

impl FrameInfo {
    /// The record, borrowing `frame` (the bytes `decode_info` was given, from the frame start).
    pub fn record<'a>(&self, frame: &'a [u8]) -> Result<RecordRef<'a>, &'static str> {
        let corr = if self.corr_start == self.corr_end {
            None
        } else {
            let bytes = frame
                .get(self.corr_start..self.corr_end)
                .ok_or("frame shorter than its header says")?;
            Some(std::str::from_utf8(bytes).map_err(|_| "correlation id is not UTF-8")?)
        };
        let payload = frame
            .get(self.corr_end..self.frame_len)
            .ok_or("frame shorter than its header says")?;
        Ok(RecordRef {
            lsn: self.lsn,
            partition: self.partition,
            seq: self.seq,
            timestamp_ms: self.timestamp_ms,
            correlation_id: corr,
            payload,
        })
    }
}

/// Decodes the frame at the start of `buf`, verifying its length and CRC.
#[inline]
pub fn decode_info(buf: &[u8]) -> Result<FrameInfo, DecodeError> {
    let Some(header) = buf.get(..FRAME_HEADER_BYTES) else {
        return Err(DecodeError::Incomplete {
            needed: FRAME_HEADER_BYTES,
        });
    };
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if body_len == 0 {
        return Err(DecodeError::Bad("zero-length frame"));
    }
    if body_len > FRAME_BODY_MAX_BYTES {
        return Err(DecodeError::Bad("frame length exceeds the largest valid frame"));
    }
    let frame_len = FRAME_HEADER_BYTES + body_len;
    let Some(body) = buf.get(FRAME_HEADER_BYTES..frame_len) else {
        return Err(DecodeError::Incomplete { needed: frame_len });
    };
    // The version byte is checked before the CRC: it is cheaper and filters random bytes fast
    // when recovery searches for a valid frame after a damaged one.
    if body[0] != FORMAT_VERSION {
        return Err(DecodeError::Bad("unknown frame format version"));
    }
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::Bad("CRC mismatch"));
    }
    let mut pos = 1;
    let lsn = get_varint(body, &mut pos)?;
    let partition = get_varint(body, &mut pos)?;
    let seq = get_varint(body, &mut pos)?;
    let timestamp_ms = unzigzag(get_varint(body, &mut pos)?);
    let corr_len = get_varint(body, &mut pos)?;
    if corr_len > CORRELATION_ID_MAX_BYTES as u64 {
        return Err(DecodeError::Bad("correlation id longer than the limit"));
    }
    let corr_end = pos + corr_len as usize;
    if corr_end > body.len() {
        return Err(DecodeError::Bad("correlation id runs past the frame"));
    }
    if body.len() - corr_end > RECORD_PAYLOAD_MAX_BYTES {
        return Err(DecodeError::Bad("payload longer than the limit"));
    }
    if lsn == 0 || seq == 0 {
        return Err(DecodeError::Bad("zero lsn or seq"));
    }
    Ok(FrameInfo {
        frame_len,
        lsn,
        partition,
        seq,
        timestamp_ms,
        corr_start: FRAME_HEADER_BYTES + pos,
        corr_end: FRAME_HEADER_BYTES + corr_end,
    })
}

/// Decodes a whole frame (convenience for tests and tools).
pub fn decode(buf: &[u8]) -> Result<(RecordRef<'_>, usize), DecodeError> {
    let info = decode_info(buf)?;
    let rec = info.record(buf).map_err(DecodeError::Bad)?;
    Ok((rec, info.frame_len))
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
fn varint_len(v: u64) -> usize {
    // 1 byte per started 7 bits; 0 still takes a byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `v` as a LEB128 varint into `out` (which has room for `VARINT_MAX_BYTES`).
#[inline]
fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for i in 0..VARINT_MAX_BYTES {
        let Some(&b) = buf.get(*pos) else {
            return Err(DecodeError::Bad("varint runs past the frame"));
        };
        *pos += 1;
        let part = u64::from(b & 0x7f);
        if i == VARINT_MAX_BYTES - 1 && b > 1 {
            return Err(DecodeError::Bad("varint overflows u64"));
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Bad("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::MAX / 2, u64::MAX] {
            let mut out = [0u8; VARINT_MAX_BYTES];
            let n = put_varint(&mut out, v);
            assert_eq!(n, varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&out[..n], &mut pos), Ok(v));
            assert_eq!(pos, n);
        }
        for v in [0, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn encoded_len_matches_encode() {
        let rec = Append {
            partition: 300,
            expected_seq: 1 << 40,
            timestamp_ms: -5,
            correlation_id: Some("abc"),
            payload: b"hello",
        };
        let mut buf = Vec::new();
        encode(&mut buf, 1 << 20, &rec);
        assert_eq!(buf.len(), encoded_len(1 << 20, &rec));
    }
}
