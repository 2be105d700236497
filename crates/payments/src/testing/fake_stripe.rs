//! A fake Stripe on a real HTTP server (wiremock's `MockServer`, one custom [`Respond`] with
//! the state behind a lock), speaking the part of Stripe's API the adapter uses, statefully:
//!
//! - `POST /v1/payment_intents` creates an intent in `requires_payment_method`;
//! - `POST /v1/payment_intents/{id}/capture` only from `requires_capture` (→ `succeeded`);
//! - `POST /v1/payment_intents/{id}/cancel` from any status but `succeeded`/`canceled`;
//! - `POST /v1/refunds` up to what was captured and not yet refunded;
//! - `GET /v1/payment_intents/{id}`.
//!
//! Idempotency as Stripe documents it: a POST's answer is saved under its `Idempotency-Key`
//! and replayed (with `Idempotent-Replayed: true`) for the same key and parameters; the same
//! key with another path or other parameters is a `400 idempotency_error`. Parameter errors
//! are not saved. Every call needs `Authorization: Bearer` [`FAKE_SECRET_KEY`] (or the key
//! given to [`FakeStripe::start_with`]).
//!
//! Test controls: [`FakeStripe::confirm`] plays the buyer's front end (→ `requires_capture`,
//! or a decline → `requires_payment_method` with `last_payment_error`);
//! [`FakeStripe::set_faults`] injects a seeded share of `500`s (half of them after the call
//! took effect, the other half before — never saved under the key, as an edge failure would
//! not be) and of timeouts (the call takes effect, the answer is delayed past the client's
//! deadline), a fixed extra latency, outages of chosen endpoints (`503`, no effect), and
//! `500`s saved under the key as Stripe saves them (the key answers `500` ever after). Counters prove what happened: captures per intent and
//! per order (0 double captures), calls per endpoint, replays. [`FakeStripe::notification`] and
//! [`signed_webhook`] build `payment_intent.*` webhooks for the API's tests.
//!
//! It listens on `127.0.0.1:<port>` ([`FakeStripe::uri`]), so a test can hand it to a real
//! `taquilla serve` as `--stripe-api-base`. Its server runs on its own thread and runtime, on
//! real time: tests against it cannot use paused time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::rng::SplitMix64;
use crate::simulated::Rate;

/// The secret key the fake accepts unless told another.
pub const FAKE_SECRET_KEY: &str = "sk_test_taquilla_fake";

/// Faults injected into the fake's answers, seeded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Share of calls answered `500 api_error` (half after taking effect).
    pub server_errors: Rate,
    /// Share of calls whose answer is delayed by `timeout_delay` (after taking effect).
    pub timeouts: Rate,
    /// Should exceed the client's deadline.
    pub timeout_delay: Duration,
    /// Added to every answer.
    pub extra_latency: Duration,
    /// Endpoints that are down: every call answers `503 api_error` without taking effect.
    pub outage: BTreeSet<Endpoint>,
    /// Endpoints whose calls fail with a `500` that, as Stripe does once an endpoint began
    /// executing, is saved under the call's idempotency key: the key answers that `500` ever
    /// after, though nothing took effect.
    pub saved_failures: BTreeSet<Endpoint>,
    pub seed: u64,
}

/// The API's endpoints, for the call counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    CreateIntent,
    Capture,
    Cancel,
    Retrieve,
    CreateRefund,
    Unknown,
}

/// What the buyer's front end got from the card network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerOutcome {
    Approve,
    /// Declined with this `decline_code` (e.g. `insufficient_funds`).
    Decline(String),
}

/// One PaymentIntent as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// Stripe's status string.
    pub status: String,
    pub order_ref: Option<String>,
    pub description: Option<String>,
    pub decline_code: Option<String>,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub capture_method: String,
}

impl FakeIntent {
    fn to_json(&self) -> Value {
        let mut metadata = serde_json::Map::new();
        if let Some(order) = &self.order_ref {
            metadata.insert("order_id".into(), Value::String(order.clone()));
        }
        let last_payment_error = match &self.decline_code {
            Some(code) => json!({"type": "card_error", "code": "card_declined", "decline_code": code,
                "message": "Your card was declined."}),
            None => Value::Null,
        };
        json!({
            "id": self.id, "object": "payment_intent", "livemode": false,
            "amount": self.amount, "amount_received": self.amount_received, "currency": self.currency,
            "status": self.status, "capture_method": self.capture_method,
            "client_secret": format!("{}_secret_fake", self.id),
            "description": self.description, "metadata": metadata,
            "last_payment_error": last_payment_error,
        })
    }
}

/// A saved answer under an idempotency key.
#[derive(Debug)]
struct Saved {
    path: String,
    params: Vec<(String, String)>,
    status: u16,
    body: Value,
}

#[derive(Debug)]
struct FakeState {
    secret_key: String,
    intents: BTreeMap<String, FakeIntent>,
    keys: HashMap<String, Saved>,
    calls: HashMap<Endpoint, u64>,
    /// Transitions to `succeeded`, per intent.
    captures: HashMap<String, u32>,
    replays: u64,
    next_id: u64,
    faults: Faults,
    rng: SplitMix64,
}

type Answer = (u16, Value);

fn error(status: u16, kind: &str, code: &str, message: &str) -> Answer {
    (
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
    )
}

fn missing(id: &str) -> Answer {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        &format!("No such payment_intent: '{id}'"),
    )
}

fn unexpected_state(intent: &FakeIntent, action: &str) -> Answer {
    error(
        400,
        "invalid_request_error",
        "payment_intent_unexpected_state",
        &format!(
            "You cannot {action} this PaymentIntent because it has a status of {}.",
            intent.status
        ),
    )
}

/// Statuses a PaymentIntent can be canceled from.
const CANCELABLE: [&str; 5] = [
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
];

impl FakeState {
    fn route(method: &str, path: &str) -> (Endpoint, Option<String>) {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("POST", ["v1", "payment_intents"]) => (Endpoint::CreateIntent, None),
            ("POST", ["v1", "payment_intents", id, "capture"]) => (Endpoint::Capture, Some(id.to_string())),
            ("POST", ["v1", "payment_intents", id, "cancel"]) => (Endpoint::Cancel, Some(id.to_string())),
            ("GET", ["v1", "payment_intents", id]) => (Endpoint::Retrieve, Some(id.to_string())),
            ("POST", ["v1", "refunds"]) => (Endpoint::CreateRefund, None),
            _ => (Endpoint::Unknown, None),
        }
    }

    /// Runs one call (idempotency included), returning whether it was a replay.
    fn execute(
        &mut self,
        endpoint: Endpoint,
        id: Option<&str>,
        path: &str,
        key: Option<&str>,
        params: Vec<(String, String)>,
    ) -> (Answer, bool) {
        let mut sorted = params.clone();
        sorted.sort();
        if let Some(saved) = key.and_then(|k| self.keys.get(k)) {
            if saved.path != path || saved.params != sorted {
                let message = format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{}' if you meant to execute a different request.",
                    key.unwrap_or_default()
                );
                return (
                    error(400, "idempotency_error", "idempotency_key_in_use", &message),
                    false,
                );
            }
            self.replays += 1;
            return ((saved.status, saved.body.clone()), true);
        }
        let params: HashMap<String, String> = params.into_iter().collect();
        let answer = match (endpoint, id) {
            (Endpoint::CreateIntent, _) => match self.create(&params) {
                Ok(answer) => answer,
                // Parameter errors are not saved under the key (Stripe's rule).
                Err(invalid) => return (invalid, false),
            },
            (Endpoint::Capture, Some(id)) => self.capture(id),
            (Endpoint::Cancel, Some(id)) => self.cancel(id),
            (Endpoint::Retrieve, Some(id)) => match self.intents.get(id) {
                Some(i) => (200, i.to_json()),
                None => missing(id),
            },
            (Endpoint::CreateRefund, _) => self.refund(&params),
            _ => error(
                404,
                "invalid_request_error",
                "resource_missing",
                "Unrecognized request URL.",
            ),
        };
        if let Some(key) = key {
            self.keys.insert(
                key.to_string(),
                Saved {
                    path: path.to_string(),
                    params: sorted,
                    status: answer.0,
                    body: answer.1.clone(),
                },
            );
        }
        (answer, false)
    }

    /// A `500` saved under `key` (unless the key has an answer already, which is replayed).
    fn save_failure(&mut self, key: &str, path: &str, params: Vec<(String, String)>) -> Answer {
        if let Some(saved) = self.keys.get(key) {
            self.replays += 1;
            return (saved.status, saved.body.clone());
        }
        let (status, body) = error(500, "api_error", "", "An unknown error occurred (saved under the key).");
        let mut sorted = params;
        sorted.sort();
        self.keys.insert(
            key.to_string(),
            Saved {
                path: path.to_string(),
                params: sorted,
                status,
                body: body.clone(),
            },
        );
        (status, body)
    }

    fn create(&mut self, params: &HashMap<String, String>) -> Result<Answer, Answer> {
        let invalid = |m: &str| error(400, "invalid_request_error", "parameter_invalid", m);
        let amount: i64 = params
            .get("amount")
            .and_then(|a| a.parse().ok())
            .filter(|a| *a > 0)
            .ok_or_else(|| invalid("amount must be a positive integer"))?;
        let currency = params
            .get("currency")
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| invalid("currency must be a lower-case ISO code"))?
            .clone();
        self.next_id += 1;
        let intent = FakeIntent {
            id: format!("pi_fake{}", self.next_id),
            amount,
            currency,
            status: "requires_payment_method".into(),
            order_ref: params.get("metadata[order_id]").cloned(),
            description: params.get("description").cloned(),
            decline_code: None,
            amount_received: 0,
            amount_refunded: 0,
            capture_method: params
                .get("capture_method")
                .cloned()
                .unwrap_or_else(|| "automatic".into()),
        };
        let body = intent.to_json();
        self.intents.insert(intent.id.clone(), intent);
        Ok((200, body))
    }

    fn capture(&mut self, id: &str) -> Answer {
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        if intent.status != "requires_capture" {
            return unexpected_state(intent, "capture");
        }
        intent.status = "succeeded".into();
        intent.amount_received = intent.amount;
        *self.captures.entry(id.to_string()).or_insert(0) += 1;
        (200, intent.to_json())
    }

    fn cancel(&mut self, id: &str) -> Answer {
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        if !CANCELABLE.contains(&intent.status.as_str()) {
            return unexpected_state(intent, "cancel");
        }
        intent.status = "canceled".into();
        (200, intent.to_json())
    }

    fn refund(&mut self, params: &HashMap<String, String>) -> Answer {
        let Some(id) = params.get("payment_intent") else {
            return error(
                400,
                "invalid_request_error",
                "parameter_missing",
                "Missing payment_intent.",
            );
        };
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        if intent.status != "succeeded" {
            return error(
                400,
                "invalid_request_error",
                "charge_not_captured",
                "This PaymentIntent does not have a successful charge to refund.",
            );
        }
        let left = intent.amount_received - intent.amount_refunded;
        let amount = match params.get("amount").map(|a| a.parse::<i64>()) {
            None => left,
            Some(Ok(a)) if a > 0 => a,
            Some(_) => return error(400, "invalid_request_error", "parameter_invalid", "Invalid amount."),
        };
        if left == 0 {
            return error(
                400,
                "invalid_request_error",
                "charge_already_refunded",
                "Already refunded.",
            );
        }
        if amount > left {
            return error(
                400,
                "invalid_request_error",
                "amount_too_large",
                &format!("Refund amount ({amount}) is greater than unrefunded amount ({left})."),
            );
        }
        intent.amount_refunded += amount;
        self.next_id += 1;
        (
            200,
            json!({"id": format!("re_fake{}", self.next_id), "object": "refund", "amount": amount,
                "payment_intent": id, "status": "succeeded"}),
        )
    }
}

struct Responder {
    state: Arc<Mutex<FakeState>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.state);
        let path = request.url.path().to_string();
        let (endpoint, id) = FakeState::route(request.method.as_str(), &path);
        *state.calls.entry(endpoint).or_insert(0) += 1;
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let expected = format!("Bearer {}", state.secret_key);
        if header("authorization").as_deref() != Some(expected.as_str()) {
            let (status, body) = error(
                401,
                "invalid_request_error",
                "api_key_invalid",
                "Invalid API Key provided.",
            );
            return ResponseTemplate::new(status).set_body_json(body);
        }
        let key = if request.method.as_str() == "POST" {
            header("idempotency-key")
        } else {
            None
        };
        let params: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let faults = state.faults.clone();
        let draw = state.rng.between(0, 999_999) as u32;
        let server_error = faults.server_errors.hit(draw);
        let takes_effect_anyway = state.rng.next_u64() & 1 == 1;
        let timeout = faults.timeouts.hit(state.rng.between(0, 999_999) as u32);
        let mut delay = faults.extra_latency;
        let template = if let (true, Some(key)) = (faults.saved_failures.contains(&endpoint), key.as_deref()) {
            let (status, body) = state.save_failure(key, &path, params);
            ResponseTemplate::new(status).set_body_json(body)
        } else if faults.outage.contains(&endpoint) {
            let (status, body) = error(503, "api_error", "", "The service is unavailable (injected outage).");
            ResponseTemplate::new(status).set_body_json(body)
        } else if server_error {
            if takes_effect_anyway {
                let _ = state.execute(endpoint, id.as_deref(), &path, key.as_deref(), params);
            }
            let (status, body) = error(500, "api_error", "", "An unknown error occurred (injected).");
            ResponseTemplate::new(status).set_body_json(body)
        } else {
            let ((status, body), replayed) = state.execute(endpoint, id.as_deref(), &path, key.as_deref(), params);
            if timeout {
                delay += faults.timeout_delay;
            }
            let mut t = ResponseTemplate::new(status).set_body_json(body);
            if replayed {
                t = t.insert_header("Idempotent-Replayed", "true");
            }
            t
        };
        template.set_delay(delay)
    }
}

/// An order reference without its namespace (`ord_1_2@ns` → `ord_1_2`).
fn public(order_ref: &str) -> &str {
    order_ref.split('@').next().unwrap_or(order_ref)
}

fn lock(state: &Mutex<FakeState>) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fake Stripe: a real HTTP server and handles on its state.
pub struct FakeStripe {
    server: MockServer,
    state: Arc<Mutex<FakeState>>,
}

impl FakeStripe {
    /// Starts a fake that accepts [`FAKE_SECRET_KEY`], without faults.
    pub async fn start() -> FakeStripe {
        FakeStripe::start_with(FAKE_SECRET_KEY, Faults::default()).await
    }

    pub async fn start_with(secret_key: &str, faults: Faults) -> FakeStripe {
        let state = Arc::new(Mutex::new(FakeState {
            secret_key: secret_key.to_string(),
            intents: BTreeMap::new(),
            keys: HashMap::new(),
            calls: HashMap::new(),
            captures: HashMap::new(),
            replays: 0,
            next_id: 0,
            rng: SplitMix64::new(faults.seed),
            faults,
        }));
        // A server of its own (not wiremock's shared pool), and no request log: chaos tests
        // send many requests and the counters say what the tests need.
        let server = MockServer::builder().disable_request_recording().start().await;
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        FakeStripe { server, state }
    }

    /// `http://127.0.0.1:<port>`: the adapter's API base.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Replaces the faults (and reseeds their generator).
    pub fn set_faults(&self, faults: Faults) {
        let mut state = lock(&self.state);
        state.rng = SplitMix64::new(faults.seed);
        state.faults = faults;
    }

    /// The buyer's front end confirmed `intent` (from `requires_payment_method`, declined or
    /// not): approved → `requires_capture`; declined → `requires_payment_method` with a
    /// `last_payment_error`.
    pub fn confirm(&self, intent: &str, outcome: BuyerOutcome) -> Result<(), String> {
        let mut state = lock(&self.state);
        let i = state
            .intents
            .get_mut(intent)
            .ok_or_else(|| format!("no such intent {intent}"))?;
        if i.status != "requires_payment_method" {
            return Err(format!("cannot confirm {intent}: it is {}", i.status));
        }
        match outcome {
            BuyerOutcome::Approve => {
                i.status = "requires_capture".into();
                i.decline_code = None;
            }
            BuyerOutcome::Decline(code) => i.decline_code = Some(code),
        }
        Ok(())
    }

    /// Stripe itself cancels an intent (e.g. uncaptured after seven days).
    pub fn expire(&self, intent: &str) -> Result<(), String> {
        let mut state = lock(&self.state);
        let i = state
            .intents
            .get_mut(intent)
            .ok_or_else(|| format!("no such intent {intent}"))?;
        if !CANCELABLE.contains(&i.status.as_str()) {
            return Err(format!("cannot expire {intent}: it is {}", i.status));
        }
        i.status = "canceled".into();
        Ok(())
    }

    pub fn intent(&self, id: &str) -> Option<FakeIntent> {
        lock(&self.state).intents.get(id).cloned()
    }

    /// Every intent made for `order_ref` (or for the order whose public id it is, under any
    /// namespace: `ord_1_2` matches `ord_1_2@<namespace>`), in creation order.
    pub fn intents_of(&self, order_ref: &str) -> Vec<FakeIntent> {
        let state = lock(&self.state);
        let mut out: Vec<FakeIntent> = state
            .intents
            .values()
            .filter(|i| {
                i.order_ref
                    .as_deref()
                    .is_some_and(|r| r == order_ref || public(r) == order_ref)
            })
            .cloned()
            .collect();
        out.sort_by_key(|i| i.id.trim_start_matches("pi_fake").parse::<u64>().unwrap_or(0));
        out
    }

    /// Times `intent` moved to `succeeded` (more than 1 is impossible by construction; the
    /// counter is what a test asserts on).
    pub fn captures(&self, intent: &str) -> u32 {
        lock(&self.state).captures.get(intent).copied().unwrap_or(0)
    }

    /// Captured intents per order (by its public id, without the namespace): an order with
    /// two is a double capture.
    pub fn captured_per_order(&self) -> BTreeMap<String, u32> {
        let state = lock(&self.state);
        let mut out = BTreeMap::new();
        for (id, n) in &state.captures {
            let order = public(state.intents[id].order_ref.as_deref().unwrap_or_default()).to_string();
            *out.entry(order).or_insert(0) += *n;
        }
        out
    }

    /// Orders charged more than once, and intents captured more than once: both must be 0.
    pub fn double_captures(&self) -> usize {
        let per_order = self.captured_per_order().values().filter(|n| **n > 1).count();
        let per_intent = lock(&self.state).captures.values().filter(|n| **n > 1).count();
        per_order + per_intent
    }

    /// Calls received on `endpoint`, replays and faulted ones included.
    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        lock(&self.state).calls.get(&endpoint).copied().unwrap_or(0)
    }

    /// Answers replayed from an idempotency key.
    pub fn replays(&self) -> u64 {
        lock(&self.state).replays
    }

    /// A `payment_intent.*` notification (Stripe's event) carrying `intent` as it is now:
    /// `{"id": "evt_…", "object": "event", "type", "created", "data": {"object": {…}}}`.
    pub fn notification(&self, intent: &str, event_type: &str, created: i64) -> Value {
        let mut state = lock(&self.state);
        state.next_id += 1;
        let object = state
            .intents
            .get(intent)
            .map(FakeIntent::to_json)
            .unwrap_or(Value::Null);
        json!({"id": format!("evt_fake{}", state.next_id), "object": "event", "type": event_type,
            "created": created, "livemode": false, "data": {"object": object}})
    }
}

/// Signs `notification` as Stripe would at unix time `t` with `secret`: returns the
/// `Stripe-Signature` header's value and the body to POST.
pub fn signed_webhook(notification: &Value, secret: &str, t: i64) -> (String, String) {
    let body = notification.to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    (format!("t={t},v1={hex}"), body)
}
