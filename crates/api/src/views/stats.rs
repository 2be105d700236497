//! A sale's figures for its organiser: capacity, held and sold per quota and ticket type,
//! holds and orders by state, tickets issued and checked in.

use serde::Serialize;
use taquilla_domain::{HoldState, OrderState, QuotaId, SaleId, SaleState};
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

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HoldCounts {
    pub active: u64,
    pub released: u64,
    pub expired: u64,
    pub converted: u64,
}

impl HoldCounts {
    pub fn add(&mut self, s: HoldState) {
        let n = match s {
            HoldState::Active => &mut self.active,
            HoldState::Released => &mut self.released,
            HoldState::Expired => &mut self.expired,
            HoldState::Converted(_) => &mut self.converted,
        };
        *n += 1;
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
    pub fn add(&mut self, s: OrderState) {
        let n = match s {
            OrderState::AwaitingPayment => &mut self.awaiting_payment,
            OrderState::PaymentPending => &mut self.payment_pending,
            OrderState::Paid => &mut self.paid,
            OrderState::PaymentFailed => &mut self.payment_failed,
            OrderState::Cancelled => &mut self.cancelled,
            OrderState::Expired => &mut self.expired,
            OrderState::RefundRequired => &mut self.refund_required,
            OrderState::Refunded => &mut self.refunded,
        };
        *n += 1;
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
    /// `None` before the sale record exists. Scans the sale's holds, orders and tickets.
    pub fn new(sale: SaleId, state: &SaleState) -> Option<StatsView> {
        let s = state.sale.as_ref()?;
        let mut holds = HoldCounts::default();
        state.holds.values().for_each(|h| holds.add(h.state));
        let mut orders = OrderCounts::default();
        state.orders.values().for_each(|o| orders.add(o.state));
        let valid = state.tickets.values().filter(|t| !t.refunded);
        let (tickets_valid, tickets_checked_in) =
            valid.fold((0, 0), |(v, c), t| (v + 1, c + u64::from(t.checked_in_at.is_some())));
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
            holds,
            orders,
            tickets_valid,
            tickets_checked_in,
        })
    }
}
