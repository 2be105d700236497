//! Who is calling: the organiser (a shared admin token) or a buyer (a signed token).
//!
//! **Buyer token format** (so an integrator's back end can mint tokens with the shared
//! secret, without calling us):
//!
//! ```text
//! v1.<base64url(buyer_id)>.<expires_at as Unix seconds>.<base64url(HMAC-SHA256(secret, "v1.<base64url(buyer_id)>.<expires_at>"))>
//! ```
//!
//! base64url without padding; `buyer_id` is 1–64 bytes of UTF-8 without control characters.

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
use crate::error::{ApiError, Code};
use crate::limits::TOKEN_MAX_BYTES;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Secrets {
    pub admin_token: String,
    pub buyer_secret: Vec<u8>,
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn sign(secret: &[u8], payload: &str) -> Vec<u8> {
    let mut mac = keyed(secret);
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The buyer-token secret with its HMAC key schedule done once: verifying a token then
/// costs the hash of the token, not also the two blocks of the key.
#[derive(Clone)]
pub struct BuyerKey(HmacSha256);

impl BuyerKey {
    pub fn new(secret: &[u8]) -> BuyerKey {
        BuyerKey(keyed(secret))
    }

    /// Checks a buyer token's signature and expiry; returns the buyer.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<BuyerId, &'static str> {
        if token.len() > TOKEN_MAX_BYTES {
            return Err("token too long");
        }
        let (payload, sig) = token.rsplit_once('.').ok_or("malformed token")?;
        let mut parts = payload.splitn(3, '.');
        let (Some("v1"), Some(buyer_b64), Some(exp)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("malformed token");
        };
        // 32 bytes of signature; a longer one does not fit and is refused as malformed.
        let mut given = [0u8; 32];
        let n = URL_SAFE_NO_PAD
            .decode_slice(sig, &mut given)
            .map_err(|_| "malformed token")?;
        let mut mac = self.0.clone();
        mac.update(payload.as_bytes());
        let expected = mac.finalize().into_bytes();
        if n != expected.len() || !bool::from(expected.as_slice().ct_eq(&given[..n])) {
            return Err("bad token signature");
        }
        let exp: i64 = exp.parse().map_err(|_| "malformed token")?;
        if exp <= now_secs {
            return Err("token expired");
        }
        let mut raw = [0u8; 64];
        let n = URL_SAFE_NO_PAD
            .decode_slice(buyer_b64, &mut raw)
            .map_err(|_| "malformed token")?;
        let s = std::str::from_utf8(&raw[..n]).map_err(|_| "malformed token")?;
        BuyerId::parse(s).map_err(|_| "malformed token")
    }
}

/// Mints a buyer token valid until `expires_at_secs` (Unix seconds).
pub fn mint_buyer_token(secret: &[u8], buyer: &BuyerId, expires_at_secs: i64) -> String {
    let payload = format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(buyer.as_str()), expires_at_secs);
    let sig = URL_SAFE_NO_PAD.encode(sign(secret, &payload));
    format!("{payload}.{sig}")
}

/// Checks a buyer token's signature and expiry; returns the buyer.
pub fn verify_buyer_token(secret: &[u8], token: &str, now_secs: i64) -> Result<BuyerId, &'static str> {
    BuyerKey::new(secret).verify(token, now_secs)
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

/// The caller proved it is the organiser.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let expected = state.secrets.admin_token.as_bytes();
        if bool::from(token.as_bytes().ct_eq(expected)) {
            Ok(Admin)
        } else {
            Err(ApiError::new(Code::Forbidden, "not an admin token"))
        }
    }
}

/// The caller proved it is this buyer.
pub struct Buyer(pub BuyerId);

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let now_secs = state.now().0.div_euclid(1000);
        let buyer = state
            .buyer_key
            .verify(token, now_secs)
            .map_err(|reason| ApiError::new(Code::Unauthorized, reason))?;
        // Before any work is queued: the extractor runs before the handler.
        state.rate_limits.check_buyer(&buyer)?;
        Ok(Buyer(buyer))
    }
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
}
