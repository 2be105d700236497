//! Who is calling: the organiser or a delegate (the bootstrap admin token or a scoped API
//! key, see [`crate::keys`]) or a buyer (a signed token).
//!
//! **Buyer token format** (so an integrator's back end can mint tokens with a signing secret,
//! without calling us):
//!
//! ```text
//! v2.<kid>.<base64url(buyer_id)>.<expires_at as Unix seconds>.<base64url(HMAC-SHA256(secret of kid, "v2.<kid>.<base64url(buyer_id)>.<expires_at>"))>
//! v1.<base64url(buyer_id)>.<expires_at as Unix seconds>.<base64url(HMAC-SHA256(bootstrap secret, "v1.<base64url(buyer_id)>.<expires_at>"))>
//! ```
//!
//! base64url without padding; `buyer_id` is 1–64 bytes of UTF-8 without control characters;
//! `kid` is the signing key's id in decimal (0 is the bootstrap `--buyer-secret`). A `v1`
//! token is a key-0 token without the id, the format before key ids, still taken.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use taquilla_domain::BuyerId;

use crate::AppState;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code, ErrorDetails};
use crate::keys::{KeyHolder, Refused, Scope, Scopes};
use crate::limits::{BUYER_KID_MAX_DIGITS, TOKEN_MAX_BYTES};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The bootstrap secrets given to the server (flags, environment, or files in the data dir).
#[derive(Clone)]
pub struct Secrets {
    /// The bootstrap admin token: an API key with the `admin` scope that is not in the keys
    /// file (so it cannot be revoked there; change it by restarting with another).
    pub admin_token: String,
    /// The bootstrap buyer signing secret: key id 0.
    pub buyer_secret: Vec<u8>,
}

/// An HMAC-SHA256 key schedule for `secret`, done once per key.
pub(crate) fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// A buyer token taken apart, its signature not yet checked.
pub(crate) struct ParsedToken<'a> {
    pub kid: u32,
    /// What the signature covers.
    payload: &'a str,
    buyer_b64: &'a str,
    exp: &'a str,
    sig: &'a str,
}

/// Takes a buyer token apart (see the module documentation).
pub(crate) fn parse_buyer_token(token: &str) -> Result<ParsedToken<'_>, &'static str> {
    if token.len() > TOKEN_MAX_BYTES {
        return Err("token too long");
    }
    let (payload, sig) = token.rsplit_once('.').ok_or("malformed token")?;
    let (kid, rest) = if let Some(rest) = payload.strip_prefix("v2.") {
        let (kid, rest) = rest.split_once('.').ok_or("malformed token")?;
        (parse_kid(kid).ok_or("malformed token")?, rest)
    } else {
        (0, payload.strip_prefix("v1.").ok_or("malformed token")?)
    };
    let (buyer_b64, exp) = rest.split_once('.').ok_or("malformed token")?;
    Ok(ParsedToken {
        kid,
        payload,
        buyer_b64,
        exp,
        sig,
    })
}

/// A key id: decimal, no leading zero.
fn parse_kid(s: &str) -> Option<u32> {
    let canonical = !s.is_empty() && s.len() <= BUYER_KID_MAX_DIGITS && (s == "0" || !s.starts_with('0'));
    if canonical && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Checks a parsed token's signature with its key, then its expiry; returns the buyer.
pub(crate) fn check_buyer_token(
    mut mac: HmacSha256,
    token: &ParsedToken<'_>,
    now_secs: i64,
) -> Result<BuyerId, &'static str> {
    // 32 bytes of signature; a longer one does not fit and is refused as malformed.
    let mut given = [0u8; 32];
    let n = URL_SAFE_NO_PAD
        .decode_slice(token.sig, &mut given)
        .map_err(|_| "malformed token")?;
    mac.update(token.payload.as_bytes());
    let expected = mac.finalize().into_bytes();
    if n != expected.len() || !bool::from(expected.as_slice().ct_eq(&given[..n])) {
        return Err("bad token signature");
    }
    let exp: i64 = token.exp.parse().map_err(|_| "malformed token")?;
    if exp <= now_secs {
        return Err("token expired");
    }
    let mut raw = [0u8; 64];
    let n = URL_SAFE_NO_PAD
        .decode_slice(token.buyer_b64, &mut raw)
        .map_err(|_| "malformed token")?;
    let s = std::str::from_utf8(&raw[..n]).map_err(|_| "malformed token")?;
    BuyerId::parse(s).map_err(|_| "malformed token")
}

fn signed(mac: &HmacSha256, payload: String) -> String {
    let mut mac = mac.clone();
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// Mints a `v2` token with key `kid`.
pub(crate) fn mint_with(kid: u32, mac: &HmacSha256, buyer: &BuyerId, expires_at_secs: i64) -> String {
    let payload = format!(
        "v2.{kid}.{}.{}",
        URL_SAFE_NO_PAD.encode(buyer.as_str()),
        expires_at_secs
    );
    signed(mac, payload)
}

/// Mints a buyer token valid until `expires_at_secs` (Unix seconds) with signing key `kid`
/// whose secret is `secret`, as an integrator's back end would.
pub fn mint_buyer_token_with_kid(kid: u32, secret: &[u8], buyer: &BuyerId, expires_at_secs: i64) -> String {
    mint_with(kid, &keyed(secret), buyer, expires_at_secs)
}

/// Mints a `v1` buyer token (key 0, the bootstrap secret, without a key id) valid until
/// `expires_at_secs` (Unix seconds).
pub fn mint_buyer_token(secret: &[u8], buyer: &BuyerId, expires_at_secs: i64) -> String {
    let payload = format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(buyer.as_str()), expires_at_secs);
    signed(&keyed(secret), payload)
}

/// Checks a buyer token made with `secret` (key 0 if `v2`) and its expiry; returns the buyer.
pub fn verify_buyer_token(secret: &[u8], token: &str, now_secs: i64) -> Result<BuyerId, &'static str> {
    let parsed = parse_buyer_token(token)?;
    if parsed.kid != 0 {
        return Err("unknown or retired signing key");
    }
    check_buyer_token(keyed(secret), &parsed, now_secs)
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let v = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::new(Code::Unauthorized, "missing Authorization: Bearer <token>"))?;
    if v.len() > TOKEN_MAX_BYTES + 7 {
        return Err(ApiError::new(Code::Unauthorized, "Authorization header too long"));
    }
    let s = v
        .to_str()
        .map_err(|_| ApiError::new(Code::Unauthorized, "malformed Authorization header"))?;
    s.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(Code::Unauthorized, "expected Authorization: Bearer <token>"))
}

/// What a route asks of an admin caller: any one of these scopes (each list names `admin`,
/// which may do everything).
pub trait Requirement {
    const ANY_OF: &'static [Scope];
}

/// Organiser-only routes: catalog, sale status, refunds, cancellations, buyer tokens, keys.
pub struct AdminScope;
impl Requirement for AdminScope {
    const ANY_OF: &'static [Scope] = &[Scope::Admin];
}

/// Check-in.
pub struct DoorScope;
impl Requirement for DoorScope {
    const ANY_OF: &'static [Scope] = &[Scope::Door, Scope::Admin];
}

/// Read-only reports: any order with its payment timeline, the feed.
pub struct ReportingScope;
impl Requirement for ReportingScope {
    const ANY_OF: &'static [Scope] = &[Scope::Reporting, Scope::Admin];
}

/// A sale's stats: for the door (check-in progress) and for reports.
pub struct StatsScope;
impl Requirement for StatsScope {
    const ANY_OF: &'static [Scope] = &[Scope::Door, Scope::Reporting, Scope::Admin];
}

/// The caller presented the bootstrap admin token or an active API key with a scope that
/// `R` takes. Every admin request is logged (target `taquilla::audit`) and counted
/// (`taquilla_admin_requests_total`) with its key id, never the key.
pub struct Authorized<R>(pub KeyHolder, PhantomData<R>);

/// The caller may do everything.
pub type Admin = Authorized<AdminScope>;
/// The caller may check tickets in.
pub type Door = Authorized<DoorScope>;
/// The caller may read reports.
pub type Reporting = Authorized<ReportingScope>;
/// The caller may read a sale's stats.
pub type Stats = Authorized<StatsScope>;

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let holder = match state.keys.authenticate_admin(token) {
            Ok(holder) => holder,
            Err(refused) => return Err(refused_admin(state, parts, token, refused)),
        };
        let allowed = holder.scopes.allows(R::ANY_OF);
        audit(parts, &holder.key_id, allowed);
        if !allowed {
            let details = ErrorDetails {
                required_scopes: Some(Scopes::of(R::ANY_OF)),
                ..ErrorDetails::default()
            };
            return Err(
                ApiError::new(Code::InsufficientScope, "this key lacks the scope this route needs")
                    .with_details(details),
            );
        }
        Ok(Authorized(holder, PhantomData))
    }
}

/// A refused admin credential: a buyer token is the wrong kind (`403 forbidden`); anything
/// else is not a credential of ours, or no longer one (`401 unauthorized`).
fn refused_admin(state: &AppState, parts: &Parts, token: &str, refused: Refused) -> ApiError {
    let now_secs = state.now().0.div_euclid(1000);
    if state.keys.verify_buyer(token, now_secs).is_ok() {
        return ApiError::new(Code::Forbidden, "a buyer token cannot call admin routes");
    }
    let message = match refused {
        Refused::Unknown => "not an admin token or API key",
        Refused::Revoked => "this API key was revoked",
    };
    if let Some(id) = crate::keys::api_keys::key_id_of(token) {
        audit_refused(parts, id, message);
    }
    ApiError::new(Code::Unauthorized, message)
}

fn correlation(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<CorrelationId>()
        .map_or("", CorrelationId::as_str)
}

fn audit(parts: &Parts, key_id: &str, allowed: bool) {
    let outcome = if allowed { "allowed" } else { "insufficient_scope" };
    tracing::info!(
        target: "taquilla::audit",
        key_id,
        method = %parts.method,
        path = parts.uri.path(),
        correlation_id = correlation(parts),
        outcome,
        "admin request"
    );
    metrics::counter!("taquilla_admin_requests_total", "key_id" => key_id.to_string(), "outcome" => outcome)
        .increment(1);
}

fn audit_refused(parts: &Parts, key_id: &str, reason: &'static str) {
    tracing::info!(
        target: "taquilla::audit",
        key_id,
        method = %parts.method,
        path = parts.uri.path(),
        correlation_id = correlation(parts),
        outcome = "unauthorized",
        reason,
        "admin request"
    );
}

/// The caller proved it is this buyer.
pub struct Buyer(pub BuyerId);

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        buyer_of(state, bearer(parts)?).map(Buyer)
    }
}

/// The buyer a token proves, after the buyer's rate limit.
pub(crate) fn buyer_of(state: &AppState, token: &str) -> Result<BuyerId, ApiError> {
    let now_secs = state.now().0.div_euclid(1000);
    let buyer = state
        .keys
        .verify_buyer(token, now_secs)
        .map_err(|reason| ApiError::new(Code::Unauthorized, reason))?;
    // Before any work is queued: the extractor runs before the handler.
    state.rate_limits.check_buyer(&buyer)?;
    Ok(buyer)
}

/// The buyer of a request that may name one: by `Authorization: Bearer`, or by `query_token`
/// (for browsers' `EventSource`, which cannot set headers). `None` when it names none.
pub(crate) fn optional_buyer(
    parts: &axum::http::HeaderMap,
    query_token: Option<&str>,
    state: &AppState,
) -> Result<Option<BuyerId>, ApiError> {
    if parts.contains_key(AUTHORIZATION) {
        let v = parts.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = v
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::new(Code::Unauthorized, "expected Authorization: Bearer <token>"))?;
        return buyer_of(state, token).map(Some);
    }
    query_token.map(|t| buyer_of(state, t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let secret = b"s3cret";
        let buyer = BuyerId::parse("ana@example.com").unwrap();
        let t = mint_buyer_token(secret, &buyer, 2_000);
        assert_eq!(verify_buyer_token(secret, &t, 1_000), Ok(buyer.clone()));
        assert_eq!(verify_buyer_token(secret, &t, 2_000), Err("token expired"));
        assert_eq!(verify_buyer_token(b"other", &t, 1_000), Err("bad token signature"));
        let other = mint_buyer_token(secret, &BuyerId::parse("bob").unwrap(), 2_000);
        let (_, sig) = other.rsplit_once('.').unwrap();
        let (payload, _) = t.rsplit_once('.').unwrap();
        assert_eq!(
            verify_buyer_token(secret, &format!("{payload}.{sig}"), 1_000),
            Err("bad token signature")
        );
        for junk in ["", ".", "v1", "v1.a.b", "v2.YQ.9.x", &"a".repeat(600)] {
            assert!(verify_buyer_token(secret, junk, 0).is_err(), "{junk}");
        }
    }

    #[test]
    fn v2_tokens_name_their_key_and_verify_only_with_it() {
        let buyer = BuyerId::parse("ana").unwrap();
        let t = mint_buyer_token_with_kid(7, b"seven", &buyer, 2_000);
        assert!(t.starts_with("v2.7."), "{t}");
        let parsed = parse_buyer_token(&t).unwrap();
        assert_eq!(parsed.kid, 7);
        assert_eq!(check_buyer_token(keyed(b"seven"), &parsed, 1_000), Ok(buyer.clone()));
        assert_eq!(
            check_buyer_token(keyed(b"other"), &parsed, 1_000),
            Err("bad token signature")
        );
        // The key id is signed: moving a token to another key id breaks it.
        let moved = t.replacen("v2.7.", "v2.8.", 1);
        let parsed = parse_buyer_token(&moved).unwrap();
        assert_eq!(
            check_buyer_token(keyed(b"seven"), &parsed, 1_000),
            Err("bad token signature")
        );
        // v1 is key 0; a v2 token of key 0 verifies with the same secret.
        let v1 = mint_buyer_token(b"zero", &buyer, 2_000);
        assert_eq!(parse_buyer_token(&v1).unwrap().kid, 0);
        let v2 = mint_buyer_token_with_kid(0, b"zero", &buyer, 2_000);
        assert_eq!(verify_buyer_token(b"zero", &v2, 1_000), Ok(buyer));
        for kid in ["", "01", "-1", "+1", "1a", "4294967296", "9999999999"] {
            let junk = format!("v2.{kid}.YW5h.2000.x");
            assert!(parse_buyer_token(&junk).is_err(), "{junk}");
        }
    }
}
