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
mod sale;
mod stats;

pub use admin::{BuyerTokenView, CheckinView, Health};
pub use feed::{FeedEvent, FeedView, event_data};
pub use hold::{HoldStateView, HoldView, ItemView, ItemsView};
pub use order::{OrderView, TicketStateView, TicketView, TicketsView};
pub use sale::{SaleList, SaleView, TicketTypeView};
pub use stats::{HoldCounts, OrderCounts, QuotaView, StatsView, TypeStats};

use taquilla_domain::SaleState;

/// The sale's currency code ("" before the sale record exists).
pub(crate) fn currency(state: &SaleState) -> &str {
    state.sale.as_ref().map_or("", |s| s.currency.as_str())
}
