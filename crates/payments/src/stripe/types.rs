//! The few fields of Stripe's objects that we read, hand-written with serde.
//!
//! Why not async-stripe (the only maintained Rust client, 1.0.0-rc.10 at the time of
//! writing)? Its types are generated from Stripe's whole OpenAPI spec: the payment-intent and
//! refund features alone pull in `async-stripe-shared` and `async-stripe-core`, about 330,000
//! lines of generated Rust, which took about 95 s of one core to build in a debug profile
//! (81 s for `-shared` alone, measured with `cargo build --timings -j 1`; hyper, rustls and
//! the rest of its tree took 43 s together). Its 1.0 line is still a release candidate. We read six fields
//! of two objects and send five form-encoded requests; reqwest and these structs do that, and
//! the webhook signature check is ours anyway (async-stripe's keeps only the last `v1`, which
//! would reject valid events while a secret is being rolled).

use std::collections::HashMap;

use serde::Deserialize;

use crate::provider::IntentStatus;

/// A PaymentIntent, as the API and `payment_intent.*` webhook events carry it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
}

impl PaymentIntent {
    /// Our order's id, stored at creation as `metadata[order_id]`.
    pub fn order_ref(&self) -> Option<&str> {
        self.metadata.get("order_id").map(String::as_str)
    }

    /// Stripe's status in the port's terms.
    pub fn intent_status(&self) -> IntentStatus {
        match self.status.as_str() {
            "requires_payment_method" => match &self.last_payment_error {
                Some(e) => IntentStatus::Declined { reason: e.reason() },
                None => IntentStatus::AwaitingBuyer,
            },
            "requires_capture" => IntentStatus::Authorised,
            "succeeded" => IntentStatus::Captured,
            "canceled" => IntentStatus::Voided,
            // requires_confirmation, requires_action, processing, and any status Stripe adds:
            // the buyer's side is not done.
            _ => IntentStatus::AwaitingBuyer,
        }
    }
}

/// A Refund (we read its id).
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
}

/// The body of every error answer: `{"error": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// Stripe's error object (also a PaymentIntent's `last_payment_error`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// On a card error while creating or confirming a PaymentIntent: the intent.
    #[serde(default)]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

impl ApiError {
    /// The most specific reason given: the decline code, else the error code, else the type.
    pub fn reason(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .or_else(|| self.kind.clone())
            .unwrap_or_else(|| "declined".into())
    }

    /// `type: code: message`, for error messages.
    pub fn describe(&self) -> String {
        let mut s = self.kind.clone().unwrap_or_else(|| "error".into());
        if let Some(code) = &self.code {
            s.push_str(": ");
            s.push_str(code);
        }
        if let Some(message) = &self.message {
            s.push_str(": ");
            s.push_str(message);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(status: &str, error: bool) -> PaymentIntent {
        let mut v = serde_json::json!({"id": "pi_1", "status": status, "amount": 500,
            "metadata": {"order_id": "ord_1"}});
        if error {
            v["last_payment_error"] = serde_json::json!({"type": "card_error", "code": "card_declined",
                "decline_code": "insufficient_funds"});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn statuses_map_to_the_port() {
        assert_eq!(
            intent("requires_payment_method", false).intent_status(),
            IntentStatus::AwaitingBuyer
        );
        assert_eq!(
            intent("requires_payment_method", true).intent_status(),
            IntentStatus::Declined {
                reason: "insufficient_funds".into()
            }
        );
        for awaiting in ["requires_confirmation", "requires_action", "processing"] {
            assert_eq!(intent(awaiting, false).intent_status(), IntentStatus::AwaitingBuyer);
        }
        assert_eq!(
            intent("requires_capture", false).intent_status(),
            IntentStatus::Authorised
        );
        assert_eq!(intent("succeeded", false).intent_status(), IntentStatus::Captured);
        assert_eq!(intent("canceled", false).intent_status(), IntentStatus::Voided);
        assert_eq!(intent("succeeded", false).order_ref(), Some("ord_1"));
    }
}
