//! Correlation ids: accepted from `X-Correlation-Id` (when well-formed) or generated, put in
//! the request's extensions for handlers (which pass it into the log's records), echoed on
//! the response, and written into every error body (all by [`crate::front`]).

use compact_str::CompactString;
use rand::Rng;

pub const HEADER: &str = "x-correlation-id";
pub const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(CompactString);

impl CorrelationId {
    /// Accepts 1..=64 characters of `[A-Za-z0-9._:-]`; anything else is replaced.
    pub fn parse(s: &str) -> Option<CorrelationId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| CorrelationId(CompactString::from(s)))
    }

    /// 96 random bits as 24 hex digits: short enough to live inline in a `CompactString`,
    /// so the id is copied, never allocated, as it travels with the request.
    pub fn generate() -> CorrelationId {
        let v: u128 = rand::rng().random::<u128>() >> 32;
        CorrelationId(compact_str::format_compact!("{v:024x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_compact(&self) -> CompactString {
        self.0.clone()
    }
}
