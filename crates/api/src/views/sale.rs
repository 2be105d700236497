//! A sale as the public sees it (the API calls it an event): its catalog and live availability.

use serde::Serialize;
use taquilla_domain::{SaleId, SaleState, TicketTypeId};
use utoipa::ToSchema;

use crate::ids::PublicSaleId;
use crate::named::SaleStatusName;
use crate::time::Rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketTypeView {
    pub id: u32,
    pub name: String,
    pub price_minor: i64,
    /// ISO 4217.
    pub currency: String,
    pub max_per_order: Option<u32>,
    /// Tickets that could be held right now.
    pub available: u32,
}

impl TicketTypeView {
    pub fn new(state: &SaleState, id: TicketTypeId) -> Option<TicketTypeView> {
        let t = state.ticket_types.get(id.0 as usize)?;
        Some(TicketTypeView {
            id: id.0,
            name: t.name.as_str().to_string(),
            price_minor: t.price.get(),
            currency: super::currency(state).to_string(),
            max_per_order: t.max_per_order,
            available: state.available(t.id),
        })
    }
}

/// A sale. Rendered once per sale version and served from memory (see `pages.rs`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SaleView {
    #[schema(value_type = String, example = "evt_1")]
    pub id: PublicSaleId,
    pub name: String,
    /// ISO 4217.
    pub currency: String,
    pub status: SaleStatusName,
    pub hold_ttl_secs: u64,
    pub max_tickets_per_buyer: Option<u32>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub opens_at: Option<Rfc3339>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<Rfc3339>,
    pub ticket_types: Vec<TicketTypeView>,
}

impl SaleView {
    /// `None` before the sale record exists.
    pub fn new(sale: SaleId, state: &SaleState) -> Option<SaleView> {
        let s = state.sale.as_ref()?;
        Some(SaleView {
            id: PublicSaleId(sale),
            name: s.name.as_str().to_string(),
            currency: s.currency.as_str().to_string(),
            status: SaleStatusName(s.status),
            hold_ttl_secs: s.hold_ttl_ms / 1000,
            max_tickets_per_buyer: s.max_tickets_per_buyer,
            opens_at: s.opens_at.map(Rfc3339),
            closes_at: s.closes_at.map(Rfc3339),
            ticket_types: state
                .ticket_types
                .iter()
                .filter_map(|t| TicketTypeView::new(state, t.id))
                .collect(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SaleList {
    pub events: Vec<SaleView>,
}
