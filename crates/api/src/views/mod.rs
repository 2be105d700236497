//! The JSON views the API answers with, one module per resource. Each view struct is both what
//! is sent (serde) and what the OpenAPI document shows (utoipa): declared once. Views of state
//! borrow it and are serialized under the sale's read lock, so building one allocates nothing
//! but its output buffer (see [`crate::json`]).
//!
//! On the wire: snake_case; money as integer minor units plus an ISO 4217 currency; times
//! RFC 3339 UTC ([`crate::time::Rfc3339`]); ids as their public text ([`crate::ids`]).

mod admin;
mod feed;
mod hold;
mod order;
mod payment;
mod room;
mod sale;
mod stats;

pub use admin::{ApiKeyCreatedView, ApiKeyList, ApiKeyView, BuyerTokenView, CheckinView, Health};
pub use feed::{FeedEvent, FeedView, event_data};
pub use hold::{HoldStateView, HoldView, ItemView, ItemsView};
pub use order::{OrderView, TicketCodeText, TicketStateView, TicketView, TicketsView};
pub use payment::{AdminOrderView, PaymentDetailView, PaymentStepView, PaymentView, RefundView};
pub use room::{OddsView, WaitingRoomStatusView, WaitingRoomView, WaitingStatus, read_status};
pub use sale::{SaleList, SaleView, TicketTypeView};
pub use stats::{HoldCounts, OrderCounts, QuotaView, StatsView, TypeStats};

use taquilla_domain::SaleState;

/// The sale's currency code ("" before the sale record exists).
pub(crate) fn currency(state: &SaleState) -> &str {
    state.sale.as_ref().map_or("", |s| s.currency.as_str())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use taquilla_domain::{Hold, HoldState, Items, Order, OrderState, SaleId, TicketCode, Timestamp};

    use super::*;

    /// A sale state with `types` ticket types (prices from `prices`), with or without its
    /// sale record (no currency then), and tickets for the given codes.
    fn state_with(has_sale: bool, prices: &[i64], tickets: &[(u128, u32, bool, Option<i64>)]) -> SaleState {
        use taquilla_domain::{Currency, MoneyMinor, Name, Sale, SaleStatus, Ticket, TicketType, TicketTypeId};
        let mut state = SaleState::default();
        if has_sale {
            state.sale = Some(Sale {
                name: Name::parse("Fest \"2026\" ✓").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                status: SaleStatus::Open,
                hold_ttl_ms: 900_000,
                max_tickets_per_buyer: Some(4),
                opens_at: None,
                closes_at: None,
                offline_payment_ttl_ms: None,
            });
        }
        for (i, p) in prices.iter().enumerate() {
            state.ticket_types.push(TicketType {
                id: TicketTypeId(i as u32),
                name: Name::parse("GA").unwrap(),
                price: MoneyMinor::new(*p).unwrap(),
                max_per_order: None,
                earlier_prices: Vec::new(),
                quotas: Default::default(),
                held: 0,
                sold: 0,
            });
        }
        for &(code, ty, refunded, checked_in) in tickets {
            state.tickets.insert(
                TicketCode(code),
                Ticket {
                    code: TicketCode(code),
                    order: taquilla_domain::OrderId(0),
                    ticket_type: TicketTypeId(ty),
                    refunded,
                    checked_in_at: checked_in.map(Timestamp),
                },
            );
        }
        state
    }

    fn items_of(lines: &[(u32, u32)]) -> Items {
        lines
            .iter()
            .map(|&(ty, q)| taquilla_domain::Item {
                ticket_type: taquilla_domain::TicketTypeId(ty),
                quantity: taquilla_domain::Quantity::new(q).unwrap(),
            })
            .collect()
    }

    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            0i64..4_102_444_800_000,
            Just(-1i64),
            Just(253_402_300_800_000i64),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
    }

    fn hold_state() -> impl Strategy<Value = HoldState> {
        prop_oneof![
            Just(HoldState::Active),
            Just(HoldState::Released),
            Just(HoldState::Expired),
            any::<u64>().prop_map(|o| HoldState::Converted(taquilla_domain::OrderId(o))),
        ]
    }

    fn order_state() -> impl Strategy<Value = OrderState> {
        prop::sample::select(OrderState::ALL.to_vec())
    }

    proptest! {
        /// The hold view's generated writer writes, byte for byte, what serde writes of it.
        #[test]
        fn hold_json_is_the_serialized_view(
            sale in any::<u64>(),
            id in any::<u64>(),
            has_sale in any::<bool>(),
            prices in prop::collection::vec(0i64..=1_000_000_000_000, 0..4),
            lines in prop::collection::vec((0u32..6, 1u32..=100), 0..4),
            total in 0i64..=1_000_000_000_000,
            expires_at in any_time(),
            st in hold_state(),
        ) {
            let state = state_with(has_sale, &prices, &[]);
            let h = Hold {
                id: taquilla_domain::HoldId(id),
                buyer: taquilla_domain::BuyerId::parse("ana").unwrap(),
                items: items_of(&lines),
                total: taquilla_domain::MoneyMinor::new(total).unwrap(),
                expires_at: Timestamp(expires_at),
                state: st,
            };
            let view = HoldView::new(SaleId(sale), &state, &h);
            let written = String::from_utf8(crate::json::encode(&view).as_bytes().to_vec()).unwrap();
            prop_assert_eq!(written, serde_json::to_string(&view).unwrap());
        }

        /// The order view's generated writer writes, byte for byte, what serde writes of it,
        /// tickets (known or not to the state, in every state) included.
        #[test]
        fn order_json_is_the_serialized_view(
            sale in any::<u64>(),
            id in any::<u64>(),
            hold in any::<u64>(),
            has_sale in any::<bool>(),
            prices in prop::collection::vec(0i64..=1_000_000_000_000, 0..4),
            lines in prop::collection::vec((0u32..6, 1u32..=100), 0..4),
            total in 0i64..=1_000_000_000_000,
            refunded in 0i64..=1_000_000_000_000,
            times in (any_time(), any_time(), prop::option::of(any_time())),
            st in order_state(),
            tickets in prop::collection::vec((any::<u128>(), 0u32..6, any::<bool>(), prop::option::of(any_time()), any::<bool>()), 0..5),
        ) {
            let known: Vec<_> = tickets.iter().filter(|t| t.4).map(|t| (t.0, t.1, t.2, t.3)).collect();
            let state = state_with(has_sale, &prices, &known);
            let o = Order {
                id: taquilla_domain::OrderId(id),
                hold: taquilla_domain::HoldId(hold),
                buyer: taquilla_domain::BuyerId::parse("ana").unwrap(),
                items: items_of(&lines),
                total: taquilla_domain::MoneyMinor::new(total).unwrap(),
                created_at: Timestamp(times.0),
                expires_at: Timestamp(times.1),
                state: st,
                payment_ref: None,
                paid_at: times.2.map(Timestamp),
                tickets: tickets.iter().map(|t| TicketCode(t.0)).collect(),
                refunded: taquilla_domain::MoneyMinor::new(refunded).unwrap(),
                payments: vec![],
                refunds: vec![],
            };
            let view = OrderView::new(SaleId(sale), &state, &o, true);
            let written = String::from_utf8(crate::json::encode(&view).as_bytes().to_vec()).unwrap();
            prop_assert_eq!(written, serde_json::to_string(&view).unwrap());
        }
    }
}
