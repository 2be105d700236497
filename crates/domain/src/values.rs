//! Value types that cannot hold an invalid value ("parse, don't validate").
//!
//! Every constructor checks its limits once; the rest of the domain trusts the type.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::text::{Text, at_most, between};

/// Why a value could not be constructed. Mapped to the `invalid` rejection. A reason that
/// quotes a limit is built from its constant when compiling (see `text.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: &'static str,
}

pub(crate) fn invalid(field: &'static str, reason: &'static str) -> InvalidValue {
    InvalidValue { field, reason }
}

/// Milliseconds since the Unix epoch, UTC. The domain never reads a clock: time is passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms.min(i64::MAX as u64) as i64))
    }
}

/// An amount of money in the currency's minor unit (cents). Never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct MoneyMinor(i64);

impl MoneyMinor {
    pub const ZERO: MoneyMinor = MoneyMinor(0);
    #[inline]
    pub fn new(v: i64) -> Result<Self, InvalidValue> {
        if !(0..=limits::PRICE_MINOR_MAX).contains(&v) {
            static RANGE: Text = between(0, limits::PRICE_MINOR_MAX as u64);
            return Err(invalid("price_minor", RANGE.as_str()));
        }
        Ok(MoneyMinor(v))
    }
    pub fn get(self) -> i64 {
        self.0
    }
    /// Sums never overflow: prices and quantities are bounded well below i64.
    pub fn times(self, n: u32) -> MoneyMinor {
        MoneyMinor(self.0.saturating_mul(n as i64))
    }
    pub fn plus(self, o: MoneyMinor) -> MoneyMinor {
        MoneyMinor(self.0.saturating_add(o.0))
    }
}

/// ISO 4217 alphabetic code: three ASCII upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let b = s.as_bytes();
        if b.len() != 3 || !b.iter().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid("currency", "must be an ISO 4217 code such as EUR"));
        }
        Ok(Currency([b[0], b[1], b[2]]))
    }
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
    pub fn bytes(&self) -> [u8; 3] {
        self.0
    }
}

/// A positive number of tickets, at most [`limits::QUANTITY_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Quantity(u32);

impl Quantity {
    pub const ONE: Quantity = Quantity(1);

    #[inline]
    pub fn new(v: u32) -> Result<Self, InvalidValue> {
        if v == 0 || v > limits::QUANTITY_MAX {
            static RANGE: Text = between(1, limits::QUANTITY_MAX as u64);
            return Err(invalid("quantity", RANGE.as_str()));
        }
        Ok(Quantity(v))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// The length of text by the unit of its limit: `bytes`, or `chars` (Unicode scalar values)
/// for text clients send, as JSON Schema's `maxLength` counts it.
macro_rules! text_len {
    (bytes, $s:expr) => {
        $s.len()
    };
    (chars, $s:expr) => {
        $s.chars().count()
    };
}

macro_rules! text_unit {
    (bytes) => {
        " bytes"
    };
    (chars) => {
        " characters"
    };
}

macro_rules! bounded_string {
    ($(#[$m:meta])* $name:ident, $field:literal, $max:expr, $unit:ident, $allow_empty:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(CompactString);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                if text_len!($unit, s) > $max {
                    static TOO_LONG: Text = at_most($max as u64, text_unit!($unit));
                    return Err(invalid($field, TOO_LONG.as_str()));
                }
                if !$allow_empty && s.trim().is_empty() {
                    return Err(invalid($field, "must not be empty"));
                }
                if s.chars().any(|c| c.is_control()) {
                    return Err(invalid($field, "must not contain control characters"));
                }
                Ok($name(CompactString::from(s)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_string!(
    /// A display name (sale, ticket type, quota).
    Name, "name", limits::NAME_MAX_CHARS, chars, false
);
/// The integrator's id of a buyer. Opaque to us; a signed token proves it (API layer).
///
/// Buyers key the per-buyer limit map, which every hold touches (in `decide` and in `evolve`,
/// live and on replay), so the id carries its hash, computed once when parsed.
#[derive(Debug, Clone)]
pub struct BuyerId {
    text: CompactString,
    hash: u64,
}

impl BuyerId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.chars().count() > limits::BUYER_ID_MAX_CHARS {
            static TOO_LONG: Text = at_most(limits::BUYER_ID_MAX_CHARS as u64, " characters");
            return Err(invalid("buyer_id", TOO_LONG.as_str()));
        }
        if s.trim().is_empty() {
            return Err(invalid("buyer_id", "must not be empty"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(invalid("buyer_id", "must not contain control characters"));
        }
        let mut h = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut h, s.as_bytes());
        Ok(BuyerId {
            text: CompactString::from(s),
            hash: std::hash::Hasher::finish(&h),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scope of the organiser's idempotency keys in a sale's key table: the empty id,
    /// which no buyer can have (`parse` refuses it), so an organiser's key never meets a
    /// buyer's.
    pub fn organiser() -> BuyerId {
        let mut h = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut h, b"");
        BuyerId {
            text: CompactString::default(),
            hash: std::hash::Hasher::finish(&h),
        }
    }
}

impl PartialEq for BuyerId {
    fn eq(&self, other: &Self) -> bool {
        // Equal text implies equal hash; comparing the hash first is a cheap early exit.
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for BuyerId {}

impl std::hash::Hash for BuyerId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for BuyerId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BuyerId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl Serialize for BuyerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl From<&BuyerId> for BuyerId {
    fn from(b: &BuyerId) -> Self {
        b.clone()
    }
}

impl<'de> Deserialize<'de> for BuyerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than `String`: snapshots hold millions of buyer ids, and borrowing
        // formats (postcard) then parse each without an intermediate allocation.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BuyerId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a buyer id")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<BuyerId, E> {
                if s.is_empty() {
                    return Ok(BuyerId::organiser());
                }
                BuyerId::parse(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}
bounded_string!(
    /// A client-chosen key that makes a command safe to retry.
    IdempotencyKey, "idempotency_key", limits::IDEMPOTENCY_KEY_MAX_BYTES, bytes, false
);
bounded_string!(
    /// The payment provider's reference for a charge.
    PaymentRef, "payment_ref", limits::PAYMENT_REF_MAX_CHARS, chars, false
);
bounded_string!(
    /// What a buyer's front end needs to confirm a payment with its provider (Stripe's
    /// PaymentIntent `client_secret`). Shown only to the order's buyer.
    ClientSecret, "client_secret", limits::CLIENT_SECRET_MAX_BYTES, bytes, false
);
bounded_string!(
    /// The id of the request, webhook or saga step that caused a payment step.
    CorrelationId, "correlation_id", limits::CORRELATION_ID_MAX_BYTES, bytes, false
);
bounded_string!(
    /// A short human-readable reason (payment failure, cancellation).
    Reason, "reason", limits::REASON_MAX_BYTES, bytes, true
);
