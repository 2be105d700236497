//! Sequential frame reader over one segment file, shared by recovery and `scan`.
//!
//! Reads with positional reads into one large buffer that the caller lends (so scans reuse
//! buffers and allocate nothing per record), growing its read size from small to large so a
//! cursor that wants ten records doesn't read a megabyte, while a replay does few syscalls.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::frame::{self, DecodeError, FRAME_MAX_BYTES};
use crate::RecordRef;
use crate::limits::READ_FIRST_BYTES;

pub(crate) enum Next<'a> {
    /// A valid frame at `offset`.
    Record { record: RecordRef<'a>, offset: u64 },
    /// The end of the data, at a frame boundary: the end of the file, or an all-zero frame
    /// header (the zero-filled rest of a preallocated segment; a frame's length is never 0).
    Eof,
    /// Bytes at `offset` are not a valid frame (or a frame runs past the end of the file).
    Bad { offset: u64, reason: &'static str },
}

pub(crate) struct FrameReader {
    file: File,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[end]`.
    file_pos: u64,
    read_bytes: usize,
}

impl FrameReader {
    /// Reads `file` from `offset`, using `buf` (its length is the largest read; it grows only
    /// to hold a frame longer than itself).
    pub(crate) fn new(file: File, offset: u64, mut buf: Vec<u8>) -> Self {
        if buf.len() < READ_FIRST_BYTES {
            buf.resize(READ_FIRST_BYTES, 0);
        }
        FrameReader {
            file,
            buf,
            start: 0,
            end: 0,
            file_pos: offset,
            read_bytes: READ_FIRST_BYTES,
        }
    }

    /// Switches to another file, keeping the buffer.
    pub(crate) fn reset(&mut self, file: File, offset: u64) {
        self.file = file;
        self.start = 0;
        self.end = 0;
        self.file_pos = offset;
    }

    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// File offset of the next unread byte (the next frame's start).
    pub(crate) fn offset(&self) -> u64 {
        self.file_pos - (self.end - self.start) as u64
    }

    pub(crate) fn next(&mut self) -> io::Result<Next<'_>> {
        let info = loop {
            let unread = &self.buf[self.start..self.end];
            if unread.len() >= frame::FRAME_HEADER_BYTES
                && unread[..frame::FRAME_HEADER_BYTES] == [0u8; frame::FRAME_HEADER_BYTES]
            {
                return Ok(Next::Eof);
            }
            match frame::decode_info(unread) {
                Ok(info) => break info,
                Err(DecodeError::Incomplete { needed }) => {
                    assert!(
                        needed <= FRAME_MAX_BYTES,
                        "a frame never needs more than the largest frame"
                    );
                    if !self.fill(needed)? {
                        if self.start == self.end {
                            return Ok(Next::Eof);
                        }
                        return Ok(Next::Bad {
                            offset: self.offset(),
                            reason: "frame runs past the end of the file",
                        });
                    }
                }
                Err(DecodeError::Bad(reason)) => {
                    return Ok(Next::Bad {
                        offset: self.offset(),
                        reason,
                    });
                }
            }
        };
        let offset = self.offset();
        let frame_start = self.start;
        self.start += info.frame_len;
        match info.record(&self.buf[frame_start..frame_start + info.frame_len]) {
            Ok(record) => Ok(Next::Record { record, offset }),
            Err(reason) => Ok(Next::Bad { offset, reason }),
        }
    }

    /// Makes at least `needed` unconsumed bytes available; false at end of file.
    fn fill(&mut self, needed: usize) -> io::Result<bool> {
        if self.buf.len() - self.start < needed || (self.start > 0 && self.buf.len() - self.end < self.buf.len() / 4) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < needed {
                self.buf.resize(needed, 0);
            }
        }
        while self.end - self.start < needed {
            assert!(self.end < self.buf.len(), "no room to read into");
            let want = self.read_bytes.min(self.buf.len() - self.end);
            let n = match self
                .file
                .read_at(&mut self.buf[self.end..self.end + want], self.file_pos)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
            self.file_pos += n as u64;
            self.read_bytes = (self.read_bytes * 2).min(self.buf.len());
        }
        Ok(true)
    }
}
