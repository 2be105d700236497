//! The event feed: the log's records as JSON, for any number of independent readers that
//! follow it by cursor (at-least-once).

use serde::Serialize;
use taquilla_domain::{Event, Items, OrderId, SaleId, Timestamp};
use utoipa::ToSchema;

use crate::ids::{PublicHoldId, PublicOrderId, PublicSaleId};
use crate::time::Rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Pass as `after` to continue after this event.
    pub cursor: String,
    #[schema(value_type = String, example = "evt_1")]
    pub event_id: PublicSaleId,
    /// Position of the record in its sale (records are whole commands; one record may
    /// carry several events, which then share cursor and seq).
    pub seq: u64,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Rfc3339,
    pub correlation_id: Option<String>,
    /// snake_case event type, e.g. "hold_placed".
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedView {
    pub events: Vec<FeedEvent>,
    /// Cursor to pass as `after` next time (unchanged when there was nothing new).
    pub next_cursor: String,
}

/// An event of the log, as the feed shows it: a snake_case type and its data.
pub fn event_data(sale: SaleId, e: &Event) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    let items = |items: &Items| -> Vec<serde_json::Value> {
        items
            .iter()
            .map(|i| json!({"ticket_type_id": i.ticket_type.0, "quantity": i.quantity.get()}))
            .collect()
    };
    match e {
        Event::SaleCreated {
            name,
            currency,
            hold_ttl_ms,
            max_tickets_per_buyer,
            opens_at,
            closes_at,
            offline_payment_ttl_ms,
        } => (
            "sale_created",
            json!({"name": name.as_str(), "currency": currency.as_str(), "hold_ttl_secs": hold_ttl_ms / 1000,
                   "max_tickets_per_buyer": max_tickets_per_buyer,
                   "opens_at": opens_at.map(Rfc3339), "closes_at": closes_at.map(Rfc3339),
                   "offline_payment_ttl_secs": offline_payment_ttl_ms.map(|ms| ms / 1000)}),
        ),
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        } => (
            "ticket_type_added",
            json!({"ticket_type_id": id.0, "name": name.as_str(), "price_minor": price.get(), "max_per_order": max_per_order}),
        ),
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        } => (
            "quota_added",
            json!({"quota_id": id.0, "name": name.as_str(), "capacity": capacity,
                   "ticket_type_ids": ticket_types.iter().map(|t| t.0).collect::<Vec<_>>()}),
        ),
        Event::SaleStatusChanged { status } => ("sale_status_changed", json!({"status": status.as_str()})),
        Event::TicketTypeEdited {
            id,
            name,
            price,
            max_per_order,
        } => (
            "ticket_type_edited",
            json!({"ticket_type_id": id.0, "name": name.as_str(), "price_minor": price.get(), "max_per_order": max_per_order}),
        ),
        Event::OrganiserKeyUsed { key, .. } => ("organiser_key_used", json!({"idempotency_key": key.as_str()})),
        Event::QuotaCapacitySet { id, capacity } => {
            ("quota_capacity_set", json!({"quota_id": id.0, "capacity": capacity}))
        }
        Event::HoldPlaced {
            hold,
            buyer,
            items: its,
            expires_at,
            ..
        } => (
            "hold_placed",
            json!({"hold_id": PublicHoldId(sale, *hold), "buyer_id": buyer.as_str(), "items": items(its),
                   "expires_at": Rfc3339(*expires_at)}),
        ),
        Event::HoldReleased { hold } => ("hold_released", json!({"hold_id": PublicHoldId(sale, *hold)})),
        Event::HoldExpired { hold } => ("hold_expired", json!({"hold_id": PublicHoldId(sale, *hold)})),
        Event::OrderPlaced {
            order, hold, total, at, ..
        } => (
            "order_placed",
            json!({"order_id": PublicOrderId(sale, *order), "hold_id": PublicHoldId(sale, *hold),
                   "total_minor": total.get(), "at": Rfc3339(*at)}),
        ),
        Event::OrderPaid {
            order,
            payment_ref,
            tickets,
            reinstated,
            at,
        } => (
            "order_paid",
            json!({"order_id": PublicOrderId(sale, *order), "payment_ref": payment_ref.as_str(),
                   "tickets": tickets.iter().map(|t| json!({"code": t.code.to_text(), "ticket_type_id": t.ticket_type.0})).collect::<Vec<_>>(),
                   "reinstated": reinstated, "at": Rfc3339(*at)}),
        ),
        Event::OrderPaymentFailed { order, reason } => (
            "order_payment_failed",
            json!({"order_id": PublicOrderId(sale, *order), "reason": reason.as_str()}),
        ),
        Event::OrderExpired { order, at } => (
            "order_expired",
            json!({"order_id": PublicOrderId(sale, *order), "at": Rfc3339(*at)}),
        ),
        Event::OrderCancelled { order, at } => (
            "order_cancelled",
            json!({"order_id": PublicOrderId(sale, *order), "at": Rfc3339(*at)}),
        ),
        Event::OrderRefundRequired { order, payment_ref, at } => (
            "order_refund_required",
            json!({"order_id": PublicOrderId(sale, *order), "payment_ref": payment_ref.as_str(), "at": Rfc3339(*at)}),
        ),
        Event::OrderRefunded {
            order,
            tickets,
            amount,
            at,
        } => (
            "order_refunded",
            json!({"order_id": PublicOrderId(sale, *order), "ticket_codes": tickets.iter().map(|c| c.to_text()).collect::<Vec<_>>(),
                   "amount_minor": amount.get(), "at": Rfc3339(*at)}),
        ),
        Event::TicketCheckedIn { code, at } => (
            "ticket_checked_in",
            json!({"ticket_code": code.to_text(), "at": Rfc3339(*at)}),
        ),
        payment => payment_event_data(sale, payment),
    }
}

/// A payment or refund event as the feed shows it. Client secrets stay out: only the buyer
/// sees them, in their order.
fn payment_event_data(sale: SaleId, e: &Event) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    let step = |order: &OrderId, attempt: &u32, at: &Timestamp| json!({"order_id": PublicOrderId(sale, *order), "attempt": attempt, "at": Rfc3339(*at)});
    let with = |mut base: serde_json::Value, more: serde_json::Value| {
        if let (Some(b), Some(m)) = (base.as_object_mut(), more.as_object()) {
            b.extend(m.clone());
        }
        base
    };
    match e {
        Event::PaymentRequested {
            order,
            attempt,
            method,
            amount,
            expires_at,
            at,
            ..
        } => (
            "payment_requested",
            with(
                step(order, attempt, at),
                json!({"method": method.as_str(), "amount_minor": amount.get(), "expires_at": Rfc3339(*expires_at)}),
            ),
        ),
        Event::PaymentCreated {
            order,
            attempt,
            intent,
            at,
            ..
        } => (
            "payment_created",
            with(step(order, attempt, at), json!({"payment_intent_id": intent.as_str()})),
        ),
        Event::PaymentAuthorised {
            order,
            attempt,
            intent,
            reinstated,
            at,
            ..
        } => (
            "payment_authorised",
            with(
                step(order, attempt, at),
                json!({"payment_intent_id": intent.as_str(), "reinstated": reinstated}),
            ),
        ),
        Event::PaymentCaptured {
            order,
            attempt,
            intent,
            at,
            ..
        } => (
            "payment_captured",
            with(step(order, attempt, at), json!({"payment_intent_id": intent.as_str()})),
        ),
        Event::PaymentVoidRequired { order, attempt, at, .. } => ("payment_void_required", step(order, attempt, at)),
        Event::PaymentVoided { order, attempt, at, .. } => ("payment_voided", step(order, attempt, at)),
        Event::PaymentDeclined {
            order,
            attempt,
            reason,
            at,
            ..
        } => (
            "payment_declined",
            with(step(order, attempt, at), json!({"reason": reason.as_str()})),
        ),
        Event::PaymentFailed {
            order,
            attempt,
            reason,
            at,
            ..
        } => (
            "payment_failed",
            with(step(order, attempt, at), json!({"reason": reason.as_str()})),
        ),
        _ => refund_event_data(sale, e),
    }
}

fn refund_event_data(sale: SaleId, e: &Event) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    match e {
        Event::RefundRequested {
            order,
            refund,
            attempt,
            amount,
            at,
        } => (
            "refund_requested",
            json!({"order_id": PublicOrderId(sale, *order), "refund": refund, "attempt": attempt,
                   "amount_minor": amount.get(), "at": Rfc3339(*at)}),
        ),
        Event::RefundIssued {
            order,
            refund,
            provider_ref,
            at,
            ..
        } => (
            "refund_issued",
            json!({"order_id": PublicOrderId(sale, *order), "refund": refund, "provider_ref": provider_ref.as_str(),
                   "at": Rfc3339(*at)}),
        ),
        Event::RefundFailed {
            order,
            refund,
            reason,
            at,
            ..
        } => (
            "refund_failed",
            json!({"order_id": PublicOrderId(sale, *order), "refund": refund, "reason": reason.as_str(),
                   "at": Rfc3339(*at)}),
        ),
        Event::RoomConfigured { config, .. } => (
            "room_configured",
            // The seed stays secret while the sale runs: its hash only.
            json!({"prequeue_opens_at": Rfc3339(config.prequeue_opens_at), "opens_at": Rfc3339(config.opens_at),
                   "admit_per_sec": config.admit_per_sec, "session_secs": config.session_ms / 1000,
                   "queue_max": config.queue_max}),
        ),
        Event::BuyerJoined { buyer, at } => ("buyer_joined", json!({"buyer_id": buyer.as_str(), "at": Rfc3339(*at)})),
        Event::BuyerLeft { buyer, at } => ("buyer_left", json!({"buyer_id": buyer.as_str(), "at": Rfc3339(*at)})),
        Event::PrequeueShuffled { at } => ("prequeue_shuffled", json!({"at": Rfc3339(*at)})),
        Event::BuyersAdmitted { count, at } => ("buyers_admitted", json!({"count": count, "at": Rfc3339(*at)})),
        Event::AdmissionsExpired { count, at } => ("admissions_expired", json!({"count": count, "at": Rfc3339(*at)})),
        Event::AdmissionUsed { buyer } => ("admission_used", json!({"buyer_id": buyer.as_str()})),
        other => {
            // Every event has its arm in `event_data` or here.
            tracing::error!(?other, "an event without a feed shape");
            ("unknown", json!({}))
        }
    }
}
