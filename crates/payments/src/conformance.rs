//! The one test suite every payment provider must pass (`test`, `simulated` with its faults
//! off, and `stripe` against the fake Stripe on a real HTTP server).
//!
//! Shaped like the event log's suite: an implementation's tests provide a [`Harness`] and call
//! each `pub async fn` check (one `#[tokio::test]` per check, so a failure names it), or
//! [`run_all`]. The checks panic on failure. They wait for nothing but the provider's answers.
//!
//! What a provider must do:
//! - `Authorise` makes a payment that is authorised once the buyer confirms (at once for
//!   providers without a buyer step), or declined if the buyer's bank refuses;
//! - a repeated key answers the first call's answer (the same payment, the same refund, the
//!   same capture) and a key reused with other parameters is refused;
//! - capture only an authorised payment; void anything not captured or voided; refund only a
//!   captured payment, at most what is left of it; every illegal move is `Refused`, and
//!   `Status` always tells where a payment stands;
//! - concurrent calls with one key make one payment.

use std::future::Future;

use taquilla_domain::{Currency, MoneyMinor};
use tower::{Service, ServiceExt};

use crate::provider::{
    IdempotencyKey, IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse,
};

/// How the suite gets providers and plays the buyer.
#[allow(async_fn_in_trait)] // Used by generic test code only; no `Send` bound is needed.
pub trait Harness {
    /// A fresh provider, sharing no payments with earlier ones.
    async fn provider(&mut self) -> PaymentService;
    /// The bank will refuse the buyer's card for `order_ref` (call before `Authorise`).
    fn arrange_decline(&mut self, order_ref: &str);
    /// The buyer completes `intent` on the front end, where the provider has such a step
    /// (Stripe); a no-op for providers that authorise at once.
    async fn buyer_confirms(&mut self, intent: &IntentId);
}

/// Runs every check, each on a fresh provider.
pub async fn run_all<H: Harness>(h: &mut H) {
    authorise_then_capture(h).await;
    authorise_is_idempotent(h).await;
    capture_is_idempotent_and_happens_once(h).await;
    capture_needs_an_authorisation(h).await;
    void_releases_and_blocks_capture(h).await;
    void_before_the_buyer_confirms(h).await;
    captured_cannot_be_voided(h).await;
    refunds_up_to_the_captured_amount(h).await;
    refund_needs_a_capture(h).await;
    declined_payment_cannot_be_captured(h).await;
    unknown_payment_is_refused(h).await;
    concurrent_calls_with_one_key_make_one_payment(h).await;
}

const AMOUNT_MINOR: i64 = 1_000;

fn authorise(order: &str, attempt: u32, amount_minor: i64) -> ProviderRequest {
    ProviderRequest::Authorise {
        key: IdempotencyKey::new(order, attempt, "authorise"),
        amount: MoneyMinor::new(amount_minor).expect("amount"),
        currency: Currency::parse("EUR").expect("currency"),
        order_ref: order.to_string(),
        description: format!("taquilla order {order}"),
    }
}

fn capture(order: &str, attempt: u32, intent: &IntentId) -> ProviderRequest {
    ProviderRequest::Capture {
        key: IdempotencyKey::new(order, attempt, "capture"),
        intent: intent.clone(),
    }
}

fn void(order: &str, attempt: u32, intent: &IntentId) -> ProviderRequest {
    ProviderRequest::Void {
        key: IdempotencyKey::new(order, attempt, "void"),
        intent: intent.clone(),
    }
}

fn refund(order: &str, n: u32, intent: &IntentId, amount_minor: i64) -> ProviderRequest {
    ProviderRequest::Refund {
        key: IdempotencyKey::new(order, 1, &format!("refund{n}")),
        intent: intent.clone(),
        amount: MoneyMinor::new(amount_minor).expect("amount"),
    }
}

fn status(intent: &IntentId) -> ProviderRequest {
    ProviderRequest::Status { intent: intent.clone() }
}

async fn call(svc: &mut PaymentService, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
    let what = format!("{request:?}");
    let ready = svc
        .ready()
        .await
        .unwrap_or_else(|e| panic!("not ready for {what}: {e}"));
    ready.call(request).await
}

async fn status_of(svc: &mut PaymentService, intent: &IntentId) -> IntentStatus {
    match call(svc, status(intent)).await {
        Ok(ProviderResponse::Status(s)) => s,
        other => panic!("status of {intent:?}: {other:?}"),
    }
}

fn expect_refused(what: &str, result: Result<ProviderResponse, ProviderError>) {
    assert!(
        matches!(result, Err(ProviderError::Refused { .. })),
        "{what}: expected Refused, got {result:?}"
    );
}

fn expect_status(what: &str, result: Result<ProviderResponse, ProviderError>, expected: IntentStatus) {
    match result {
        Ok(ProviderResponse::Status(s)) => assert_eq!(s, expected, "{what}"),
        other => panic!("{what}: expected Status({expected:?}), got {other:?}"),
    }
}

/// Authorises (the buyer confirms where needed) and returns the payment.
async fn authorised<H: Harness>(h: &mut H, svc: &mut PaymentService, order: &str) -> IntentId {
    let (intent, first) = match call(svc, authorise(order, 1, AMOUNT_MINOR)).await {
        Ok(ProviderResponse::Payment { intent, status, .. }) => (intent, status),
        other => panic!("authorise {order}: {other:?}"),
    };
    assert!(
        matches!(first, IntentStatus::Authorised | IntentStatus::AwaitingBuyer),
        "a new payment is authorised or awaits the buyer, not {first:?}"
    );
    h.buyer_confirms(&intent).await;
    assert_eq!(
        status_of(svc, &intent).await,
        IntentStatus::Authorised,
        "after the buyer confirmed"
    );
    intent
}

/// Authorise, then capture: the money moved, and `Status` says so.
pub async fn authorise_then_capture<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_capture").await;
    expect_status(
        "capture",
        call(&mut svc, capture("ord_capture", 1, &intent)).await,
        IntentStatus::Captured,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Captured);
}

/// The same key makes the same payment; another key another; the same key with another
/// amount is refused.
pub async fn authorise_is_idempotent<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let first = call(&mut svc, authorise("ord_idem", 1, AMOUNT_MINOR))
        .await
        .expect("first");
    let again = call(&mut svc, authorise("ord_idem", 1, AMOUNT_MINOR))
        .await
        .expect("again");
    assert_eq!(first, again, "a repeated key answers the first answer");
    let other = call(&mut svc, authorise("ord_idem", 2, AMOUNT_MINOR))
        .await
        .expect("attempt 2");
    let (ProviderResponse::Payment { intent: a, .. }, ProviderResponse::Payment { intent: b, .. }) = (&first, &other)
    else {
        panic!("authorise answers a payment: {first:?}, {other:?}")
    };
    assert_ne!(a, b, "another attempt's key makes another payment");
    expect_refused(
        "same key, other amount",
        call(&mut svc, authorise("ord_idem", 1, AMOUNT_MINOR + 1)).await,
    );
}

/// Capturing twice with one key answers twice the same; a capture with another key is
/// refused: the payment was captured once.
pub async fn capture_is_idempotent_and_happens_once<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_twice").await;
    let first = call(&mut svc, capture("ord_twice", 1, &intent)).await;
    let again = call(&mut svc, capture("ord_twice", 1, &intent)).await;
    expect_status("first capture", first, IntentStatus::Captured);
    expect_status("repeated capture", again, IntentStatus::Captured);
    expect_refused(
        "a capture with another key",
        call(&mut svc, capture("ord_twice", 2, &intent)).await,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Captured);
}

/// Where the buyer must confirm first, capturing before is refused — and that refusal is the
/// key's answer from then on (a capture after confirmation needs a fresh key).
pub async fn capture_needs_an_authorisation<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let (intent, first) = match call(&mut svc, authorise("ord_early", 1, AMOUNT_MINOR)).await {
        Ok(ProviderResponse::Payment { intent, status, .. }) => (intent, status),
        other => panic!("authorise: {other:?}"),
    };
    if first == IntentStatus::AwaitingBuyer {
        expect_refused(
            "capture before the buyer",
            call(&mut svc, capture("ord_early", 1, &intent)).await,
        );
        h.buyer_confirms(&intent).await;
        expect_refused(
            "the early capture's key replays its refusal",
            call(&mut svc, capture("ord_early", 1, &intent)).await,
        );
        expect_status(
            "capture with a fresh key",
            call(&mut svc, capture("ord_early", 2, &intent)).await,
            IntentStatus::Captured,
        );
    } else {
        // Authorised at once: nothing to be early for.
        assert_eq!(first, IntentStatus::Authorised);
    }
}

/// A void releases the authorisation: repeated, it answers the same; capture and refund are
/// refused afterwards.
pub async fn void_releases_and_blocks_capture<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_void").await;
    expect_status(
        "void",
        call(&mut svc, void("ord_void", 1, &intent)).await,
        IntentStatus::Voided,
    );
    expect_status(
        "void again",
        call(&mut svc, void("ord_void", 1, &intent)).await,
        IntentStatus::Voided,
    );
    expect_refused(
        "capture after void",
        call(&mut svc, capture("ord_void", 1, &intent)).await,
    );
    expect_refused(
        "refund after void",
        call(&mut svc, refund("ord_void", 1, &intent, 1)).await,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Voided);
}

/// A payment can be voided before the buyer did anything (the hold expired first).
pub async fn void_before_the_buyer_confirms<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = match call(&mut svc, authorise("ord_abandon", 1, AMOUNT_MINOR)).await {
        Ok(ProviderResponse::Payment { intent, .. }) => intent,
        other => panic!("authorise: {other:?}"),
    };
    expect_status(
        "void",
        call(&mut svc, void("ord_abandon", 1, &intent)).await,
        IntentStatus::Voided,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Voided);
}

/// Money that moved cannot be voided (only refunded).
pub async fn captured_cannot_be_voided<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_late_void").await;
    expect_status(
        "capture",
        call(&mut svc, capture("ord_late_void", 1, &intent)).await,
        IntentStatus::Captured,
    );
    expect_refused(
        "void after capture",
        call(&mut svc, void("ord_late_void", 1, &intent)).await,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Captured);
}

/// Partial refunds add up to the captured amount and no further; a repeated refund key
/// answers the same refund.
pub async fn refunds_up_to_the_captured_amount<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_refund").await;
    call(&mut svc, capture("ord_refund", 1, &intent))
        .await
        .expect("capture");
    let first = call(&mut svc, refund("ord_refund", 1, &intent, 400))
        .await
        .expect("refund 400");
    let again = call(&mut svc, refund("ord_refund", 1, &intent, 400))
        .await
        .expect("refund 400 again");
    assert!(matches!(first, ProviderResponse::Refunded { .. }), "{first:?}");
    assert_eq!(first, again, "a repeated refund key answers the same refund");
    let second = call(&mut svc, refund("ord_refund", 2, &intent, 600))
        .await
        .expect("refund 600");
    assert_ne!(first, second, "another key is another refund");
    expect_refused(
        "refund beyond the captured amount",
        call(&mut svc, refund("ord_refund", 3, &intent, 1)).await,
    );
    expect_refused(
        "same key, other amount",
        call(&mut svc, refund("ord_refund", 1, &intent, 401)).await,
    );
}

/// No refund of a payment that was never captured.
pub async fn refund_needs_a_capture<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let intent = authorised(h, &mut svc, "ord_no_refund").await;
    expect_refused(
        "refund of an authorisation",
        call(&mut svc, refund("ord_no_refund", 1, &intent, 100)).await,
    );
    assert_eq!(status_of(&mut svc, &intent).await, IntentStatus::Authorised);
}

/// A declined payment reads `Declined`, cannot be captured, and can be voided.
pub async fn declined_payment_cannot_be_captured<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    h.arrange_decline("ord_declined");
    let intent = match call(&mut svc, authorise("ord_declined", 1, AMOUNT_MINOR)).await {
        Ok(ProviderResponse::Payment { intent, .. }) => intent,
        other => panic!("authorise: {other:?}"),
    };
    h.buyer_confirms(&intent).await;
    let s = status_of(&mut svc, &intent).await;
    assert!(
        matches!(s, IntentStatus::Declined { .. }),
        "declined payment reads {s:?}"
    );
    expect_refused(
        "capture of a decline",
        call(&mut svc, capture("ord_declined", 1, &intent)).await,
    );
    expect_status(
        "void of a decline",
        call(&mut svc, void("ord_declined", 1, &intent)).await,
        IntentStatus::Voided,
    );
}

/// Asking about, capturing or voiding a payment the provider never made is refused.
pub async fn unknown_payment_is_refused<H: Harness>(h: &mut H) {
    let mut svc = h.provider().await;
    let nobody = IntentId("pi_nobody".into());
    expect_refused("status", call(&mut svc, status(&nobody)).await);
    expect_refused("capture", call(&mut svc, capture("ord_x", 1, &nobody)).await);
    expect_refused("void", call(&mut svc, void("ord_x", 1, &nobody)).await);
}

/// Eight concurrent `Authorise` with one key make one payment (an answer may be `Transient`
/// where the provider refuses concurrent use of a key, never a second payment).
pub async fn concurrent_calls_with_one_key_make_one_payment<H: Harness>(h: &mut H) {
    let svc = h.provider().await;
    let calls = (0..8).map(|_| {
        let mut svc = svc.clone();
        async move { call(&mut svc, authorise("ord_race", 1, AMOUNT_MINOR)).await }
    });
    let answers = join_all(calls).await;
    let mut intents = Vec::new();
    for answer in answers {
        match answer {
            Ok(ProviderResponse::Payment { intent, .. }) => intents.push(intent),
            Err(ProviderError::Transient { .. }) => {}
            other => panic!("concurrent authorise: {other:?}"),
        }
    }
    assert!(!intents.is_empty(), "at least one call succeeds");
    let distinct: std::collections::HashSet<&IntentId> = intents.iter().collect();
    assert_eq!(distinct.len(), 1, "one key, one payment: {intents:?}");
}

/// Polls every future to completion, concurrently (no extra dependency for one use).
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(done.iter_mut().map(|d| d.take().expect("done")).collect())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
