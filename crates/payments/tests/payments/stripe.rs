//! The Stripe adapter over real HTTP: the requests it sends, how each HTTP outcome maps to the
//! port's errors, and — against the fake Stripe with faults — that retries with the same keys
//! never capture twice. These run on real time (the servers are real sockets), with deadlines
//! in the hundreds of milliseconds.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use taquilla_domain::{Currency, MoneyMinor};
use taquilla_payments::limits::STRIPE_API_VERSION;
use taquilla_payments::resilience::{BreakerConfig, DeadlineLayer, ResilienceConfig, RetryConfig, stack};
use taquilla_payments::simulated::Rate;
use taquilla_payments::stripe::webhook::{IntentUpdate, NotificationKind, WebhookVerifier};
use taquilla_payments::stripe::{StripeConfig, StripeProvider};
use taquilla_payments::testing::{BuyerOutcome, Endpoint, FAKE_SECRET_KEY, FakeStripe, Faults, signed_webhook};
use taquilla_payments::{
    IdempotencyKey, IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse,
};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(base: &str) -> PaymentService {
    StripeProvider::new(&StripeConfig::new("sk_test_x").with_api_base(base))
        .expect("client")
        .service()
}

fn authorise(order: &str, attempt: u32) -> ProviderRequest {
    ProviderRequest::Authorise {
        key: IdempotencyKey::new(order, attempt, "authorise"),
        amount: MoneyMinor::new(1_000).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        order_ref: order.into(),
        description: format!("taquilla order {order}"),
    }
}

fn capture(order: &str, intent: &IntentId) -> ProviderRequest {
    ProviderRequest::Capture {
        key: IdempotencyKey::new(order, 1, "capture"),
        intent: intent.clone(),
    }
}

async fn call(svc: &mut PaymentService, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
    svc.ready().await?.call(request).await
}

fn intent_json(status: &str) -> serde_json::Value {
    json!({"id": "pi_1", "object": "payment_intent", "status": status, "amount": 1000,
        "client_secret": "pi_1_secret_x", "metadata": {"order_id": "ord_1"}})
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn requests_have_stripes_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json("requires_payment_method")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_1/capture"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json("succeeded")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json("requires_capture")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_1", "object": "refund"})))
        .mount(&server)
        .await;
    let mut svc = provider(&server.uri());
    let intent = IntentId("pi_1".into());
    assert_eq!(
        call(&mut svc, authorise("ord_1", 1)).await,
        Ok(ProviderResponse::Payment {
            intent: intent.clone(),
            client_secret: Some("pi_1_secret_x".into()),
            status: IntentStatus::AwaitingBuyer,
        })
    );
    assert_eq!(
        call(&mut svc, capture("ord_1", &intent)).await,
        Ok(ProviderResponse::Status(IntentStatus::Captured))
    );
    assert_eq!(
        call(&mut svc, ProviderRequest::Status { intent: intent.clone() }).await,
        Ok(ProviderResponse::Status(IntentStatus::Authorised))
    );
    let refund = ProviderRequest::Refund {
        key: IdempotencyKey::new("ord_1", 1, "refund"),
        intent: intent.clone(),
        amount: MoneyMinor::new(300).unwrap(),
    };
    assert_eq!(
        call(&mut svc, refund).await,
        Ok(ProviderResponse::Refunded {
            refund: taquilla_payments::RefundId("re_1".into())
        })
    );

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer sk_test_x");
        assert_eq!(r.headers.get("stripe-version").unwrap(), STRIPE_API_VERSION);
    }
    let create = &requests[0];
    assert_eq!(
        create.headers.get("idempotency-key").unwrap(),
        "taquilla:ord_1:a1:authorise"
    );
    assert_eq!(
        create.headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let f = form(&create.body);
    for (k, v) in [
        ("amount", "1000"),
        ("currency", "eur"),
        ("capture_method", "manual"),
        ("automatic_payment_methods[enabled]", "true"),
        ("metadata[order_id]", "ord_1"),
        ("description", "taquilla order ord_1"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    assert_eq!(
        requests[1].headers.get("idempotency-key").unwrap(),
        "taquilla:ord_1:a1:capture"
    );
    assert!(
        requests[2].headers.get("idempotency-key").is_none(),
        "a GET carries no key"
    );
    let f = form(&requests[3].body);
    assert_eq!(f.get("payment_intent").map(String::as_str), Some("pi_1"));
    assert_eq!(f.get("amount").map(String::as_str), Some("300"));
}

#[tokio::test]
async fn http_outcomes_map_to_the_ports_errors() {
    let error = |kind: &str, code: &str| json!({"error": {"type": kind, "code": code, "message": "m"}});
    let cases: Vec<(ResponseTemplate, &str)> = vec![
        (
            ResponseTemplate::new(429).set_body_json(error("invalid_request_error", "rate_limit")),
            "transient",
        ),
        (
            ResponseTemplate::new(409).set_body_json(error("invalid_request_error", "lock_timeout")),
            "transient",
        ),
        (
            ResponseTemplate::new(400)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(error("invalid_request_error", "x")),
            "transient",
        ),
        (
            ResponseTemplate::new(500).set_body_json(error("api_error", "")),
            "unknown",
        ),
        (
            ResponseTemplate::new(503)
                .insert_header("Stripe-Should-Retry", "false")
                .set_body_string("<html>"),
            "unknown",
        ),
        (ResponseTemplate::new(200).set_body_string("not json"), "unknown"),
        (
            ResponseTemplate::new(400).set_body_json(error("idempotency_error", "")),
            "refused",
        ),
        (
            ResponseTemplate::new(401).set_body_json(error("invalid_request_error", "api_key_invalid")),
            "refused",
        ),
        (
            ResponseTemplate::new(404).set_body_json(error("invalid_request_error", "resource_missing")),
            "refused",
        ),
        // A card error without the intent it concerns cannot be a payment.
        (
            ResponseTemplate::new(402).set_body_json(error("card_error", "card_declined")),
            "refused",
        ),
    ];
    for (response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(response).mount(&server).await;
        let result = call(&mut provider(&server.uri()), authorise("ord_1", 1)).await;
        let kind = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        assert_eq!(kind, expected, "{result:?}");
    }
}

#[tokio::test]
async fn a_card_error_on_create_is_a_declined_payment() {
    let server = MockServer::start().await;
    let body = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "payment_intent": intent_json("requires_payment_method")}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(body))
        .mount(&server)
        .await;
    assert_eq!(
        call(&mut provider(&server.uri()), authorise("ord_1", 1)).await,
        Ok(ProviderResponse::Payment {
            intent: IntentId("pi_1".into()),
            client_secret: Some("pi_1_secret_x".into()),
            status: IntentStatus::Declined {
                reason: "insufficient_funds".into()
            },
        })
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_a_bad_id_never_reaches_a_path() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut svc = provider(&format!("http://127.0.0.1:{port}"));
    let r = call(&mut svc, authorise("ord_1", 1)).await;
    assert!(matches!(r, Err(ProviderError::Transient { .. })), "{r:?}");
    let sneaky = IntentId("pi_1/../../v1/refunds".into());
    let r = call(&mut svc, capture("ord_1", &sneaky)).await;
    assert!(matches!(r, Err(ProviderError::Refused { .. })), "{r:?}");
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_by_the_fake() {
    let fake = FakeStripe::start().await;
    let r = call(&mut provider(&fake.uri()), authorise("ord_1", 1)).await;
    assert!(matches!(r, Err(ProviderError::Refused { .. })), "{r:?}");
    assert_eq!(fake.calls(Endpoint::CreateIntent), 1);
    assert!(fake.intents_of("ord_1").is_empty());
}

fn fake_provider(fake: &FakeStripe) -> PaymentService {
    StripeProvider::new(&StripeConfig::new(FAKE_SECRET_KEY).with_api_base(fake.uri()))
        .expect("client")
        .service()
}

#[tokio::test]
async fn a_timeout_after_sending_is_unknown_and_the_same_key_then_replays_the_capture() {
    let fake = FakeStripe::start().await;
    let mut plain = fake_provider(&fake);
    let Ok(ProviderResponse::Payment { intent, .. }) = call(&mut plain, authorise("ord_1", 1)).await else {
        panic!("authorise")
    };
    fake.confirm(&intent.0, BuyerOutcome::Approve).unwrap();
    fake.set_faults(Faults {
        timeouts: Rate::from_percent(100.0).unwrap(),
        timeout_delay: Duration::from_secs(5),
        ..Faults::default()
    });
    let mut svc = BoxCloneSyncService::new(DeadlineLayer::new("stripe", Duration::from_millis(300)).layer(plain));
    let r = call(&mut svc, capture("ord_1", &intent)).await;
    assert!(matches!(r, Err(ProviderError::Unknown { .. })), "{r:?}");
    assert_eq!(
        fake.captures(&intent.0),
        1,
        "the capture happened; only its answer was late"
    );
    fake.set_faults(Faults::default());
    assert_eq!(
        call(&mut svc, capture("ord_1", &intent)).await,
        Ok(ProviderResponse::Status(IntentStatus::Captured)),
        "the same key replays the capture's answer"
    );
    assert_eq!(fake.captures(&intent.0), 1);
    assert_eq!(fake.replays(), 1);
}

/// Sends `request` through `svc` until it gets an answer that is not an error the saga would
/// retry later (the stack already retries; this is the saga's next round, same key).
async fn until_settled(svc: &mut PaymentService, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
    for _ in 0..20 {
        match call(svc, request.clone()).await {
            Err(e) if e.is_retryable() || matches!(e, ProviderError::Unavailable { .. }) => continue,
            settled => return settled,
        }
    }
    panic!("{request:?} never settled")
}

#[tokio::test]
async fn under_server_errors_and_timeouts_retries_with_the_same_keys_capture_each_order_once() {
    let fake = FakeStripe::start_with(
        FAKE_SECRET_KEY,
        Faults {
            server_errors: Rate::from_percent(30.0).unwrap(),
            timeouts: Rate::from_percent(10.0).unwrap(),
            timeout_delay: Duration::from_secs(2),
            extra_latency: Duration::ZERO,
            seed: 42,
            ..Faults::default()
        },
    )
    .await;
    let config = ResilienceConfig {
        deadline: Duration::from_millis(200),
        retry: RetryConfig {
            retries: 4,
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(20),
            budget_percent: 100,
            budget_min_per_sec: 100,
            ..RetryConfig::default()
        },
        breaker: BreakerConfig {
            failures: 1_000,
            failure_rate_percent: 100,
            calls_min: 1_000,
            cool_down: Duration::from_millis(200),
            ..BreakerConfig::default()
        },
    };
    let mut svc = stack("stripe", fake_provider(&fake), &config);
    let orders = 20;
    for n in 0..orders {
        let order = format!("ord_{n}");
        let Ok(ProviderResponse::Payment { intent, .. }) = until_settled(&mut svc, authorise(&order, 1)).await else {
            panic!("authorise {order}")
        };
        fake.confirm(&intent.0, BuyerOutcome::Approve).unwrap();
        let captured = until_settled(&mut svc, capture(&order, &intent)).await;
        assert_eq!(
            captured,
            Ok(ProviderResponse::Status(IntentStatus::Captured)),
            "{order}"
        );
    }
    assert_eq!(fake.double_captures(), 0);
    let per_order = fake.captured_per_order();
    assert_eq!(per_order.len(), orders);
    assert!(per_order.values().all(|n| *n == 1), "{per_order:?}");
    for n in 0..orders {
        assert_eq!(fake.intents_of(&format!("ord_{n}")).len(), 1, "one intent per order");
    }
    // The faults did happen: more calls than orders, and some answers were replays.
    assert!(fake.calls(Endpoint::Capture) > orders as u64, "no capture was retried");
    assert!(fake.replays() > 0);
}

#[tokio::test]
async fn a_signed_notification_from_the_fake_verifies_and_parses() {
    let fake = FakeStripe::start().await;
    let mut svc = fake_provider(&fake);
    let Ok(ProviderResponse::Payment { intent, .. }) = call(&mut svc, authorise("ord_9", 1)).await else {
        panic!("authorise")
    };
    fake.confirm(&intent.0, BuyerOutcome::Approve).unwrap();
    let t = 1_800_000_000;
    let notification = fake.notification(&intent.0, "payment_intent.amount_capturable_updated", t);
    let (header, body) = signed_webhook(&notification, "whsec_fake", t);
    let verifier = WebhookVerifier::new(["whsec_fake"]).unwrap();
    let parsed = verifier
        .verify_notification(Some(&header), body.as_bytes(), t + 10)
        .expect("verifies");
    assert_eq!(
        parsed.kind,
        NotificationKind::AmountCapturableUpdated(IntentUpdate {
            intent,
            status: IntentStatus::Authorised,
            order_ref: Some("ord_9".into()),
            amount_minor: 1_000,
        })
    );
    let other = WebhookVerifier::new(["whsec_other"]).unwrap();
    assert!(other.verify(Some(&header), body.as_bytes(), t).is_err());
}
