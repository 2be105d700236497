//! Request bodies. Parsed strictly (unknown fields are refused) into plain values here, then
//! into domain values (`taquilla_domain::values`) by the handlers, which own the error messages.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::constraints;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSaleRequest {
    /// 1–200 characters, not only white space, no control characters.
    #[schema(schema_with = constraints::name)]
    pub name: String,
    /// ISO 4217, e.g. "EUR".
    #[schema(schema_with = constraints::currency)]
    pub currency: String,
    /// How long a hold lasts (and then its order's payment window): 1 s – 24 h; default 900.
    #[schema(schema_with = constraints::hold_ttl_secs)]
    pub hold_ttl_secs: Option<u64>,
    /// Tickets one buyer may have across holds and orders; omitted: no limit.
    #[schema(schema_with = constraints::max_tickets_per_buyer)]
    pub max_tickets_per_buyer: Option<u32>,
    /// RFC 3339; holds are refused before it.
    #[schema(schema_with = constraints::time_or_null)]
    pub opens_at: Option<String>,
    /// RFC 3339, after `opens_at`; holds are refused from it on.
    #[schema(schema_with = constraints::time_or_null)]
    pub closes_at: Option<String>,
    /// How long an order may wait for an offline payment (bank transfer, box office) once its
    /// buyer chooses it: 1 s – 30 days. Omitted: the sale takes no offline payments.
    #[schema(schema_with = constraints::offline_payment_ttl_secs)]
    pub offline_payment_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketTypeRequest {
    #[schema(schema_with = constraints::name)]
    pub name: String,
    /// Price in the sale's currency's minor unit (cents), 0 – 10^12.
    #[schema(schema_with = constraints::price_minor)]
    pub price_minor: i64,
    /// Most tickets of this type in one hold (1–100).
    #[schema(schema_with = constraints::max_per_order)]
    pub max_per_order: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuotaRequest {
    #[schema(schema_with = constraints::name)]
    pub name: String,
    #[schema(schema_with = constraints::capacity)]
    pub capacity: u32,
    /// The ticket types that count against this quota (a type may be in several quotas).
    #[schema(schema_with = constraints::quota_ticket_type_ids)]
    pub ticket_type_ids: Vec<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerTokenRequest {
    /// The integrator's id of the buyer, 1–64 characters.
    #[schema(schema_with = constraints::buyer_id)]
    pub buyer_id: String,
    /// Token lifetime, 60 s – 30 days; default 1 day.
    #[schema(schema_with = constraints::buyer_token_ttl_secs)]
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldItemRequest {
    #[schema(schema_with = constraints::ticket_type_id)]
    pub ticket_type_id: u32,
    /// At most the ticket type's `max_per_order`, if it has one.
    #[schema(schema_with = constraints::quantity)]
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// 1–16 lines, each a distinct ticket type.
    #[schema(schema_with = constraints::hold_items)]
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
    /// 1–128 characters.
    #[schema(schema_with = constraints::payment_ref)]
    pub payment_ref: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRequest {
    #[schema(schema_with = constraints::ticket_code)]
    pub ticket_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Tickets to refund; omitted = every remaining ticket (or settle a `refund_required` order).
    #[schema(schema_with = constraints::refund_ticket_codes)]
    pub ticket_codes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Who or what holds the key, e.g. "door scanner 3".
    #[schema(schema_with = constraints::name)]
    pub name: String,
    /// What the key may do: `admin` (everything), `door` (check-in, stats), `reporting`
    /// (stats, orders, feed). One to three.
    #[schema(min_items = 1, max_items = 3)]
    pub scopes: Vec<crate::keys::Scope>,
}

/// The waiting room of a sale (organiser).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomRequest {
    /// RFC 3339: buyers may join from then on (the pre-queue).
    #[schema(schema_with = constraints::time)]
    pub prequeue_opens_at: String,
    /// RFC 3339, not before `prequeue_opens_at`: the pre-queue is shuffled and admission starts.
    #[schema(schema_with = constraints::time)]
    pub opens_at: String,
    /// Most buyers admitted per second (admission also waits for stock).
    #[schema(schema_with = constraints::admit_per_sec)]
    pub admit_per_sec: u32,
    /// How long an admission lasts, in seconds.
    #[schema(schema_with = constraints::session_secs)]
    pub session_secs: u64,
    /// Most buyers queued at once; a join beyond it answers `503 queue_full`.
    #[schema(schema_with = constraints::queue_max)]
    pub queue_max: u32,
}

/// A change to a ticket type: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditTicketTypeRequest {
    #[schema(schema_with = constraints::name_or_null)]
    pub name: Option<String>,
    /// The price of holds placed from now on; holds and orders keep theirs, and refunds give
    /// back what was paid. At most 64 changes per type.
    #[schema(schema_with = constraints::price_minor_or_null)]
    pub price_minor: Option<i64>,
    /// Most tickets of this type in one hold (1–100); `null` removes the maximum, omitted
    /// leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = constraints::max_per_order)]
    pub max_per_order: Option<Option<u32>>,
}

/// A field given, possibly as `null` (`Some(None)`), told apart from one omitted (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditQuotaRequest {
    /// The new capacity: any raise; a cut only down to what the quota holds and sold
    /// (else `409 conflict`, `details.reason` `capacity_below_usage`).
    #[schema(schema_with = constraints::capacity)]
    pub capacity: u32,
}
