//! Correlation ids: accepted from `X-Correlation-Id` (when well-formed) or generated, put in
//! the request's extensions for handlers (which pass it into the log's records), echoed on
//! the response, and written into every error body (all by [`crate::request_layer`]).

use compact_str::CompactString;
use rand::Rng;

use crate::limits::CORRELATION_ID_MAX_BYTES;

pub const HEADER: &str = "x-correlation-id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(CompactString);

impl CorrelationId {
    /// Accepts 1..=64 characters of `[A-Za-z0-9._:-]`; anything else is replaced.
    pub fn parse(s: &str) -> Option<CorrelationId> {
        let ok = !s.is_empty()
            && s.len() <= CORRELATION_ID_MAX_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| CorrelationId(CompactString::from(s)))
    }

    /// 96 random bits as 24 hex digits: short enough to live inline in a `CompactString`,
    /// so the id is copied, never allocated, as it travels with the request.
    /// Written digit by digit: every request without an id of its own makes one, and the
    /// formatting machinery cost more than the random bits.
    pub fn generate() -> CorrelationId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut v: u128 = rand::rng().random::<u128>() >> 32;
        let mut out = [0u8; 24];
        for slot in out.iter_mut().rev() {
            *slot = HEX[(v & 0xf) as usize];
            v >>= 4;
        }
        // Hex digits are ASCII.
        CorrelationId(CompactString::from_utf8(&out[..]).unwrap_or_default())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_compact(&self) -> CompactString {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_24_lower_hex_digits_and_differ() {
        let a = CorrelationId::generate();
        let b = CorrelationId::generate();
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), 24, "{id:?}");
            assert!(
                id.as_str().bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id:?}"
            );
            assert_eq!(CorrelationId::parse(id.as_str()).as_ref(), Some(id));
        }
        assert_ne!(a, b);
    }
}
