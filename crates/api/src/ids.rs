//! Public identifiers. Holds and orders are numbered inside their sale, so their public ids
//! carry the sale too (`hld_<sale>_<n>`, `ord_<sale>_<n>`): the server routes a request to the
//! right partition from the id alone, with no global index. Ids are not secrets — ownership is
//! checked on every access — but ticket codes are.

use taquilla_domain::{HoldId, OrderId, SaleId};

pub fn event_id(sale: SaleId) -> String {
    id("evt_", sale.0, None)
}

pub fn hold_id(sale: SaleId, hold: HoldId) -> String {
    id("hld_", sale.0, Some(hold.0))
}

pub fn order_id(sale: SaleId, order: OrderId) -> String {
    id("ord_", sale.0, Some(order.0))
}

/// `<prefix><sale>[_<n>]`, without the formatting machinery: views carry several ids each.
fn id(prefix: &str, sale: u64, n: Option<u64>) -> String {
    let mut s = String::with_capacity(prefix.len() + 2 * 20 + 1);
    push_id(&mut s, prefix, sale, n);
    s
}

/// Appends `<prefix><sale>[_<n>]` to `out` (for views written straight to JSON).
pub(crate) fn push_id(out: &mut String, prefix: &str, sale: u64, n: Option<u64>) {
    let mut buf = itoa::Buffer::new();
    out.push_str(prefix);
    out.push_str(buf.format(sale));
    if let Some(n) = n {
        out.push('_');
        out.push_str(buf.format(n));
    }
}

fn number(s: &str) -> Option<u64> {
    // Digits only, no sign, no leading zeros beyond "0", at most u64.
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

pub fn parse_event_id(s: &str) -> Option<SaleId> {
    s.strip_prefix("evt_").and_then(number).map(SaleId)
}

fn parse_pair(s: &str, prefix: &str) -> Option<(SaleId, u64)> {
    let rest = s.strip_prefix(prefix)?;
    let (a, b) = rest.split_once('_')?;
    Some((SaleId(number(a)?), number(b)?))
}

pub fn parse_hold_id(s: &str) -> Option<(SaleId, HoldId)> {
    parse_pair(s, "hld_").map(|(s, h)| (s, HoldId(h)))
}

pub fn parse_order_id(s: &str) -> Option<(SaleId, OrderId)> {
    parse_pair(s, "ord_").map(|(s, o)| (s, OrderId(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_junk_is_refused() {
        assert_eq!(event_id(SaleId(42)), "evt_42");
        assert_eq!(hold_id(SaleId(3), HoldId(17)), "hld_3_17");
        assert_eq!(order_id(SaleId(u64::MAX), OrderId(0)), format!("ord_{}_0", u64::MAX));
        assert_eq!(parse_event_id(&event_id(SaleId(42))), Some(SaleId(42)));
        assert_eq!(
            parse_hold_id(&hold_id(SaleId(3), HoldId(17))),
            Some((SaleId(3), HoldId(17)))
        );
        assert_eq!(
            parse_order_id(&order_id(SaleId(3), OrderId(5))),
            Some((SaleId(3), OrderId(5)))
        );
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
                parse_event_id(junk).is_none() && parse_hold_id(junk).is_none() && parse_order_id(junk).is_none(),
                "{junk}"
            );
        }
    }
}
