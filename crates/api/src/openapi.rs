//! The OpenAPI document: the paths come from the route table itself (`routes::router`, through
//! `utoipa-axum`), the schemas from the types the handlers take and answer with. This module
//! adds what no single handler declares: the title, the security schemes, the error schemas,
//! and — in [`complete`], over the whole route table — the answers that groups of routes share
//! ([`COMMON_ANSWERS`]), the constraints on path ids ([`PATH_IDS`]) and the links between
//! operations ([`LINKS`]).
//!
//! A new answer common to a group of routes (a rate limit, a storage error, a scope) is one row
//! of [`COMMON_ANSWERS`]; a handler declares only what is its own (its success, and errors no
//! group has).

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};

use crate::error::{Code, ErrorBody, ErrorDetail, ErrorDetails};

#[derive(OpenApi)]
#[openapi(
    info(title = "taquilla", description = "High-frequency ticket selling: holds, orders, tickets. A sale is called an event in this API. Errors are always {\"error\": {\"code\", \"message\", \"correlation_id\", \"details\"?}}; branch on `code` (schema ErrorCode)."),
    // HoldItemRequest: named by `constraints::hold_items`, which utoipa cannot see through.
    // AvailabilityView: the data of the event stream's `availability` events, which a
    // `text/event-stream` answer cannot name as its body.
    components(schemas(ErrorBody, ErrorDetail, ErrorDetails, Code, crate::requests::HoldItemRequest, crate::keys::Scope,
        crate::push::views::AvailabilityView)),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The bootstrap admin token given to `taquilla serve` (scope `admin`), or an API key `ak_<id>.<secret>` from POST /v1/admin/api-keys or `taquilla keys create`. Each operation lists the scopes any one of which it takes; a key without one gets 403 `insufficient_scope`.".into());
        components.add_security_scheme("admin", SecurityScheme::Http(admin));
        let mut buyer = Http::new(HttpAuthScheme::Bearer);
        buyer.bearer_format = Some("v2.<kid>.<base64url(buyer_id)>.<expires_at>.<base64url(hmac_sha256)>".into());
        buyer.description = Some("A buyer token: from POST /v1/admin/buyer-tokens, or minted by your back end with a signing key's secret (see README, Keys). `v1.<base64url(buyer_id)>.<expires_at>.<sig>` is a key-0 token.".into());
        components.add_security_scheme("buyer", SecurityScheme::Http(buyer));
    }
}

/// A group of operations that share answers, recognised from what the operation declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Every API route (not the `ops` ones): the engine may be recovering or stopped.
    Api,
    /// Routes that take a command through a sale's queue (every `POST` and `DELETE` of the API).
    Write,
    /// Routes with `security: admin`.
    Admin,
    /// Routes with `security: buyer`.
    Buyer,
    /// Routes that read a JSON body through `ApiJson` (not the webhooks, which read theirs raw).
    JsonBody,
    /// Routes with an id in the path.
    PathId,
    /// Routes under a rate limit (per buyer, per client address): all but the exempt ones
    /// (`rate_limit::exempt_from_address_limit`, which have no buyer either).
    RateLimited,
}

impl Group {
    fn contains(self, path: &str, method: &str, op: &Operation) -> bool {
        let tagged = |t: &str| op.tags.iter().flatten().any(|x| x == t);
        let secured_by = |scheme: &str| {
            op.security.iter().flatten().any(|req| {
                serde_json::to_value(req)
                    .ok()
                    .and_then(|v| v.as_object().map(|o| o.contains_key(scheme)))
                    .unwrap_or(false)
            })
        };
        match self {
            Group::Api => !tagged("ops"),
            Group::Write => !tagged("ops") && !tagged("webhooks") && matches!(method, "post" | "patch" | "delete"),
            Group::Admin => secured_by("admin"),
            Group::Buyer => secured_by("buyer"),
            Group::JsonBody => op.request_body.is_some() && !tagged("webhooks"),
            Group::PathId => path.contains('{'),
            Group::RateLimited => !crate::rate_limit::exempt_from_address_limit(path),
        }
    }
}

/// An answer every operation of a group may give.
pub struct CommonAnswer {
    pub group: Group,
    pub status: u16,
    /// The codes, with when.
    pub description: &'static str,
    /// Whether the answer carries `Retry-After`.
    pub retry_after: bool,
}

/// The answers groups of routes share: each is added to every operation of its group (after
/// what the handler declared for the same status, if anything).
pub const COMMON_ANSWERS: &[CommonAnswer] = &[
    CommonAnswer {
        group: Group::Api,
        status: 503,
        description: "`unavailable`: recovering, or stopped after a storage failure. Retry after `Retry-After` seconds",
        retry_after: true,
    },
    CommonAnswer {
        group: Group::Write,
        status: 503,
        description: "`overloaded`: the sale's queue is full. Retry after `Retry-After` seconds",
        retry_after: true,
    },
    CommonAnswer {
        group: Group::Admin,
        status: 401,
        description: "`unauthorized`: no bearer token, or not the admin token nor an active API key (unknown or revoked)",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::Admin,
        status: 403,
        description: "`insufficient_scope`: the API key has none of the scopes the operation's `security` lists (`details.required_scopes`); `forbidden`: a buyer token",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::Buyer,
        status: 401,
        description: "`unauthorized`: missing, malformed, expired or forged token",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::JsonBody,
        status: 400,
        description: "`malformed_request`: not JSON",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::JsonBody,
        status: 413,
        description: "`payload_too_large`: over the body limit",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::JsonBody,
        status: 415,
        description: "`unsupported_media_type`: not `Content-Type: application/json`",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::JsonBody,
        status: 422,
        description: "`invalid`: wrong types, unknown fields, out-of-range values (the message names the field)",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::PathId,
        status: 404,
        description: "`not_found`: unknown or malformed id (or another buyer's hold or order)",
        retry_after: false,
    },
    CommonAnswer {
        group: Group::RateLimited,
        status: 429,
        description: "`rate_limited`: too many requests from this buyer or client address. Retry after `Retry-After` seconds",
        retry_after: true,
    },
];

/// The path parameters and the form of their ids (`ids.rs`). A malformed id is a `404` like an
/// unknown one; the pattern tells a client (and a fuzzer) what a well-formed one looks like.
pub const PATH_IDS: &[(&str, &str)] = &[
    ("event_id", crate::ids::SALE_ID_PATTERN),
    ("hold_id", crate::ids::HOLD_ID_PATTERN),
    ("order_id", crate::ids::ORDER_ID_PATTERN),
    ("key_id", crate::keys::api_keys::KEY_ID_PATTERN),
    ("ticket_type_id", crate::constraints::INDEX_ID_PATTERN),
    ("quota_id", crate::constraints::INDEX_ID_PATTERN),
];

/// A link from an operation's answer to another operation (OpenAPI 3 `links`): the id the
/// answer carries fills the other's path parameter.
struct LinkRow {
    from: &'static str,
    status: u16,
    to: &'static [&'static str],
    parameter: &'static str,
    value: &'static str,
}

const LINKS: &[LinkRow] = &[
    LinkRow {
        from: "create_sale",
        status: 201,
        to: &[
            "create_ticket_type",
            "open",
            "pause",
            "close",
            "archive",
            "stats",
            "get_sale",
            "place_hold",
            "export",
            "edit_ticket_type",
            "edit_quota",
        ],
        parameter: "event_id",
        value: "$response.body#/id",
    },
    LinkRow {
        from: "list_sales",
        status: 200,
        to: &["get_sale", "place_hold", "stats"],
        parameter: "event_id",
        value: "$response.body#/events/0/id",
    },
    LinkRow {
        from: "place_hold",
        status: 201,
        to: &["get_hold", "release_hold", "checkout"],
        parameter: "hold_id",
        value: "$response.body#/id",
    },
    LinkRow {
        from: "checkout",
        status: 201,
        to: &[
            "get_order",
            "pay",
            "cancel_order",
            "admin_get_order",
            "admin_cancel_order",
            "confirm_payment",
            "refund",
        ],
        parameter: "order_id",
        value: "$response.body#/id",
    },
    LinkRow {
        from: "pay",
        status: 200,
        to: &["get_order", "admin_get_order", "refund"],
        parameter: "order_id",
        value: "$response.body#/id",
    },
    LinkRow {
        from: "pay",
        status: 200,
        to: &["checkin"],
        parameter: "event_id",
        value: "$response.body#/event_id",
    },
];

fn error_response(description: &str, retry_after: bool) -> Response {
    let mut r = Response::new(description);
    r.content.insert(
        "application/json".into(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if retry_after {
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1u32))
            .build();
        let mut h = Header::new(schema);
        h.description = Some("Seconds to wait before retrying".into());
        r.headers.insert("Retry-After".into(), h);
    }
    r
}

/// Adds `answer` to `op`, after what the operation says for that status already.
fn add_answer(op: &mut Operation, answer: &CommonAnswer) {
    let key = answer.status.to_string();
    match op.responses.responses.get_mut(&key) {
        Some(RefOr::T(existing)) => {
            if !existing.description.contains(answer.description) {
                existing.description = format!("{}; {}", existing.description, answer.description);
            }
            if answer.retry_after && !existing.headers.contains_key("Retry-After") {
                let with = error_response("", true);
                existing.headers.extend(with.headers);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            op.responses
                .responses
                .insert(key, RefOr::T(error_response(answer.description, answer.retry_after)));
        }
    }
}

fn id_schema(pattern: &str) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .build(),
    ))
}

/// Every operation of the document with its path and method.
fn operations(doc: &mut utoipa::openapi::OpenApi) -> Vec<(String, &'static str, &mut Operation)> {
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let methods: [(&'static str, &mut Option<Operation>); 5] = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in methods {
            if let Some(op) = op.as_mut() {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

/// What the route table's document lacks: the common answers, the id patterns and the links.
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for (path, method, op) in operations(doc) {
        for answer in COMMON_ANSWERS {
            if answer.group.contains(&path, method, op) {
                add_answer(op, answer);
            }
        }
        for p in op.parameters.iter_mut().flatten() {
            if p.parameter_in == ParameterIn::Path
                && let Some((_, pattern)) = PATH_IDS.iter().find(|(name, _)| *name == p.name)
            {
                p.schema = Some(id_schema(pattern));
            }
            if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(crate::extract::IDEMPOTENCY_HEADER)
            {
                p.schema = Some(RefOr::T(crate::constraints::idempotency_key()));
            }
        }
    }
}

/// Adds [`LINKS`] to the document's JSON. Written as JSON because utoipa 5.5 serializes its
/// `Link` with snake_case keys (`operation_id`), which no OpenAPI reader understands.
fn add_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let ids: Vec<String> = paths
        .values()
        .filter_map(|item| item.as_object())
        .flat_map(|item| item.values())
        .filter_map(|op| op.get("operationId")?.as_str().map(str::to_string))
        .collect();
    for row in LINKS {
        debug_assert!(
            ids.iter().any(|i| i == row.from),
            "a link from an unknown operation {}",
            row.from
        );
        let response = paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
            .find(|op| op.get("operationId").and_then(|v| v.as_str()) == Some(row.from))
            .and_then(|op| op.pointer_mut(&format!("/responses/{}", row.status)))
            .and_then(|r| r.as_object_mut());
        let Some(response) = response else { continue };
        let links = response.entry("links").or_insert_with(|| serde_json::json!({}));
        for to in row.to {
            debug_assert!(ids.iter().any(|i| i == to), "a link to an unknown operation {to}");
            links[format!("{to}_{}", row.parameter)] = serde_json::json!({
                "operationId": to,
                "parameters": {row.parameter: row.value},
            });
        }
    }
}

/// The document as JSON, built once from the route table.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = crate::routes::router().into_openapi();
        complete(&mut doc);
        let mut json = serde_json::to_value(&doc).unwrap_or_default();
        add_links(&mut json);
        json.to_string()
    })
    .clone()
}
