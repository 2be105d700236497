//! Admin API keys (`admin` scope): create (the key is shown once), list, revoke. A change is
//! durable in the keys file and in force for every later request when the answer is sent.

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::json::Json;
use crate::keys::api_keys::is_key_id;
use crate::requests::CreateApiKeyRequest;
use crate::views::{ApiKeyCreatedView, ApiKeyList, ApiKeyView};

/// Runs a keys-file change (an fsync) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::keys::KeysError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(crate::error::Code::Internal, "the keys task failed"))?
        .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/v1/admin/api-keys", tag = "admin", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreatedView, description = "The key, shown this once; in force at once"),
        (status = 422, body = crate::error::ErrorBody, description = "`too_many_keys`: 100 keys are active; revoke one first"),
        (status = 503, body = crate::error::ErrorBody, description = "`unavailable`: the keys file cannot be written now")),
    security(("admin" = ["admin"])))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyCreatedView>), ApiError> {
    let keys = state.keys.clone();
    let now = state.now();
    let (record, key) = blocking(move || keys.create_api_key(&req.name, &req.scopes, now)).await?;
    tracing::info!(target: "taquilla::audit", key_id = %record.id, name = %record.name, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreatedView {
            api_key: ApiKeyView::new(&record),
            key,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/api-keys", tag = "admin",
    responses((status = 200, body = ApiKeyList),
        (status = 503, body = crate::error::ErrorBody, description = "`unavailable`: the keys file cannot be read now")),
    security(("admin" = ["admin"])))]
pub(crate) async fn list_api_keys(State(state): State<AppState>, _: Admin) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.keys.clone();
    let records = blocking(move || keys.api_keys()).await?;
    Ok(Json(ApiKeyList {
        keys: records.iter().map(ApiKeyView::new).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/admin/api-keys/{key_id}", tag = "admin", params(("key_id" = String, Path)),
    responses((status = 200, body = ApiKeyView, description = "Revoked (again: unchanged); refused from now on"),
        (status = 503, body = crate::error::ErrorBody, description = "`unavailable`: the keys file cannot be written now")),
    security(("admin" = ["admin"])))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(key_id): ApiPath,
) -> Result<Json<ApiKeyView>, ApiError> {
    if !is_key_id(&key_id) {
        return Err(ApiError::not_found("API key"));
    }
    let keys = state.keys.clone();
    let now = state.now();
    let record = blocking(move || keys.revoke_api_key(&key_id, now)).await?;
    tracing::info!(target: "taquilla::audit", key_id = %record.id, "API key revoked");
    Ok(Json(ApiKeyView::new(&record)))
}
