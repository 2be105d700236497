//! Payment providers calling us: `POST /v1/webhooks/stripe`.
//!
//! A notification is verified first (`Stripe-Signature`, every `v1`, constant time, 300 s
//! tolerance; `400 invalid_signature` and nothing changes otherwise), deduplicated by its id,
//! and turned into a `RecordPayment` command for the attempt whose payment it names. The domain
//! judges every report against where the payment stands, so a duplicate, late or out-of-order
//! notification changes nothing it should not. The answer is `200` as soon as the report is
//! durable; a notification about nothing of ours is acknowledged and ignored, so Stripe stops
//! sending it.

use std::collections::{HashSet, VecDeque};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use compact_str::CompactString;
use parking_lot::Mutex;
use taquilla_domain::{Command, OrderId, PaymentRef, PaymentState, PaymentUpdate, Reason, SaleId};
use taquilla_engine::{EngineError, Envelope};
use taquilla_payments::IntentStatus;
use taquilla_payments::stripe::webhook::{IntentUpdate, NotificationKind, SIGNATURE_HEADER, WebhookError};

use crate::AppState;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code, ErrorBody};
use crate::ids::PublicOrderId;
use crate::limits::{WEBHOOK_BODY_BYTES_MAX, WEBHOOK_EVENTS_REMEMBERED};
use crate::responses::Unavailable;

/// The notification ids seen lately: a redelivery is answered without work.
#[derive(Default)]
pub(crate) struct SeenNotifications(Mutex<(HashSet<String>, VecDeque<String>)>);

impl SeenNotifications {
    /// Remembers `id`; false when it was seen before.
    fn first_time(&self, id: &str) -> bool {
        let mut guard = self.0.lock();
        let (set, order) = &mut *guard;
        if !set.insert(id.to_string()) {
            return false;
        }
        order.push_back(id.to_string());
        if order.len() > WEBHOOK_EVENTS_REMEMBERED
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }

    /// Forgets `id` (its report could not be recorded: the redelivery must be processed).
    fn forget(&self, id: &str) {
        self.0.lock().0.remove(id);
    }
}

#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 of `\"{t}.{raw body}\"` with the endpoint's secret")),
    request_body(content = Object, description = "A Stripe event (`payment_intent.amount_capturable_updated`, `.succeeded`, `.payment_failed`, `.canceled`; others are acknowledged and ignored)", content_type = "application/json"),
    responses((status = 200, description = "Recorded (or nothing of ours, or seen before)"),
        (status = 400, body = ErrorBody, description = "`invalid_signature`: missing, malformed, forged or stale `Stripe-Signature`; `malformed_request`: not a Stripe event. Nothing changed"),
        (status = 404, body = ErrorBody, description = "`not_found`: this server has no Stripe webhook secret"),
        Unavailable))]
pub(crate) async fn stripe(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_body(body).await?;
    let verifier = state
        .providers
        .webhook_verifier()
        .ok_or_else(|| ApiError::new(Code::NotFound, "Stripe webhooks are not configured on this server"))?;
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now_secs = state.now().0.div_euclid(1000);
    let notification = verifier
        .verify_notification(header, &body, now_secs)
        .map_err(rejected)?;
    let update = match notification.kind {
        NotificationKind::AmountCapturableUpdated(u) => (u, Report::Authorised),
        NotificationKind::Succeeded(u) => (u, Report::Captured),
        NotificationKind::PaymentFailed(u) => (u, Report::Declined),
        NotificationKind::Canceled(u) => (u, Report::Voided),
        NotificationKind::Ignored { .. } => return Ok(StatusCode::OK),
    };
    if !state.webhooks_seen.first_time(&notification.id) {
        return Ok(StatusCode::OK);
    }
    let correlation = notification_correlation(&notification.id).unwrap_or_else(|| corr.to_compact());
    let recorded = record(&state, update.0, update.1, correlation).await;
    if recorded.is_err() {
        state.webhooks_seen.forget(&notification.id);
    }
    recorded.map(|()| StatusCode::OK)
}

/// The notification's raw bytes (the signature covers them exactly), up to
/// [`WEBHOOK_BODY_BYTES_MAX`] whatever the server's body limit for its own API.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, WEBHOOK_BODY_BYTES_MAX).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("a webhook body is at most {WEBHOOK_BODY_BYTES_MAX} bytes"),
            )
        } else {
            ApiError::new(Code::MalformedRequest, format!("reading the body: {e}"))
        }
    })
}

fn rejected(e: WebhookError) -> ApiError {
    match e {
        WebhookError::BadJson(_) => ApiError::new(Code::MalformedRequest, e.to_string()),
        other => ApiError::new(Code::InvalidSignature, format!("{} ({})", other, other.code())),
    }
}

/// `stripe:<event id>`, when the id makes a valid correlation id.
fn notification_correlation(id: &str) -> Option<CompactString> {
    let text = format!("stripe:{id}");
    CorrelationId::parse(&text).map(|c| c.to_compact())
}

#[derive(Debug, Clone, Copy)]
enum Report {
    Authorised,
    Captured,
    Declined,
    Voided,
}

/// Records what the notification says about the attempt whose payment it names.
async fn record(state: &AppState, u: IntentUpdate, report: Report, correlation: CompactString) -> Result<(), ApiError> {
    let Some((sale, order)) = u
        .order_ref
        .as_deref()
        .and_then(PublicOrderId::parse)
        .map(|p| (p.0, p.1))
    else {
        tracing::info!(intent = u.intent.0, "stripe notification for no order of ours");
        return Ok(());
    };
    let Ok(intent) = PaymentRef::parse(&u.intent.0) else {
        return Ok(());
    };
    let Some((attempt, known)) = attempt_of(state, sale, order, &intent)? else {
        tracing::info!(
            sale = sale.0,
            order = order.0,
            intent = u.intent.0,
            "stripe notification for no attempt of the order"
        );
        return Ok(());
    };
    if !known {
        let created = PaymentUpdate::Created {
            intent: intent.clone(),
            client_secret: None,
        };
        submit(state, sale, order, attempt, created, &correlation).await?;
    }
    let update = match report {
        Report::Authorised => PaymentUpdate::Authorised { intent },
        Report::Captured => PaymentUpdate::Captured { intent },
        Report::Voided => PaymentUpdate::Voided,
        Report::Declined => PaymentUpdate::Declined {
            reason: decline_reason(&u.status),
        },
    };
    submit(state, sale, order, attempt, update, &correlation).await
}

/// The attempt whose payment is `intent`, and whether the order knows it by that id yet.
/// Stripe may notify before the saga has recorded the creation: then it is the latest
/// attempt still waiting for its payment id.
fn attempt_of(
    state: &AppState,
    sale: SaleId,
    order: OrderId,
    intent: &PaymentRef,
) -> Result<Option<(u32, bool)>, ApiError> {
    let found = state.engine()?.read(sale, |s| {
        let o = s.orders.get(&order)?;
        if let Some(p) = o.payments.iter().find(|p| p.intent.as_ref() == Some(intent)) {
            return Some((p.attempt, true));
        }
        o.payments
            .iter()
            .rev()
            .find(|p| p.intent.is_none() && matches!(p.state, PaymentState::Requested | PaymentState::VoidRequired))
            .map(|p| (p.attempt, false))
    });
    Ok(found.flatten())
}

async fn submit(
    state: &AppState,
    sale: SaleId,
    order: OrderId,
    attempt: u32,
    update: PaymentUpdate,
    correlation: &CompactString,
) -> Result<(), ApiError> {
    let env = Envelope {
        sale,
        command: Command::RecordPayment { order, attempt, update },
        correlation_id: Some(correlation.clone()),
    };
    let submitted = match state.engine()?.submit(env) {
        Ok(reply) => reply.await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok(_) => Ok(()),
        // A report the payment no longer fits (another payment id): acknowledged, logged.
        Err(EngineError::Rejected(r)) => {
            tracing::warn!(sale = sale.0, order = order.0, attempt, rejection = %r, "stripe notification refused");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn decline_reason(status: &IntentStatus) -> Reason {
    let text = match status {
        IntentStatus::Declined { reason } => reason.as_str(),
        _ => "payment failed",
    };
    let mut end = text.len().min(taquilla_domain::limits::REASON_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut: String = text[..end].chars().filter(|c| !c.is_control()).collect();
    Reason::parse(&cut)
        .unwrap_or_else(|_| Reason::parse("payment failed").unwrap_or_else(|_| unreachable!("a valid literal")))
}
