//! The `stripe` provider: Stripe's PaymentIntents with manual capture, over HTTP.
//!
//! | port | Stripe |
//! |---|---|
//! | `Authorise` | `POST /v1/payment_intents` (amount, currency in lower case, `capture_method=manual`, `automatic_payment_methods[enabled]=true`, `metadata[order_id]`, description) |
//! | `Capture` | `POST /v1/payment_intents/{id}/capture` |
//! | `Void` | `POST /v1/payment_intents/{id}/cancel` |
//! | `Refund` | `POST /v1/refunds` (payment_intent, amount) |
//! | `Status` | `GET /v1/payment_intents/{id}` |
//!
//! Every POST is form-encoded and carries the request's key as `Idempotency-Key`; every call
//! `Authorization: Bearer <secret key>` and `Stripe-Version` ([`STRIPE_API_VERSION`]), so that
//! the shapes read here do not change when the account's default version does. Outcomes, mapped to the port's errors:
//! - no connection could be made (nothing was sent): `Transient`;
//! - a timeout or a dropped connection after sending, an unreadable `2xx`: `Unknown`;
//! - `429`, `409` (a concurrent request with the same key), or any `4xx` with
//!   `Stripe-Should-Retry: true`: `Transient` — Stripe did not act;
//! - `5xx`: `Unknown`, whatever `Stripe-Should-Retry` says: Stripe saves a `500` under its
//!   key once the endpoint began executing, so the money may have moved; retries with the same
//!   key replay the saved answer and the reconciler asks for the status;
//! - any other `4xx` (`idempotency_error` included): `Refused`, except a card error while
//!   creating a PaymentIntent, which is a `Payment` in `Declined`.
//!
//! Webhooks (signature check and event parsing) are in [`webhook`].

pub mod types;
pub mod webhook;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::ReplyFuture;
use crate::limits::{
    DEADLINE_MS_MAX, STRIPE_API_BASE_DEFAULT, STRIPE_API_VERSION, STRIPE_CONNECT_TIMEOUT_MS, STRIPE_ID_BYTES_MAX,
    STRIPE_RESPONSE_BYTES_MAX,
};
use crate::provider::{
    IdempotencyKey, IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse, RefundId,
};
use types::{ErrorBody, PaymentIntent, Refund};

/// The provider's name in errors and metrics.
pub const NAME: &str = "stripe";

/// Where and as whom to call Stripe.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a test server's `http://127.0.0.1:<port>`; no trailing `/`.
    pub api_base: String,
    /// `sk_live_…`, `sk_test_…` or a restricted `rk_…` key.
    pub secret_key: String,
}

impl StripeConfig {
    pub fn new(secret_key: impl Into<String>) -> StripeConfig {
        StripeConfig {
            api_base: STRIPE_API_BASE_DEFAULT.into(),
            secret_key: secret_key.into(),
        }
    }

    pub fn with_api_base(mut self, api_base: impl Into<String>) -> StripeConfig {
        self.api_base = api_base.into().trim_end_matches('/').to_string();
        self
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Why a [`StripeProvider`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("stripe client: {0}")]
pub struct StripeSetupError(String);

/// The `stripe` provider. Clones share one connection pool.
#[derive(Clone)]
pub struct StripeProvider {
    client: reqwest::Client,
    api_base: Arc<str>,
    authorization: Arc<str>,
}

impl fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeProvider")
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// A `4xx` the operation may read before it becomes `Refused` (a card error on create).
struct ApiRefusal {
    status: StatusCode,
    body: ErrorBody,
}

impl StripeProvider {
    pub fn new(config: &StripeConfig) -> Result<StripeProvider, StripeSetupError> {
        let base = config.api_base.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(StripeSetupError(format!("API base {base:?} is not an http(s) URL")));
        }
        if config.secret_key.is_empty() || config.secret_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StripeSetupError("the secret key is empty or holds whitespace".into()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(STRIPE_CONNECT_TIMEOUT_MS))
            // A backstop only: the resilience stack's deadline is shorter.
            .timeout(Duration::from_millis(DEADLINE_MS_MAX))
            .user_agent(concat!("taquilla/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StripeSetupError(e.to_string()))?;
        Ok(StripeProvider {
            client,
            api_base: base.into(),
            authorization: format!("Bearer {}", config.secret_key).into(),
        })
    }

    /// This provider as the port's boxed service (put it through [`crate::resilience::stack`]).
    pub fn service(&self) -> PaymentService {
        BoxCloneSyncService::new(self.clone())
    }

    async fn answer(self, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
        match request {
            ProviderRequest::Authorise {
                key,
                amount,
                currency,
                order_ref,
                description,
            } => {
                let form = [
                    ("amount", amount.get().to_string()),
                    ("currency", currency.as_str().to_ascii_lowercase()),
                    ("capture_method", "manual".into()),
                    ("automatic_payment_methods[enabled]", "true".into()),
                    ("metadata[order_id]", order_ref),
                    ("description", description),
                ];
                match self
                    .exchange::<PaymentIntent>(Method::POST, "/v1/payment_intents".into(), Some(&key), &form)
                    .await?
                {
                    Ok(pi) => Ok(payment(pi)),
                    Err(refusal) => declined_on_create(refusal),
                }
            }
            ProviderRequest::Capture { key, intent } => {
                let path = format!("/v1/payment_intents/{}/capture", path_id(&intent)?);
                self.intent_call(Method::POST, path, Some(&key)).await
            }
            ProviderRequest::Void { key, intent } => {
                let path = format!("/v1/payment_intents/{}/cancel", path_id(&intent)?);
                self.intent_call(Method::POST, path, Some(&key)).await
            }
            ProviderRequest::Status { intent } => {
                let path = format!("/v1/payment_intents/{}", path_id(&intent)?);
                self.intent_call(Method::GET, path, None).await
            }
            ProviderRequest::Refund { key, intent, amount } => {
                let form = [
                    ("payment_intent", path_id(&intent)?.to_string()),
                    ("amount", amount.get().to_string()),
                ];
                match self
                    .exchange::<Refund>(Method::POST, "/v1/refunds".into(), Some(&key), &form)
                    .await?
                {
                    Ok(refund) => Ok(ProviderResponse::Refunded {
                        refund: RefundId(refund.id),
                    }),
                    Err(refusal) => Err(refused(refusal.status, &refusal.body)),
                }
            }
        }
    }

    /// A call answered with a PaymentIntent, whose status is the answer.
    async fn intent_call(
        &self,
        method: Method,
        path: String,
        key: Option<&IdempotencyKey>,
    ) -> Result<ProviderResponse, ProviderError> {
        match self.exchange::<PaymentIntent>(method, path, key, &[]).await? {
            Ok(pi) => Ok(ProviderResponse::Status(pi.intent_status())),
            Err(refusal) => Err(refused(refusal.status, &refusal.body)),
        }
    }

    /// One HTTP exchange. `Ok(Ok(body))` on `2xx`; `Ok(Err(refusal))` on a `4xx` that is a
    /// refusal; `Err` for everything the port's errors say without the operation's help.
    async fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        key: Option<&IdempotencyKey>,
        form: &[(&str, String)],
    ) -> Result<Result<T, ApiRefusal>, ProviderError> {
        let url = format!("{}{}", self.api_base, path);
        let mut builder = self
            .client
            .request(method.clone(), &url)
            .header(reqwest::header::AUTHORIZATION, &*self.authorization)
            .header("Stripe-Version", STRIPE_API_VERSION);
        if let Some(key) = key {
            builder = builder.header("Idempotency-Key", key.as_str());
        }
        if method == Method::POST {
            builder = builder.form(form);
        }
        let mut response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.eq_ignore_ascii_case("true"));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unknown(format!("reading the answer: {e}")))?
        {
            if body.len() + chunk.len() > STRIPE_RESPONSE_BYTES_MAX {
                return Err(unknown(format!("answer longer than {STRIPE_RESPONSE_BYTES_MAX} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Ok)
                .map_err(|e| unknown(format!("{status} with an unreadable body: {e}")));
        }
        let error = serde_json::from_slice::<ErrorBody>(&body).unwrap_or_else(|_| ErrorBody {
            error: types::ApiError {
                message: Some(String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
                ..Default::default()
            },
        });
        if status.is_server_error() {
            return Err(unknown(format!("{status}: {}", error.error.describe())));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::CONFLICT || should_retry == Some(true) {
            return Err(ProviderError::Transient {
                provider: NAME,
                message: format!("{status}: {}", error.error.describe()),
            });
        }
        Ok(Err(ApiRefusal { status, body: error }))
    }
}

/// A `4xx` to a create: a card error that names the intent is a declined payment (the buyer
/// may pay it with another card); anything else is a refusal.
fn declined_on_create(refusal: ApiRefusal) -> Result<ProviderResponse, ProviderError> {
    let card_error =
        refusal.status == StatusCode::PAYMENT_REQUIRED && refusal.body.error.kind.as_deref() == Some("card_error");
    match refusal.body.error.payment_intent.clone() {
        Some(pi) if card_error => Ok(ProviderResponse::Payment {
            intent: IntentId(pi.id),
            client_secret: pi.client_secret,
            status: IntentStatus::Declined {
                reason: refusal.body.error.reason(),
            },
        }),
        _ => Err(refused(refusal.status, &refusal.body)),
    }
}

fn payment(pi: PaymentIntent) -> ProviderResponse {
    let status = pi.intent_status();
    ProviderResponse::Payment {
        intent: IntentId(pi.id),
        client_secret: pi.client_secret,
        status,
    }
}

/// An intent id goes into a URL path: only Stripe's id characters are allowed.
fn path_id(intent: &IntentId) -> Result<&str, ProviderError> {
    let id = intent.0.as_str();
    let ok =
        !id.is_empty() && id.len() <= STRIPE_ID_BYTES_MAX && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(ProviderError::Refused {
            provider: NAME,
            message: format!("{id:?} is not a Stripe id"),
        })
    }
}

fn transport_error(e: reqwest::Error) -> ProviderError {
    if e.is_connect() {
        // No connection, so no request: safe to say nothing happened.
        ProviderError::Transient {
            provider: NAME,
            message: format!("connecting: {e}"),
        }
    } else if e.is_builder() {
        ProviderError::Refused {
            provider: NAME,
            message: format!("building the request: {e}"),
        }
    } else {
        // Timed out or dropped after the request may have been sent.
        unknown(format!("{e}"))
    }
}

fn unknown(message: String) -> ProviderError {
    ProviderError::Unknown {
        provider: NAME,
        message,
    }
}

fn refused(status: StatusCode, body: &ErrorBody) -> ProviderError {
    ProviderError::Refused {
        provider: NAME,
        message: format!("{status}: {}", body.error.describe()),
    }
}

impl Service<ProviderRequest> for StripeProvider {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        Box::pin(self.clone().answer(request))
    }
}
