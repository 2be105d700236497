//! A sale's figures for its organiser: capacity, held and sold per quota and ticket type,
//! holds and orders by state, tickets issued and checked in.

use serde::Serialize;
use taquilla_domain::{Counts, HoldState, OrderId, OrderState, QuotaId, SaleId, SaleState};
use utoipa::ToSchema;

use crate::ids::PublicSaleId;
use crate::named::SaleStatusName;

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub id: u32,
    pub name: String,
    pub capacity: u32,
    pub ticket_type_ids: Vec<u32>,
    pub held: u32,
    pub sold: u32,
    pub available: u32,
}

impl QuotaView {
    pub fn new(state: &SaleState, id: QuotaId) -> Option<QuotaView> {
        let q = state.quotas.get(id.0 as usize)?;
        Some(QuotaView {
            id: id.0,
            name: q.name.as_str().to_string(),
            capacity: q.capacity,
            ticket_type_ids: q.ticket_types.iter().map(|t| t.0).collect(),
            held: q.held,
            sold: q.sold,
            available: q.available(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeStats {
    pub id: u32,
    pub name: String,
    pub held: u32,
    pub sold: u32,
    pub available: u32,
}

/// Holds active now, and ever released, expired and checked out.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HoldCounts {
    pub active: u64,
    pub released: u64,
    pub expired: u64,
    pub converted: u64,
}

impl HoldCounts {
    fn of(c: &Counts) -> HoldCounts {
        let n = |s: HoldState| c.holds[s.kind()];
        HoldCounts {
            active: n(HoldState::Active),
            released: n(HoldState::Released),
            expired: n(HoldState::Expired),
            converted: n(HoldState::Converted(OrderId(0))),
        }
    }
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct OrderCounts {
    pub awaiting_payment: u64,
    pub payment_pending: u64,
    pub paid: u64,
    pub payment_failed: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub refund_required: u64,
    pub refunded: u64,
}

impl OrderCounts {
    fn of(c: &Counts) -> OrderCounts {
        let n = |s: OrderState| c.orders[s as usize];
        OrderCounts {
            awaiting_payment: n(OrderState::AwaitingPayment),
            payment_pending: n(OrderState::PaymentPending),
            paid: n(OrderState::Paid),
            payment_failed: n(OrderState::PaymentFailed),
            cancelled: n(OrderState::Cancelled),
            expired: n(OrderState::Expired),
            refund_required: n(OrderState::RefundRequired),
            refunded: n(OrderState::Refunded),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    #[schema(value_type = String, example = "evt_1")]
    pub event_id: PublicSaleId,
    pub status: SaleStatusName,
    /// Sum of quota capacities (a ticket in overlapping quotas counts in each).
    pub capacity: u64,
    pub held: u64,
    pub sold: u64,
    pub quotas: Vec<QuotaView>,
    pub ticket_types: Vec<TypeStats>,
    pub holds: HoldCounts,
    pub orders: OrderCounts,
    /// Tickets issued and not refunded, and of those checked in.
    pub tickets_valid: u64,
    pub tickets_checked_in: u64,
}

impl StatsView {
    /// `None` before the sale record exists. O(ticket types + quotas): the counts of holds,
    /// orders and tickets are kept by `evolve`, never recounted under the sale's lock.
    pub fn new(sale: SaleId, state: &SaleState) -> Option<StatsView> {
        let s = state.sale.as_ref()?;
        let c = &state.counts;
        Some(StatsView {
            event_id: PublicSaleId(sale),
            status: SaleStatusName(s.status),
            capacity: state.quotas.iter().map(|q| u64::from(q.capacity)).sum(),
            held: state.ticket_types.iter().map(|t| u64::from(t.held)).sum(),
            sold: state.ticket_types.iter().map(|t| u64::from(t.sold)).sum(),
            quotas: state
                .quotas
                .iter()
                .filter_map(|q| QuotaView::new(state, q.id))
                .collect(),
            ticket_types: state
                .ticket_types
                .iter()
                .map(|t| TypeStats {
                    id: t.id.0,
                    name: t.name.as_str().to_string(),
                    held: t.held,
                    sold: t.sold,
                    available: state.available(t.id),
                })
                .collect(),
            holds: HoldCounts::of(c),
            orders: OrderCounts::of(c),
            tickets_valid: c.tickets_valid,
            tickets_checked_in: c.tickets_checked_in,
        })
    }
}
