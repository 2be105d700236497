//! Admission tokens of the waiting room: proof that a buyer was admitted to shop a sale,
//! signed with the buyer-token signing keys (so they rotate with them, by key id):
//!
//! ```text
//! a1.<kid>.<sale>.<base64url(buyer_id)>.<admission number>.<expires_at ms>.<base64url(HMAC-SHA256(secret of kid, everything before the last dot))>
//! ```
//!
//! The `a1.` prefix keeps an admission token from ever passing as a buyer token (`v1.`/`v2.`)
//! and the other way round. A token is bound to its sale, its buyer and the admission number
//! (a buyer admitted again gets a new number, and a new token); the sale's state says whether
//! that admission is still live (not used by a checkout, not expired, not left).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use subtle::ConstantTimeEq;
use taquilla_domain::{BuyerId, SaleId, Timestamp};

use crate::auth::HmacSha256;
use crate::limits::TOKEN_MAX_BYTES;

/// The request header that carries an admission token.
pub const HEADER: &str = "admission-token";

/// What a valid admission token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub sale: SaleId,
    pub buyer: BuyerId,
    pub number: u32,
    pub expires_at: Timestamp,
}

fn payload(kid: u32, a: &Admission) -> String {
    format!(
        "a1.{kid}.{}.{}.{}.{}",
        a.sale.0,
        URL_SAFE_NO_PAD.encode(a.buyer.as_str()),
        a.number,
        a.expires_at.0
    )
}

/// Signs `admission` with key `kid`.
pub(crate) fn mint(kid: u32, mac: &HmacSha256, admission: &Admission) -> String {
    let payload = payload(kid, admission);
    let mut mac = mac.clone();
    mac.update(payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The key id a token names, before its signature is checked.
pub(crate) fn kid_of(token: &str) -> Result<u32, &'static str> {
    let rest = token.strip_prefix("a1.").ok_or("not an admission token")?;
    let (kid, _) = rest.split_once('.').ok_or("malformed admission token")?;
    kid.parse().map_err(|_| "malformed admission token")
}

/// Checks `token`'s signature with `mac`, then that it names `sale` and `buyer` and has not
/// expired at `now`; returns what it says.
pub(crate) fn check(
    mut mac: HmacSha256,
    token: &str,
    sale: SaleId,
    buyer: &BuyerId,
    now: Timestamp,
) -> Result<Admission, &'static str> {
    if token.len() > TOKEN_MAX_BYTES {
        return Err("admission token too long");
    }
    let (signed, sig) = token.rsplit_once('.').ok_or("malformed admission token")?;
    let mut given = [0u8; 32];
    let n = URL_SAFE_NO_PAD
        .decode_slice(sig, &mut given)
        .map_err(|_| "malformed admission token")?;
    mac.update(signed.as_bytes());
    let expected = mac.finalize().into_bytes();
    if n != expected.len() || !bool::from(expected.as_slice().ct_eq(&given[..n])) {
        return Err("bad admission token signature");
    }
    let parts: Vec<&str> = signed.split('.').collect();
    let [_, _, sale_s, buyer_b64, number, exp] = parts[..] else {
        return Err("malformed admission token");
    };
    let bad = |_| "malformed admission token";
    let raw = URL_SAFE_NO_PAD
        .decode(buyer_b64)
        .map_err(|_| "malformed admission token")?;
    let named = BuyerId::parse(std::str::from_utf8(&raw).map_err(|_| "malformed admission token")?)
        .map_err(|_| "malformed admission token")?;
    let admission = Admission {
        sale: SaleId(sale_s.parse().map_err(bad)?),
        buyer: named,
        number: number.parse().map_err(bad)?,
        expires_at: Timestamp(exp.parse().map_err(bad)?),
    };
    if admission.sale != sale || &admission.buyer != buyer {
        return Err("the admission token is another sale's or another buyer's");
    }
    if now >= admission.expires_at {
        return Err("the admission has expired");
    }
    Ok(admission)
}

/// The `Admission-Token` header, if the request has one (its check needs the sale and buyer,
/// so the handler makes it).
pub struct AdmissionToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for AdmissionToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string());
        Ok(AdmissionToken(token))
    }
}
