//! Request bodies. Parsed strictly (unknown fields are refused) into plain values here, then
//! into domain values (`taquilla_domain::values`) by the handlers, which own the error messages.

use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSaleRequest {
    /// 1–200 bytes.
    pub name: String,
    /// ISO 4217, e.g. "EUR".
    pub currency: String,
    /// How long a hold lasts (and then its order's payment window): 1 s – 24 h; default 900.
    pub hold_ttl_secs: Option<u64>,
    pub max_tickets_per_buyer: Option<u32>,
    /// RFC 3339; holds are refused before it.
    pub opens_at: Option<String>,
    /// RFC 3339; holds are refused from it on.
    pub closes_at: Option<String>,
    /// How long an order may wait for an offline payment (bank transfer, box office) once its
    /// buyer chooses it: 1 s – 30 days. Omitted: the sale takes no offline payments.
    pub offline_payment_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketTypeRequest {
    pub name: String,
    /// Price in the sale's currency's minor unit (cents), 0 – 10^12.
    pub price_minor: i64,
    /// Most tickets of this type in one hold (1–100).
    pub max_per_order: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuotaRequest {
    pub name: String,
    pub capacity: u32,
    /// The ticket types that count against this quota (a type may be in several quotas).
    pub ticket_type_ids: Vec<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerTokenRequest {
    /// The integrator's id of the buyer, 1–64 bytes.
    pub buyer_id: String,
    /// Token lifetime, 60 s – 30 days; default 1 day.
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldItemRequest {
    pub ticket_type_id: u32,
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// 1–16 lines, each a distinct ticket type.
    pub items: Vec<HoldItemRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// `test`, `simulated` or `stripe` (a provider this server is configured with), or
    /// `offline` (bank transfer, box office: the organiser confirms it) when the sale offers it.
    #[schema(value_type = crate::named::PaymentMethodName)]
    pub method: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPaymentRequest {
    /// The organiser's reference of the payment received (bank transfer id, receipt number):
    /// 1–128 bytes.
    pub payment_ref: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRequest {
    pub ticket_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Tickets to refund; omitted = every remaining ticket (or settle a `refund_required` order).
    pub ticket_codes: Option<Vec<String>>,
}
