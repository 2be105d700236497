//! The error answers routes share, declared once for the OpenAPI document (`responses(...)`
//! of each `#[utoipa::path]`). Each lists the codes a client can get with that status; the
//! body is always [`ErrorBody`].
#![allow(dead_code)] // Never constructed: these types only describe answers.

use utoipa::IntoResponses;

use crate::error::ErrorBody;

/// Any API route: the engine is recovering or stopped, or the sale's queue is full.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "`unavailable` (recovering, or stopped after a storage failure) or `overloaded` (the sale's queue is full). Retry after `Retry-After` seconds.",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
)]
pub struct Unavailable(ErrorBody);

/// Routes under a rate limit (per buyer, per client address).
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "`rate_limited`: too many requests from this buyer or client address. Retry after `Retry-After` seconds.",
    headers(("Retry-After" = u32, description = "Whole seconds until the next request is taken (at least 1)"))
)]
pub struct RateLimited(ErrorBody);

/// Routes with a buyer token.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "`unauthorized`: missing, malformed, expired or forged token"
)]
pub struct BuyerAuth(ErrorBody);

/// Routes with the admin token.
#[derive(IntoResponses)]
pub enum AdminAuth {
    #[response(status = 401, description = "`unauthorized`: no bearer token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "`forbidden`: not the admin token")]
    Forbidden(ErrorBody),
}

/// Routes that take a JSON body.
#[derive(IntoResponses)]
pub enum BadBody {
    #[response(status = 400, description = "`malformed_request`: not JSON")]
    Malformed(ErrorBody),
    #[response(status = 413, description = "`payload_too_large`: over the body limit")]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: not `Content-Type: application/json`"
    )]
    MediaType(ErrorBody),
    #[response(
        status = 422,
        description = "`invalid`: wrong types, unknown fields, out-of-range values (the message names the field)"
    )]
    Invalid(ErrorBody),
}

/// Routes with an id in the path.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "`not_found`: unknown or malformed id (or another buyer's hold or order)"
)]
pub struct NotFound(ErrorBody);
