//! Stripe's signed webhooks: checking `Stripe-Signature`, then reading the notification.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`, where each
//! `v1 = hex(HMAC-SHA256(endpoint secret, "{t}.{raw body}"))`. We accept the body when any
//! `v1` matches any of our secrets (Stripe sends one `v1` per active secret while a secret is
//! rolled, and we may hold the old and the new one), compared in constant time; other schemes
//! (`v0`, test mode's) are ignored. `t` must be within
//! [`WEBHOOK_TOLERANCE_SECS`] of `now`, either way;
//! `now` is passed in so tests need no clock.
//!
//! Stripe calls what it sends an "event"; here it is a [`Notification`], because in taquilla
//! `Event` is the event-sourcing fact and nothing else. Only the four `payment_intent.*` kinds
//! the saga acts on are typed; the rest are [`NotificationKind::Ignored`] (answer `2xx`, do
//! nothing). Stripe neither orders nor deduplicates deliveries: the caller dedupes on
//! [`Notification::id`] and treats the intent's status as a hint to re-check, not as an order.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::limits::{WEBHOOK_HEADER_BYTES_MAX, WEBHOOK_SECRETS_MAX, WEBHOOK_SIGNATURES_MAX, WEBHOOK_TOLERANCE_SECS};
use crate::provider::{IntentId, IntentStatus};
use crate::stripe::types::PaymentIntent;

/// The header Stripe signs with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Bytes of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// Why a webhook was not accepted. Each has a stable [`code`](WebhookError::code) for the
/// API's `400` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("no v1 signature matches the body with any webhook secret")]
    NoMatchingSignature,
    #[error("signature timestamp {t} is more than {WEBHOOK_TOLERANCE_SECS} s away from now ({now})")]
    StaleTimestamp { t: i64, now: i64 },
    #[error("the body is not a Stripe notification: {0}")]
    BadJson(String),
}

impl WebhookError {
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::MissingHeader => "webhook_signature_missing",
            WebhookError::MalformedHeader(_) => "webhook_signature_malformed",
            WebhookError::NoMatchingSignature => "webhook_signature_mismatch",
            WebhookError::StaleTimestamp { .. } => "webhook_timestamp_stale",
            WebhookError::BadJson(_) => "webhook_payload_invalid",
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("no webhook secret given")]
    NoSecret,
    #[error("at most {WEBHOOK_SECRETS_MAX} webhook secrets")]
    TooManySecrets,
    #[error("a webhook secret is empty")]
    EmptySecret,
}

/// Checks `Stripe-Signature` against one or more endpoint secrets (`whsec_…`).
#[derive(Clone)]
pub struct WebhookVerifier {
    secrets: Vec<Vec<u8>>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookVerifier({} secrets)", self.secrets.len())
    }
}

/// What a valid header says.
#[derive(Debug)]
struct SignatureHeader {
    t: i64,
    v1: Vec<[u8; MAC_BYTES]>,
}

impl WebhookVerifier {
    /// Every secret is accepted (the current one first, then those being rolled).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Result<WebhookVerifier, WebhookSetupError> {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().as_bytes().to_vec()).collect();
        if secrets.is_empty() {
            return Err(WebhookSetupError::NoSecret);
        }
        if secrets.len() > WEBHOOK_SECRETS_MAX {
            return Err(WebhookSetupError::TooManySecrets);
        }
        if secrets.iter().any(Vec::is_empty) {
            return Err(WebhookSetupError::EmptySecret);
        }
        Ok(WebhookVerifier { secrets })
    }

    /// Accepts `body` if the header signs it with one of our secrets within the tolerance of
    /// `now_unix_secs`.
    pub fn verify(&self, header: Option<&str>, body: &[u8], now_unix_secs: i64) -> Result<(), WebhookError> {
        let header = parse_header(header.ok_or(WebhookError::MissingHeader)?)?;
        let mut matched = false;
        for secret in &self.secrets {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(header.t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            for v1 in &header.v1 {
                // `verify_slice` compares in constant time. No early exit either: every
                // signature is checked against every secret.
                matched |= mac.clone().verify_slice(v1).is_ok();
            }
        }
        if !matched {
            return Err(WebhookError::NoMatchingSignature);
        }
        if header.t.abs_diff(now_unix_secs) > WEBHOOK_TOLERANCE_SECS.unsigned_abs() {
            return Err(WebhookError::StaleTimestamp {
                t: header.t,
                now: now_unix_secs,
            });
        }
        Ok(())
    }

    /// [`verify`](WebhookVerifier::verify), then [`parse_notification`].
    pub fn verify_notification(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<Notification, WebhookError> {
        self.verify(header, body, now_unix_secs)?;
        parse_notification(body)
    }
}

fn parse_header(header: &str) -> Result<SignatureHeader, WebhookError> {
    if header.len() > WEBHOOK_HEADER_BYTES_MAX {
        return Err(WebhookError::MalformedHeader("too long"));
    }
    let mut t = None;
    let mut v1 = Vec::new();
    let mut v1_seen = 0;
    for item in header.split(',') {
        let Some((scheme, value)) = item.trim().split_once('=') else {
            return Err(WebhookError::MalformedHeader("an item is not key=value"));
        };
        match scheme {
            "t" => {
                if t.is_some() {
                    return Err(WebhookError::MalformedHeader("two timestamps"));
                }
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| WebhookError::MalformedHeader("t is not a number"))?,
                );
            }
            "v1" => {
                v1_seen += 1;
                if v1_seen > WEBHOOK_SIGNATURES_MAX {
                    return Err(WebhookError::MalformedHeader("too many v1 signatures"));
                }
                // A v1 that is not 32 bytes of hex can match nothing; it is skipped, not fatal,
                // so one garbled signature does not hide a good one.
                if let Some(mac) = decode_hex(value) {
                    v1.push(mac);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::MalformedHeader("no t= timestamp"))?;
    Ok(SignatureHeader { t, v1 })
}

fn decode_hex(s: &str) -> Option<[u8; MAC_BYTES]> {
    let b = s.as_bytes();
    if b.len() != 2 * MAC_BYTES {
        return None;
    }
    let mut out = [0u8; MAC_BYTES];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// One Stripe notification (Stripe's "event"), as far as the saga cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `evt_…`: deliveries repeat, so dedupe on it.
    pub id: String,
    /// When Stripe created it (unix seconds), if given.
    pub created: Option<i64>,
    pub kind: NotificationKind,
}

/// The notifications the saga acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationKind {
    /// `payment_intent.amount_capturable_updated`: authorised, ready to capture.
    AmountCapturableUpdated(IntentUpdate),
    /// `payment_intent.succeeded`: captured.
    Succeeded(IntentUpdate),
    /// `payment_intent.payment_failed`: the buyer's payment method was refused.
    PaymentFailed(IntentUpdate),
    /// `payment_intent.canceled`: voided (by us, or by Stripe after seven days uncaptured).
    Canceled(IntentUpdate),
    /// Any other type: acknowledge and ignore.
    Ignored { event_type: String },
}

/// The PaymentIntent a notification carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentUpdate {
    pub intent: IntentId,
    /// Its status in the port's terms, at the time Stripe sent it (maybe stale by now).
    pub status: IntentStatus,
    /// `metadata[order_id]`: our order's id, if the intent was made by us.
    pub order_ref: Option<String>,
    pub amount_minor: i64,
}

#[derive(Deserialize)]
struct RawNotification {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    created: Option<i64>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// Reads a notification's body (after [`WebhookVerifier::verify`]).
pub fn parse_notification(body: &[u8]) -> Result<Notification, WebhookError> {
    let raw: RawNotification = serde_json::from_slice(body).map_err(|e| WebhookError::BadJson(e.to_string()))?;
    let wrap: fn(IntentUpdate) -> NotificationKind = match raw.event_type.as_str() {
        "payment_intent.amount_capturable_updated" => NotificationKind::AmountCapturableUpdated,
        "payment_intent.succeeded" => NotificationKind::Succeeded,
        "payment_intent.payment_failed" => NotificationKind::PaymentFailed,
        "payment_intent.canceled" => NotificationKind::Canceled,
        _ => {
            return Ok(Notification {
                id: raw.id,
                created: raw.created,
                kind: NotificationKind::Ignored {
                    event_type: raw.event_type,
                },
            });
        }
    };
    let pi: PaymentIntent = serde_json::from_value(raw.data.object)
        .map_err(|e| WebhookError::BadJson(format!("data.object is not a PaymentIntent: {e}")))?;
    Ok(Notification {
        id: raw.id,
        created: raw.created,
        kind: wrap(IntentUpdate {
            status: pi.intent_status(),
            order_ref: pi.order_ref().map(str::to_string),
            amount_minor: pi.amount,
            intent: IntentId(pi.id),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded","amount":2500,"metadata":{"order_id":"ord_7_1"}}}}"#;
    const T: i64 = 1_700_000_000;
    // Computed independently of this code, with Python's standard library:
    //   hmac.new(b"whsec_test_secret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const SIG_CURRENT: &str = "d43de5c4b325fc62bbdc96e077d03f2d4ce51d553b4566186d25d1c510b0c24b";
    //   hmac.new(b"whsec_old_secret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const SIG_OLD: &str = "84f86fba166fed92c086d18b8746a7e3b09c469c83544649d73a1dc4850133a6";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(["whsec_test_secret"]).unwrap()
    }

    #[test]
    fn a_signature_computed_elsewhere_verifies() {
        let header = format!("t={T},v1={SIG_CURRENT}");
        assert_eq!(verifier().verify(Some(&header), BODY.as_bytes(), T), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        // The rolled secret's signature first, garbage v1 and a v0 around it.
        let header = format!("t={T},v1={SIG_OLD},v1=zz,v0={SIG_CURRENT},v1={SIG_CURRENT}");
        assert_eq!(verifier().verify(Some(&header), BODY.as_bytes(), T), Ok(()));
        // A v0 alone is not accepted, even holding the right MAC.
        let v0_only = format!("t={T},v0={SIG_CURRENT}");
        assert_eq!(
            verifier().verify(Some(&v0_only), BODY.as_bytes(), T),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    #[test]
    fn several_secrets_are_accepted_during_rotation() {
        let both = WebhookVerifier::new(["whsec_test_secret", "whsec_old_secret"]).unwrap();
        let old_only = format!("t={T},v1={SIG_OLD}");
        assert_eq!(both.verify(Some(&old_only), BODY.as_bytes(), T), Ok(()));
        assert_eq!(
            verifier().verify(Some(&old_only), BODY.as_bytes(), T),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    #[test]
    fn a_changed_body_or_timestamp_does_not_verify() {
        let header = format!("t={T},v1={SIG_CURRENT}");
        let tampered = BODY.replace("2500", "2501");
        assert_eq!(
            verifier().verify(Some(&header), tampered.as_bytes(), T),
            Err(WebhookError::NoMatchingSignature)
        );
        let moved = format!("t={},v1={SIG_CURRENT}", T + 1);
        assert_eq!(
            verifier().verify(Some(&moved), BODY.as_bytes(), T),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways() {
        let header = format!("t={T},v1={SIG_CURRENT}");
        let v = verifier();
        assert_eq!(v.verify(Some(&header), BODY.as_bytes(), T + 300), Ok(()));
        assert_eq!(v.verify(Some(&header), BODY.as_bytes(), T - 300), Ok(()));
        assert_eq!(
            v.verify(Some(&header), BODY.as_bytes(), T + 301),
            Err(WebhookError::StaleTimestamp { t: T, now: T + 301 })
        );
        assert_eq!(
            v.verify(Some(&header), BODY.as_bytes(), T - 301),
            Err(WebhookError::StaleTimestamp { t: T, now: T - 301 })
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let v = verifier();
        let body = BODY.as_bytes();
        assert_eq!(v.verify(None, body, T), Err(WebhookError::MissingHeader));
        for (header, why) in [
            (format!("v1={SIG_CURRENT}"), "no t= timestamp"),
            (format!("t=abc,v1={SIG_CURRENT}"), "t is not a number"),
            (format!("t={T},t={T},v1={SIG_CURRENT}"), "two timestamps"),
            ("garbage".to_string(), "an item is not key=value"),
            (format!("t={T}{}", ",v1=00".repeat(9)), "too many v1 signatures"),
            ("t=1,".to_string() + &"x".repeat(WEBHOOK_HEADER_BYTES_MAX), "too long"),
        ] {
            assert_eq!(
                v.verify(Some(&header), body, T),
                Err(WebhookError::MalformedHeader(why)),
                "{header}"
            );
        }
        assert_eq!(WebhookError::NoMatchingSignature.code(), "webhook_signature_mismatch");
    }

    #[test]
    fn setup_is_checked() {
        assert_eq!(
            WebhookVerifier::new(Vec::<String>::new()).unwrap_err(),
            WebhookSetupError::NoSecret
        );
        assert_eq!(WebhookVerifier::new([""]).unwrap_err(), WebhookSetupError::EmptySecret);
        assert_eq!(
            WebhookVerifier::new(["a", "b", "c", "d", "e"]).unwrap_err(),
            WebhookSetupError::TooManySecrets
        );
    }

    #[test]
    fn payment_intent_notifications_are_typed_and_others_ignored() {
        let header = format!("t={T},v1={SIG_CURRENT}");
        let n = verifier()
            .verify_notification(Some(&header), BODY.as_bytes(), T)
            .unwrap();
        assert_eq!(
            n,
            Notification {
                id: "evt_1".into(),
                created: None,
                kind: NotificationKind::Succeeded(IntentUpdate {
                    intent: IntentId("pi_1".into()),
                    status: IntentStatus::Captured,
                    order_ref: Some("ord_7_1".into()),
                    amount_minor: 2500,
                }),
            }
        );
        let failed = br#"{"id":"evt_2","type":"payment_intent.payment_failed","created":5,"data":{"object":
            {"id":"pi_2","status":"requires_payment_method","amount":10,
             "last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"lost_card"}}}}"#;
        let n = parse_notification(failed).unwrap();
        assert_eq!(n.created, Some(5));
        let NotificationKind::PaymentFailed(update) = n.kind else {
            panic!("{n:?}")
        };
        assert_eq!(
            update.status,
            IntentStatus::Declined {
                reason: "lost_card".into()
            }
        );
        assert_eq!(update.order_ref, None);
        for (kind, expect) in [
            ("payment_intent.amount_capturable_updated", "AmountCapturableUpdated"),
            ("payment_intent.canceled", "Canceled"),
        ] {
            let body =
                format!(r#"{{"id":"e","type":"{kind}","data":{{"object":{{"id":"pi_3","status":"canceled"}}}}}}"#);
            let n = parse_notification(body.as_bytes()).unwrap();
            assert!(format!("{:?}", n.kind).starts_with(expect), "{n:?}");
        }
        let other = br#"{"id":"evt_3","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}"#;
        assert_eq!(
            parse_notification(other).unwrap().kind,
            NotificationKind::Ignored {
                event_type: "charge.refunded".into()
            }
        );
    }

    #[test]
    fn bad_json_is_named() {
        assert!(matches!(parse_notification(b"{"), Err(WebhookError::BadJson(_))));
        let not_an_intent = br#"{"id":"e","type":"payment_intent.succeeded","data":{"object":{"status":1}}}"#;
        assert!(matches!(
            parse_notification(not_an_intent),
            Err(WebhookError::BadJson(_))
        ));
    }
}
