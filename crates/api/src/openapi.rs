//! The OpenAPI document, generated from the handlers' annotations (utoipa). A test checks
//! that every route of the router is in it.

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{admin, buyer, ops};
use crate::views::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "taquilla", description = "High-frequency ticket selling: holds, orders, tickets. Errors are always {\"error\": {\"code\", \"message\", \"correlation_id\"}}."),
    paths(
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
        admin::create_event, admin::create_ticket_type, admin::create_quota, admin::open, admin::pause, admin::close,
        admin::stats, admin::checkin, admin::refund, admin::cancel_order, admin::buyer_token, admin::feed,
        buyer::list_events, buyer::get_event, buyer::create_hold, buyer::get_hold, buyer::release_hold, buyer::checkout,
        buyer::get_order, buyer::pay, buyer::cancel_order,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, CreateEventRequest, CreateTicketTypeRequest, CreateQuotaRequest, BuyerTokenRequest,
        HoldItemRequest, HoldRequest, PayRequest, CheckinRequest, RefundRequest, TicketTypeView, EventView, EventList,
        QuotaView, ItemView, HoldView, TicketView, OrderView, BuyerTokenView, CheckinView, TypeStats, HoldCounts,
        OrderCounts, StatsView, FeedEvent, FeedView, Health,
    )),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The admin token given to `taquilla serve`.".into());
        components.add_security_scheme("admin", SecurityScheme::Http(admin));
        let mut buyer = Http::new(HttpAuthScheme::Bearer);
        buyer.bearer_format = Some("v1.<base64url(buyer_id)>.<expires_at>.<base64url(hmac_sha256)>".into());
        buyer.description = Some("A buyer token: from POST /v1/admin/buyer-tokens, or minted by your back end with the shared secret (see README).".into());
        components.add_security_scheme("buyer", SecurityScheme::Http(buyer));
    }
}

/// The document as JSON, built once.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_string()))
        .clone()
}
