//! Identifiers. Everything inside a sale is numbered by the sale itself, in order,
//! so ids are small integers; only ticket codes must be unguessable (they are bearer secrets).

use serde::{Deserialize, Serialize};

/// One sale (an event in the ticketing sense). The log stores each sale as one of its
/// partitions, under this number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SaleId(pub u64);

/// Index into the sale's ticket types, assigned in order from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TicketTypeId(pub u32);

/// Index into the sale's quotas, assigned in order from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaId(pub u32);

/// A hold within its sale, assigned in order from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HoldId(pub u64);

/// An order within its sale, assigned in order from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

/// A ticket's unguessable code: 128 random bits from the caller's [`crate::Entropy`],
/// written as 26 characters of Crockford base32 (no padding, upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TicketCode(pub u128);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl TicketCode {
    pub const TEXT_LEN: usize = 26;

    pub fn to_text(self) -> String {
        let mut out = [0u8; Self::TEXT_LEN];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = CROCKFORD[(v & 31) as usize];
            v >>= 5;
        }
        // 26 * 5 = 130 bits: the two top bits are always zero.
        String::from_utf8(out.to_vec()).unwrap_or_default()
    }

    /// Parses the 26-character form; case-insensitive, `O`→0 and `I`/`L`→1 as Crockford allows.
    pub fn parse(s: &str) -> Option<TicketCode> {
        let b = s.as_bytes();
        if b.len() != Self::TEXT_LEN {
            return None;
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            let c = match c.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c => c,
            };
            let d = CROCKFORD.iter().position(|&x| x == c)? as u128;
            if i == 0 && d > 7 {
                // 26 × 5 = 130 bits: the first digit carries only the top 3.
                return None;
            }
            v = (v << 5) | d;
        }
        Some(TicketCode(v))
    }
}

impl std::fmt::Display for TicketCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_code_text_round_trips() {
        for v in [0u128, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            let t = TicketCode(v).to_text();
            assert_eq!(t.len(), 26);
            assert_eq!(TicketCode::parse(&t), Some(TicketCode(v)));
            assert_eq!(TicketCode::parse(&t.to_lowercase()), Some(TicketCode(v)));
        }
        assert_eq!(TicketCode::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(TicketCode::parse("short"), None);
        assert_eq!(TicketCode::parse("UUUUUUUUUUUUUUUUUUUUUUUUUU"), None);
    }
}
