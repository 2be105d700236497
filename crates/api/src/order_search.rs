//! Searching orders for organisers (`GET /v1/admin/orders`), from memory, by cursor.
//!
//! Orders are numbered 1, 2, 3… inside their sale and never deleted (they are money records),
//! and sale ids only grow. So the pair (sale, order id) orders every order there is, and an
//! order keeps its place whatever else happens: a cursor naming "the next pair to look at" never
//! skips or repeats an order under concurrent holds, checkouts and payments. New orders are
//! appended to their sale, so a reader still inside a sale sees them; one that has passed it
//! does not (the feed is the reader for changes).
//!
//! The filters other than the ticket code have no index (one would tax every checkout on the
//! shard thread), so a request scans at most [`ORDERS_SCAN_MAX`] orders, under the sale's read
//! lock in sections of [`ORDERS_SCAN_CHUNK`], and answers with what it found and a cursor to go
//! on from: a page may hold fewer than `limit` orders (or none) and still have a next one.
//! A ticket code is an index lookup per sale.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use taquilla_domain::{BuyerId, Order, OrderId, OrderState, SaleId, SaleState, TicketCode, Timestamp};

use crate::limits::{ORDERS_SCAN_CHUNK, ORDERS_SCAN_MAX};

/// Where a search goes on from: the next (sale, order) to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub sale: SaleId,
    pub order: OrderId,
}

/// Characters of a cursor's text (16 bytes in base64url without padding).
pub const CURSOR_CHARS: usize = 22;
/// 21 characters of 6 bits and one carrying the last 2 (its 4 low bits zero).
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{21}[AQgw]$";

impl Cursor {
    pub const START: Cursor = Cursor {
        sale: SaleId(0),
        order: OrderId(1),
    };

    /// Opaque text: clients keep it, they do not build it.
    pub fn to_text(self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.sale.0.to_be_bytes());
        bytes[8..].copy_from_slice(&self.order.0.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        if s.len() != CURSOR_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let sale = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let order = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        // Order ids start at 1: order 0 is the same place as order 1.
        Some(Cursor {
            sale: SaleId(sale),
            order: OrderId(order.max(1)),
        })
    }
}

/// What an order must match; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub sale: Option<SaleId>,
    pub buyer: Option<BuyerId>,
    pub state: Option<OrderState>,
    pub ticket_code: Option<TicketCode>,
    /// `created_at >= created_after`.
    pub created_after: Option<Timestamp>,
    /// `created_at < created_before`.
    pub created_before: Option<Timestamp>,
}

impl Filter {
    pub fn matches(&self, o: &Order) -> bool {
        self.buyer.as_ref().is_none_or(|b| &o.buyer == b)
            && self.state.is_none_or(|s| o.state == s)
            && self.created_after.is_none_or(|t| o.created_at >= t)
            && self.created_before.is_none_or(|t| o.created_at < t)
            && self.ticket_code.is_none_or(|c| o.tickets.contains(&c))
    }
}

/// What one section of a scan found in one sale.
#[derive(Debug, Default)]
pub struct Section<T> {
    pub found: Vec<T>,
    /// The next order id of this sale to look at, or `None` when the sale's orders were all
    /// looked at.
    pub next: Option<OrderId>,
    /// Orders looked at.
    pub scanned: usize,
}

/// Scans one sale's orders from `from`, at most `ORDERS_SCAN_CHUNK` of them (and at most
/// `budget`), rendering each match with `render` until `want` were found. Runs under the
/// sale's read lock.
pub fn scan_section<T>(
    state: &SaleState,
    filter: &Filter,
    from: OrderId,
    want: usize,
    budget: usize,
    mut render: impl FnMut(&SaleState, &Order) -> T,
) -> Section<T> {
    let mut section = Section {
        found: Vec::new(),
        next: None,
        scanned: 0,
    };
    if let Some(code) = filter.ticket_code {
        // Indexed: the ticket names its order.
        if let Some(o) = state.tickets.get(&code).and_then(|t| state.orders.get(&t.order))
            && o.id >= from
            && filter.matches(o)
        {
            section.found.push(render(state, o));
        }
        section.scanned = 1;
        return section;
    }
    let len = state.orders.len() as u64;
    let mut id = from.0;
    let stop = len.min(from.0.saturating_add(ORDERS_SCAN_CHUNK.min(budget) as u64) - 1);
    while id <= stop && section.found.len() < want {
        let o = &state.orders[&OrderId(id)];
        debug_assert_eq!(o.id, OrderId(id), "orders are stored by id");
        if filter.matches(o) {
            section.found.push(render(state, o));
        }
        id += 1;
        section.scanned += 1;
    }
    section.next = (id <= len).then_some(OrderId(id));
    section
}

/// A search over `sales` (sorted) from `cursor`: sections of [`scan_section`], each under its
/// own read lock (`read` takes the lock), until `limit` orders were found or
/// [`ORDERS_SCAN_MAX`] looked at. Returns the orders and the cursor to go on from (`None`: no
/// order left to look at).
pub fn search<T>(
    sales: &[SaleId],
    filter: &Filter,
    cursor: Cursor,
    limit: usize,
    mut read: impl FnMut(SaleId, &mut dyn FnMut(&SaleState) -> Section<T>) -> Option<Section<T>>,
    render: impl Fn(SaleId, &SaleState, &Order) -> T,
) -> (Vec<T>, Option<Cursor>) {
    let mut found = Vec::new();
    let mut budget = ORDERS_SCAN_MAX;
    let first = sales.partition_point(|s| *s < cursor.sale);
    for &sale in &sales[first..] {
        let mut from = if sale == cursor.sale { cursor.order } else { OrderId(1) };
        loop {
            if found.len() == limit || budget == 0 {
                return (found, Some(Cursor { sale, order: from }));
            }
            let want = limit - found.len();
            let mut f = |s: &SaleState| scan_section(s, filter, from, want, budget, |s, o| render(sale, s, o));
            // A sale that vanished (it cannot: sales are never removed) has nothing to show.
            let Some(section) = read(sale, &mut f) else { break };
            found.extend(section.found);
            // Every sale visited costs at least one unit, so a search over many empty sales ends.
            budget = budget.saturating_sub(section.scanned.max(1));
            match section.next {
                Some(next) => from = next,
                None => break,
            }
        }
    }
    (found, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CURSOR_PATTERN` checked by hand (21 URL-safe characters, then one of `AQgw`).
    fn matches_cursor_pattern(pattern: &str) -> impl Fn(&str) -> bool {
        assert_eq!(pattern, "^[A-Za-z0-9_-]{21}[AQgw]$");
        |s: &str| {
            s.len() == 22
                && s[..21]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && s.ends_with(['A', 'Q', 'g', 'w'])
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused() {
        for (sale, order) in [(0, 1), (1, 1), (7, 123_456), (u64::MAX, u64::MAX)] {
            let c = Cursor {
                sale: SaleId(sale),
                order: OrderId(order),
            };
            let text = c.to_text();
            assert_eq!(text.len(), CURSOR_CHARS);
            assert_eq!(Cursor::parse(&text), Some(c));
        }
        for bad in [
            "",
            "abc",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "!!!!!!!!!!!!!!!!!!!!!!",
            "AAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
        // Every text of the documented pattern is a cursor (order 0 reads as 1).
        let pattern = matches_cursor_pattern(CURSOR_PATTERN);
        for good in [
            "AAAAAAAAAAAAAAAAAAAAAA",
            "000000000000000000000A",
            "__________________---w",
        ] {
            assert!(pattern(good), "{good}");
            assert!(Cursor::parse(good).is_some(), "{good}");
        }
    }
}
