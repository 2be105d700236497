//! What the server enforces on each request field, as JSON Schema for the OpenAPI document,
//! built from the same constants the checks use (`taquilla_domain::limits`, [`crate::limits`]).
//! A request field names its function here with `#[schema(schema_with = …)]`; utoipa's own
//! attributes take only literals, which would be a second copy of every limit.
//!
//! Cross-field rules JSON Schema cannot say (a ticket type once per hold, `closes_at` after
//! `opens_at`) and rules of the sale's state (its per-buyer limit, a type's `max_per_order`)
//! are in the operations' descriptions.

use taquilla_domain::limits;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};

use crate::limits::{BUYER_TOKEN_TTL_SECS_MAX, BUYER_TOKEN_TTL_SECS_MIN, FEED_LIMIT_MAX};

/// Text with something in it other than white space, and no control characters: what
/// `bounded_string!` in the domain checks (Rust's `char::is_control` is Unicode's Cc:
/// U+0000–001F and U+007F–009F; `str::trim` takes Unicode's `White_Space`).
pub const TEXT_PATTERN: &str = concat!(
    "^[^\\u0000-\\u001F\\u007F-\\u009F]*",
    "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
    "[^\\u0000-\\u001F\\u007F-\\u009F]*$"
);

/// An `Idempotency-Key` (`IdempotencyKey::parse` of a header value): printable ASCII, not only
/// spaces.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\x20-\\x7E]*[\\x21-\\x7E][\\x20-\\x7E]*$";

pub fn idempotency_key() -> Schema {
    Schema::Object(
        string_pattern(IDEMPOTENCY_KEY_PATTERN)
            .min_length(Some(1))
            .max_length(Some(limits::IDEMPOTENCY_KEY_MAX_BYTES))
            .build(),
    )
}

/// ISO 4217: three upper-case letters (`Currency::parse`).
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";

/// A ticket code (`TicketCode::parse`): 26 characters of Crockford's base32 in either case,
/// with `O` read as 0 and `I`, `L` as 1 (so every letter but `U`); the first, carrying the top
/// 3 of 130 bits, at most 7.
pub const TICKET_CODE_PATTERN: &str = "^[0-7OoIiLl][0-9A-TV-Za-tv-z]{25}$";

fn integer(min: impl Into<utoipa::Number>, max: impl Into<utoipa::Number>, nullable: bool) -> Schema {
    let ty = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::new(Type::Integer)
    };
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(ty)
            .minimum(Some(min))
            .maximum(Some(max))
            .build(),
    )
}

fn text(max_chars: usize) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max_chars))
            .pattern(Some(TEXT_PATTERN))
            .build(),
    )
}

fn string_pattern(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))
}

/// A display name (sale, ticket type, quota).
pub fn name() -> Schema {
    text(limits::NAME_MAX_CHARS)
}

pub fn buyer_id() -> Schema {
    text(limits::BUYER_ID_MAX_CHARS)
}

pub fn payment_ref() -> Schema {
    text(limits::PAYMENT_REF_MAX_CHARS)
}

pub fn currency() -> Schema {
    Schema::Object(string_pattern(CURRENCY_PATTERN).build())
}

/// An optional RFC 3339 time (`time::parse_rfc3339`).
pub fn time_or_null() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build(),
    )
}

pub fn hold_ttl_secs() -> Schema {
    integer(limits::HOLD_TTL_MS_MIN / 1000, limits::HOLD_TTL_MS_MAX / 1000, true)
}

pub fn offline_payment_ttl_secs() -> Schema {
    integer(
        limits::HOLD_TTL_MS_MIN / 1000,
        limits::OFFLINE_PAYMENT_TTL_MS_MAX / 1000,
        true,
    )
}

pub fn max_tickets_per_buyer() -> Schema {
    integer(1u32, u32::MAX, true)
}

pub fn price_minor() -> Schema {
    integer(0i64, limits::PRICE_MINOR_MAX, false)
}

pub fn max_per_order() -> Schema {
    integer(1u32, limits::QUANTITY_MAX, true)
}

pub fn capacity() -> Schema {
    integer(0u32, limits::CAPACITY_MAX, false)
}

pub fn ticket_type_id() -> Schema {
    integer(0u32, u32::MAX, false)
}

pub fn quantity() -> Schema {
    integer(1u32, limits::QUANTITY_MAX, false)
}

/// The ticket types of a quota: distinct, at least one.
pub fn quota_ticket_type_ids() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .items(RefOr::T(ticket_type_id()))
            .min_items(Some(1))
            .max_items(Some(limits::QUOTA_TYPES_MAX))
            .unique_items(true)
            .build(),
    )
}

/// The lines of a hold (each a distinct ticket type: see the operation).
pub fn hold_items() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .items(RefOr::Ref(Ref::from_schema_name("HoldItemRequest")))
            .min_items(Some(1))
            .max_items(Some(limits::HOLD_ITEMS_MAX))
            .build(),
    )
}

pub fn buyer_token_ttl_secs() -> Schema {
    integer(BUYER_TOKEN_TTL_SECS_MIN, BUYER_TOKEN_TTL_SECS_MAX, true)
}

pub fn ticket_code() -> Schema {
    Schema::Object(string_pattern(TICKET_CODE_PATTERN).build())
}

/// Codes to refund: distinct, at least one; omitted or null refunds every remaining ticket.
pub fn refund_ticket_codes() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(RefOr::T(ticket_code()))
            .min_items(Some(1))
            .max_items(Some(limits::REFUND_CODES_MAX))
            .unique_items(true)
            .build(),
    )
}

/// A feed cursor (`next_cursor` of a page, or 0).
pub fn feed_after() -> Schema {
    integer(0u64, u64::MAX, false)
}

pub fn feed_limit() -> Schema {
    integer(1u32, FEED_LIMIT_MAX, false)
}

pub fn admit_per_sec() -> Schema {
    integer(1u32, limits::ROOM_ADMIT_PER_SEC_MAX, false)
}

pub fn session_secs() -> Schema {
    integer(
        limits::ROOM_SESSION_MS_MIN / 1000,
        limits::ROOM_SESSION_MS_MAX / 1000,
        false,
    )
}

pub fn queue_max() -> Schema {
    integer(1u32, limits::ROOM_QUEUE_MAX, false)
}

/// A required RFC 3339 time (`time::parse_rfc3339`).
pub fn time() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build(),
    )
}

/// A sale's public id (`evt_<n>`) as a query filter.
pub fn event_id() -> Schema {
    Schema::Object(string_pattern(crate::ids::SALE_ID_PATTERN).build())
}

/// An orders cursor (`next_cursor` of a page).
pub fn orders_cursor() -> Schema {
    Schema::Object(string_pattern(crate::order_search::CURSOR_PATTERN).build())
}

pub fn orders_limit() -> Schema {
    integer(1u32, crate::limits::ORDERS_LIMIT_MAX as u32, false)
}

pub fn name_or_null() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .min_length(Some(1))
            .max_length(Some(limits::NAME_MAX_CHARS))
            .pattern(Some(TEXT_PATTERN))
            .build(),
    )
}

pub fn price_minor_or_null() -> Schema {
    integer(0i64, limits::PRICE_MINOR_MAX, true)
}

/// A ticket type's or quota's id in a path (a `u32` index).
pub const INDEX_ID_PATTERN: &str = "^(0|[1-9][0-9]{0,9})$";
