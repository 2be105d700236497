//! The OpenAPI document: the paths come from the route table itself (`routes::router`, through
//! `utoipa-axum`), the schemas from the types the handlers take and answer with. This module
//! adds what no handler declares: the title, the security schemes and the error schemas.

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::error::{Code, ErrorBody, ErrorDetail, ErrorDetails};

#[derive(OpenApi)]
#[openapi(
    info(title = "taquilla", description = "High-frequency ticket selling: holds, orders, tickets. A sale is called an event in this API. Errors are always {\"error\": {\"code\", \"message\", \"correlation_id\", \"details\"?}}; branch on `code` (schema ErrorCode)."),
    components(schemas(ErrorBody, ErrorDetail, ErrorDetails, Code)),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
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

/// The document as JSON, built once from the route table.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc = crate::routes::router().into_openapi();
        doc.to_json().unwrap_or_else(|_| "{}".to_string())
    })
    .clone()
}
