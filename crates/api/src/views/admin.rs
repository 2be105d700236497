//! Small answers of the admin and ops routes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PublicOrderId;
use crate::time::Rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerTokenView {
    pub token: String,
    pub buyer_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Rfc3339,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinView {
    pub ticket_code: String,
    #[schema(value_type = String, example = "ord_1_1")]
    pub order_id: PublicOrderId,
    pub ticket_type_id: u32,
    #[schema(value_type = String, format = DateTime)]
    pub checked_in_at: Rfc3339,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: &'static str,
}
