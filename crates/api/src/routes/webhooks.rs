//! Payment providers calling us: `POST /v1/webhooks/stripe`.
//!
//! A notification is verified first (`Stripe-Signature`, every `v1`, constant time, 300 s
//! tolerance; `400 invalid_signature` and nothing changes otherwise), deduplicated by its id,
//! and turned into a `RecordPayment` command for the attempt whose payment it names. The domain
//! judges every report against where the payment stands, so a duplicate, late or out-of-order
//! notification changes nothing it should not. The answer is `200` as soon as the report is
//! durable; a notification about nothing of ours is acknowledged and ignored, so Stripe stops
//! sending it.

use std::collections::{HashMap, VecDeque};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use compact_str::CompactString;
use parking_lot::Mutex;
use taquilla_domain::{Command, OrderId, PaymentRef, PaymentState, PaymentUpdate, Reason, SaleId};
use taquilla_engine::{EngineError, Envelope};
use taquilla_followers::saga::step::parse_order_ref;
use taquilla_payments::IntentStatus;
use taquilla_payments::stripe::webhook::{IntentUpdate, NotificationKind, SIGNATURE_HEADER, WebhookError};

use crate::AppState;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code, ErrorBody};
use crate::ids::PublicOrderId;
use crate::limits::{WEBHOOK_BODY_BYTES_MAX, WEBHOOK_EVENTS_REMEMBERED};

/// The notification ids seen lately, with whether their report is durable yet: a redelivery
/// of a recorded one is answered without work; one that arrives while the first delivery is
/// still being recorded is answered `503`, so Stripe sends it again rather than count it
/// delivered before it is.
#[derive(Default)]
pub(crate) struct SeenNotifications(Mutex<Seen>);

#[derive(Default)]
struct Seen {
    /// Id → recorded (durable).
    ids: HashMap<String, bool>,
    /// Ids in the order seen, to forget the oldest beyond [`WEBHOOK_EVENTS_REMEMBERED`].
    order: VecDeque<String>,
}

/// What to do with a notification, by its id.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    First,
    Recorded,
    InProgress,
}

impl SeenNotifications {
    fn arrive(&self, id: &str) -> Delivery {
        let mut seen = self.0.lock();
        match seen.ids.get(id) {
            Some(true) => return Delivery::Recorded,
            Some(false) => return Delivery::InProgress,
            None => {}
        }
        seen.ids.insert(id.to_string(), false);
        seen.order.push_back(id.to_string());
        while seen.order.len() > WEBHOOK_EVENTS_REMEMBERED {
            if let Some(old) = seen.order.pop_front() {
                seen.ids.remove(&old);
            }
        }
        Delivery::First
    }

    /// The first delivery's report is durable (`true`), or could not be recorded (`false`:
    /// forgotten, so that the redelivery is processed).
    fn settle(&self, id: &str, recorded: bool) {
        let mut seen = self.0.lock();
        if recorded {
            if let Some(r) = seen.ids.get_mut(id) {
                *r = true;
            }
        } else {
            seen.ids.remove(id);
            seen.order.retain(|x| x != id);
        }
    }
}

#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 of `\"{t}.{raw body}\"` with the endpoint's secret")),
    request_body(content = Object, description = "A Stripe event (`payment_intent.amount_capturable_updated`, `.succeeded`, `.payment_failed`, `.canceled`; others are acknowledged and ignored)", content_type = "application/json"),
    responses((status = 200, description = "Recorded (or nothing of ours, or seen before)"),
        (status = 400, body = ErrorBody, description = "`invalid_signature`: missing, malformed, forged or stale `Stripe-Signature`; `malformed_request`: not a Stripe event. Nothing changed"),
        (status = 404, body = ErrorBody, description = "`not_found`: this server has no Stripe webhook secret")))]
pub(crate) async fn stripe(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_body(body).await?;
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    // A request without the header it must carry is malformed whoever it is for.
    if header.is_none() {
        return Err(rejected(WebhookError::MissingHeader));
    }
    let verifier = state
        .providers
        .webhook_verifier()
        .ok_or_else(|| ApiError::new(Code::NotFound, "Stripe webhooks are not configured on this server"))?;
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
    match state.webhooks_seen.arrive(&notification.id) {
        Delivery::First => {}
        Delivery::Recorded => return Ok(StatusCode::OK),
        Delivery::InProgress => {
            return Err(ApiError::new(
                Code::Unavailable,
                "this notification is being recorded; deliver it again",
            )
            .retry_after(1));
        }
    }
    let correlation = notification_correlation(&notification.id).unwrap_or_else(|| corr.to_compact());
    let recorded = record(&state, update.0, update.1, correlation).await;
    state.webhooks_seen.settle(&notification.id, recorded.is_ok());
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
    // Ours: an order reference under this deployment's namespace.
    let ours = |(public, namespace): (&str, &str)| {
        (Some(namespace) == state.payment_namespace())
            .then(|| PublicOrderId::parse(public))
            .flatten()
    };
    let Some((sale, order)) = u
        .order_ref
        .as_deref()
        .and_then(parse_order_ref)
        .and_then(ours)
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
