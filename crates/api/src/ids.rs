//! Public identifiers. The API calls a sale an *event*, so a sale's public id is `evt_<sale>`.
//! Holds and orders are numbered inside their sale, so their public ids carry the sale too
//! (`hld_<sale>_<n>`, `ord_<sale>_<n>`): the server routes a request to the right sale from
//! the id alone, with no global index. Ids are not secrets — ownership is checked on every
//! access — but ticket codes are.
//!
//! Each id displays and serializes as its text (written without the formatting machinery:
//! every view carries several).

use serde::{Serialize, Serializer};
use taquilla_domain::{HoldId, OrderId, SaleId};

/// Longest id text: a prefix, two u64s and a separator.
const TEXT_MAX_BYTES: usize = 4 + 20 + 1 + 20;

/// The form of each id, for the OpenAPI document (what [`PublicSaleId::parse`] and the others
/// take, but for numbers past `u64::MAX`, which name nothing either).
pub const SALE_ID_PATTERN: &str = "^evt_(0|[1-9][0-9]{0,19})$";
pub const HOLD_ID_PATTERN: &str = "^hld_(0|[1-9][0-9]{0,19})_(0|[1-9][0-9]{0,19})$";
pub const ORDER_ID_PATTERN: &str = "^ord_(0|[1-9][0-9]{0,19})_(0|[1-9][0-9]{0,19})$";

/// `evt_<sale>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicSaleId(pub SaleId);

/// `hld_<sale>_<hold>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicHoldId(pub SaleId, pub HoldId);

/// `ord_<sale>_<order>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicOrderId(pub SaleId, pub OrderId);

/// An id's text in a stack buffer.
struct Text {
    buf: [u8; TEXT_MAX_BYTES],
    len: usize,
}

impl Text {
    fn new(prefix: &str, sale: u64, n: Option<u64>) -> Text {
        let mut t = Text {
            buf: [0; TEXT_MAX_BYTES],
            len: 0,
        };
        let mut digits = itoa::Buffer::new();
        t.push(prefix);
        t.push(digits.format(sale));
        if let Some(n) = n {
            t.push("_");
            t.push(digits.format(n));
        }
        t
    }

    fn push(&mut self, s: &str) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
    }

    fn as_str(&self) -> &str {
        // Only ASCII prefixes and digits were pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

macro_rules! public_id {
    ($ty:ident, |$v:ident| $text:expr) => {
        impl $ty {
            fn text(&self) -> Text {
                let $v = self;
                $text
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.text().as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.text().as_str())
            }
        }

        impl $crate::json::WriteJson for $ty {
            fn write_json(&self, out: &mut Vec<u8>) {
                $crate::json::write_ascii(self.text().as_str(), out);
            }
        }
    };
}

public_id!(PublicSaleId, |v| Text::new("evt_", v.0.0, None));
public_id!(PublicHoldId, |v| Text::new("hld_", v.0.0, Some(v.1.0)));
public_id!(PublicOrderId, |v| Text::new("ord_", v.0.0, Some(v.1.0)));

fn number(s: &str) -> Option<u64> {
    // Digits only, no sign, no leading zeros beyond "0", at most u64.
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn parse_pair(s: &str, prefix: &str) -> Option<(SaleId, u64)> {
    let rest = s.strip_prefix(prefix)?;
    let (a, b) = rest.split_once('_')?;
    Some((SaleId(number(a)?), number(b)?))
}

impl PublicSaleId {
    pub fn parse(s: &str) -> Option<PublicSaleId> {
        s.strip_prefix("evt_").and_then(number).map(|n| PublicSaleId(SaleId(n)))
    }
}

impl PublicHoldId {
    pub fn parse(s: &str) -> Option<PublicHoldId> {
        parse_pair(s, "hld_").map(|(s, h)| PublicHoldId(s, HoldId(h)))
    }
}

impl PublicOrderId {
    pub fn parse(s: &str) -> Option<PublicOrderId> {
        parse_pair(s, "ord_").map(|(s, o)| PublicOrderId(s, OrderId(o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_junk_is_refused() {
        assert_eq!(PublicSaleId(SaleId(42)).to_string(), "evt_42");
        assert_eq!(PublicHoldId(SaleId(3), HoldId(17)).to_string(), "hld_3_17");
        assert_eq!(
            PublicOrderId(SaleId(u64::MAX), OrderId(u64::MAX)).to_string(),
            format!("ord_{}_{}", u64::MAX, u64::MAX)
        );
        assert_eq!(
            serde_json::to_string(&PublicHoldId(SaleId(3), HoldId(17))).unwrap(),
            "\"hld_3_17\""
        );
        let sale = PublicSaleId(SaleId(42));
        assert_eq!(PublicSaleId::parse(&sale.to_string()), Some(sale));
        let hold = PublicHoldId(SaleId(3), HoldId(17));
        assert_eq!(PublicHoldId::parse(&hold.to_string()), Some(hold));
        let order = PublicOrderId(SaleId(3), OrderId(5));
        assert_eq!(PublicOrderId::parse(&order.to_string()), Some(order));
        for junk in [
            "",
            "evt_",
            "evt_-1",
            "evt_01",
            "evt_1x",
            "evt_99999999999999999999999",
            "hld_1",
            "hld_1_",
            "ord_1_2_3",
        ] {
            assert!(
                PublicSaleId::parse(junk).is_none()
                    && PublicHoldId::parse(junk).is_none()
                    && PublicOrderId::parse(junk).is_none(),
                "{junk}"
            );
        }
    }
}
