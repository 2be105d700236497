//! Small answers of the admin and ops routes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::PublicOrderId;
use crate::keys::{ApiKeyRecord, Scope};
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

/// An admin API key, as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key id, `ak_` and 16 hex digits: the part of the key before the dot; logged with
    /// every request the key makes.
    #[schema(example = "ak_3f9a0c1d2b4e5f60")]
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Rfc3339,
    /// Set once revoked; the key is refused from then on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Rfc3339>,
}

impl ApiKeyView {
    pub fn new(r: &ApiKeyRecord) -> ApiKeyView {
        ApiKeyView {
            id: r.id.clone(),
            name: r.name.clone(),
            scopes: r.scopes.clone(),
            created_at: Rfc3339(r.created_at),
            revoked_at: r.revoked_at.map(Rfc3339),
        }
    }
}

/// A key just created: the only answer that carries the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreatedView {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// Send as `Authorization: Bearer <key>`. Shown once: only its SHA-256 is stored.
    #[schema(example = "ak_3f9a0c1d2b4e5f60.Jm3lq0d8Q1o1pXH9m1r0kq3t2YbqjvJ3p5m8sVx0cQk")]
    pub key: String,
}

/// Every API key, revoked ones included (the latest revoked are kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKeyView>,
}
