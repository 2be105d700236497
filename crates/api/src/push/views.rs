//! What the stream's `availability` events carry (the struct is the encoder and the schema in
//! the OpenAPI document); `room` events carry `WaitingRoomStatusView`, declared with the
//! waiting room's routes.

use serde::Serialize;
use taquilla_domain::{SaleId, SaleState};
use utoipa::ToSchema;

use crate::ids::PublicSaleId;
use crate::named::SaleStatusName;

/// The data of an `availability` event: what can be bought now. Sent at once on connecting
/// (unless `Last-Event-ID` names this very version) and after the sale changes, at most
/// `PUSH_RENDERS_PER_SEC_MAX` times a second (changes in between are coalesced).
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    #[schema(value_type = String, example = "evt_1")]
    pub event_id: PublicSaleId,
    /// The sale's version this state is from; also the event's SSE `id`. It only grows.
    pub version: u64,
    pub status: SaleStatusName,
    pub ticket_types: Vec<TicketTypeAvailability>,
    pub quotas: Vec<QuotaAvailability>,
}

/// A ticket type's figures: `available` is what one hold could take now (the least its
/// quotas have left).
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketTypeAvailability {
    pub id: u32,
    pub available: u32,
    /// In active holds and unpaid orders.
    pub held: u32,
    /// Paid, not refunded.
    pub sold: u32,
}

/// A quota's figures: `held + sold + available = capacity`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaAvailability {
    pub id: u32,
    pub capacity: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

impl AvailabilityView {
    /// `None` before the sale record exists.
    pub fn new(sale: SaleId, version: u64, state: &SaleState) -> Option<AvailabilityView> {
        let s = state.sale.as_ref()?;
        Some(AvailabilityView {
            event_id: PublicSaleId(sale),
            version,
            status: SaleStatusName(s.status),
            ticket_types: state
                .ticket_types
                .iter()
                .map(|t| TicketTypeAvailability {
                    id: t.id.0,
                    available: state.available(t.id),
                    held: t.held,
                    sold: t.sold,
                })
                .collect(),
            quotas: state
                .quotas
                .iter()
                .map(|q| QuotaAvailability {
                    id: q.id.0,
                    capacity: q.capacity,
                    available: q.available(),
                    held: q.held,
                    sold: q.sold,
                })
                .collect(),
        })
    }
}
