//! Payments through the saga, over HTTP, against a fake Stripe on a real HTTP server
//! (`taquilla_payments::testing::FakeStripe`): the buyer's flow, signed webhooks (forged,
//! stale, duplicated, out of order), the reconciler, late authorisations (voided or
//! reinstated), the circuit breaker's `503`, and a chaos run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use taquilla_payments::resilience::{BreakerConfig, ResilienceConfig, RetryConfig};
use taquilla_payments::simulated::Rate;
use taquilla_payments::testing::fake_stripe::{BuyerOutcome, Endpoint, FakeStripe, Faults, signed_webhook};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);
const AUTHORISED: &str = "payment_intent.amount_capturable_updated";
const SUCCEEDED: &str = "payment_intent.succeeded";
const FAILED: &str = "payment_intent.payment_failed";

/// A payment's state in an order view.
fn payment_state(view: &Value) -> &str {
    view["payment"]["state"].as_str().unwrap_or("")
}

/// The PaymentIntent id in an order view.
fn intent_of(view: &Value) -> String {
    view["payment"]["payment_intent_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no payment intent in {view}"))
        .to_string()
}

/// A hold of `quantity` tickets checked out by `token`: the order id.
async fn order_of(app: &TestApp, token: &str, sale: &str, quantity: u32) -> String {
    let hold = app
        .place_hold(token, sale, &items(0, quantity), None)
        .await
        .expect_id(201);
    app.checkout(token, &hold, None).await.expect_id(201)
}

/// `Stripe-Signature` with one `v1` per secret (what Stripe sends while a secret rolls).
fn signature_with(secrets: &[&str], body: &Value, t: i64) -> String {
    let v1s: Vec<String> = secrets
        .iter()
        .map(|s| {
            let (header, _) = signed_webhook(body, s, t);
            header.split_once(",v1=").expect("t=…,v1=…").1.to_string()
        })
        .collect();
    format!("t={t},v1={}", v1s.join(",v1="))
}

#[tokio::test]
async fn a_stripe_payment_from_intent_to_capture_with_hostile_webhooks() {
    stripe_flow(Codes::default()).await;
}

/// `pay` creates one manual-capture PaymentIntent and answers `202` with its client secret;
/// webhooks that are not Stripe's are `400 invalid_signature` and change nothing; the genuine
/// one (signed with the next secret during a roll) makes the saga capture once; duplicates and
/// late deliveries change nothing; the admin's timeline has every step with its cause.
pub async fn stripe_flow(codes: Codes) {
    let fake = FakeStripe::start().await;
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &ResilienceConfig::default())
            .codes(&codes),
    )
    .await;
    let sale = app.simple_sale(5, json!({})).await;
    let ana = app.buyer_token("ana");
    let order = order_of(&app, &ana, &sale, 2).await;

    let r = app.pay_with(&ana, &order, "stripe").await;
    let pay_correlation = r.header("x-correlation-id").expect("correlation").to_string();
    let view = r.expect(202).clone();
    assert_eq!(
        (view["state"].as_str(), payment_state(&view)),
        (Some("payment_pending"), "awaiting_buyer")
    );
    let intent = intent_of(&view);
    assert_eq!(view["payment"]["client_secret"], format!("{intent}_secret_fake"));
    let at_stripe = fake.intent(&intent).expect("the intent at Stripe");
    assert_eq!(
        (
            at_stripe.amount,
            at_stripe.currency.as_str(),
            at_stripe.capture_method.as_str()
        ),
        (2000, "eur", "manual")
    );
    let namespace = app.payment_namespace();
    assert_eq!(at_stripe.order_ref, Some(format!("{order}@{namespace}")), "namespaced");
    // Paying again answers the same intent; nobody else sees the client secret.
    let again = app.pay_with(&ana, &order, "stripe").await;
    assert_eq!(intent_of(again.expect(202)), intent);
    assert_eq!(fake.intents_of(&order).len(), 1, "one intent per attempt");
    let admin_view = app.admin_order(&order).await.expect(200).clone();
    assert!(
        admin_view["order"]["payment"]["client_secret"].is_null(),
        "{admin_view}"
    );

    fake.confirm(&intent, BuyerOutcome::Approve)
        .expect("the buyer confirms");
    let now = app.now_secs();
    let note = fake.notification(&intent, AUTHORISED, now);
    let (good, body) = signed_webhook(&note, WEBHOOK_SECRETS[0], now);
    let (forged, _) = signed_webhook(&note, "whsec_not_ours", now);
    let (stale, _) = signed_webhook(&note, WEBHOOK_SECRETS[0], now - 301);
    let other_body = fake.notification(&intent, SUCCEEDED, now).to_string();
    for (signature, body) in [
        (None, body.as_str()),
        (Some(forged.as_str()), body.as_str()),
        (Some(stale.as_str()), body.as_str()),
        (Some(good.as_str()), other_body.as_str()),
        (Some("nonsense"), body.as_str()),
        (Some("t=1,v1=zz"), body.as_str()),
    ] {
        app.stripe_webhook(signature, body)
            .await
            .expect_error(400, "invalid_signature");
    }
    let unchanged = app.get_order(&ana, &order).await.expect(200).clone();
    assert_eq!(
        payment_state(&unchanged),
        "awaiting_buyer",
        "a rejected webhook changes nothing"
    );
    assert_eq!(fake.calls(Endpoint::Capture), 0);

    // Genuine, but about another deployment's order of the same id (staging sharing the
    // account, or a data directory started afresh): acknowledged, ignored.
    let mut elsewhere = note.clone();
    elsewhere["id"] = json!("evt_other_deployment");
    elsewhere["data"]["object"]["metadata"]["order_id"] = json!(format!("{order}@0000000000000000"));
    app.deliver(&elsewhere).await.expect(200);
    let unchanged = app.get_order(&ana, &order).await.expect(200).clone();
    assert_eq!(
        payment_state(&unchanged),
        "awaiting_buyer",
        "another deployment's order is not ours"
    );

    let rolled = signature_with(&["whsec_retired", WEBHOOK_SECRETS[1]], &note, now);
    app.stripe_webhook(Some(&rolled), &body).await.expect(200);
    let paid = app.order_until(&ana, &order, WAIT, |o| o["state"] == "paid").await;
    assert_eq!((payment_state(&paid), ticket_codes(&paid).len()), ("captured", 2));
    assert_eq!(fake.captures(&intent), 1);

    // Redelivered, delivered again under another event id, and the capture's own echo.
    app.stripe_webhook(Some(&good), &body).await.expect(200);
    app.deliver(&fake.notification(&intent, AUTHORISED, now))
        .await
        .expect(200);
    app.deliver(&fake.notification(&intent, SUCCEEDED, now))
        .await
        .expect(200);
    app.deliver(&fake.notification(&intent, FAILED, now)).await.expect(200);
    let after = app.get_order(&ana, &order).await.expect(200).clone();
    assert_eq!(
        (after["state"].as_str(), payment_state(&after)),
        (Some("paid"), "captured")
    );
    assert_eq!(ticket_codes(&after), ticket_codes(&paid));
    assert_eq!((fake.captures(&intent), fake.calls(Endpoint::Capture)), (1, 1));

    let timeline = app.admin_order(&order).await.expect(200).clone();
    let steps: Vec<(String, String)> = timeline["payments"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap_or("").to_string(),
                s["correlation_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let oref = format!("ord_{}", order.trim_start_matches("ord_"));
    assert_eq!(
        steps,
        [
            ("requested".to_string(), pay_correlation),
            ("awaiting_buyer".to_string(), format!("saga:{oref}:authorise")),
            (
                "authorised".to_string(),
                format!("stripe:{}", note["id"].as_str().unwrap())
            ),
            ("captured".to_string(), format!("saga:{oref}:capture")),
        ],
        "{timeline}"
    );
    assert!(
        timeline["payments"][0]["steps"][0]["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

#[tokio::test]
async fn the_reconciler_asks_stripe_when_no_webhook_comes() {
    let fake = FakeStripe::start().await;
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &ResilienceConfig::default())
            .reconcile_after(Duration::from_millis(300)),
    )
    .await;
    let sale = app.simple_sale(5, json!({})).await;
    let (ana, bob) = (app.buyer_token("ana"), app.buyer_token("bob"));
    let ana_order = order_of(&app, &ana, &sale, 1).await;
    let bob_order = order_of(&app, &bob, &sale, 1).await;
    let ana_intent = intent_of(app.pay_with(&ana, &ana_order, "stripe").await.expect(202));
    let bob_intent = intent_of(app.pay_with(&bob, &bob_order, "stripe").await.expect(202));
    fake.confirm(&ana_intent, BuyerOutcome::Approve).unwrap();
    fake.confirm(&bob_intent, BuyerOutcome::Decline("insufficient_funds".into()))
        .unwrap();

    let paid = app.order_until(&ana, &ana_order, WAIT, |o| o["state"] == "paid").await;
    assert_eq!(payment_state(&paid), "captured");
    let declined = app
        .order_until(&bob, &bob_order, WAIT, |o| payment_state(o) == "declined")
        .await;
    assert_eq!(declined["state"], "awaiting_payment", "the buyer may try again");
    assert!(
        declined["payment"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("insufficient_funds")),
        "{declined}"
    );
    assert!(fake.calls(Endpoint::Retrieve) >= 2, "found by asking, not by a webhook");

    // A second attempt is a new intent (a new idempotency key), paid this time.
    let retry = app.pay_with(&bob, &bob_order, "stripe").await;
    let second = intent_of(retry.expect(202));
    assert_ne!(second, bob_intent);
    assert_eq!(retry.json["payment"]["attempt"], 2);
    fake.confirm(&second, BuyerOutcome::Approve).unwrap();
    app.order_until(&bob, &bob_order, WAIT, |o| o["state"] == "paid").await;
    assert_eq!(
        fake.captured_per_order(),
        BTreeMap::from([(ana_order, 1), (bob_order, 1)])
    );
    assert_eq!(fake.double_captures(), 0);
}

/// An app on a manual clock whose fake Stripe cannot cancel for now, with Ana's order (the
/// sale's only ticket, 60 s to pay) confirmed at Stripe but not reported yet, then expired.
async fn expired_while_authorised() -> (FakeStripe, TestApp, String, String, String) {
    let fake = FakeStripe::start().await;
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &ResilienceConfig::default())
            .manual_clock(),
    )
    .await;
    let sale = app.simple_sale(1, json!({"hold_ttl_secs": 60})).await;
    let ana = app.buyer_token("ana");
    let order = order_of(&app, &ana, &sale, 1).await;
    let intent = intent_of(app.pay_with(&ana, &order, "stripe").await.expect(202));
    fake.confirm(&intent, BuyerOutcome::Approve).unwrap();
    fake.set_faults(Faults {
        outage: [Endpoint::Cancel].into(),
        ..Faults::default()
    });
    app.advance(Duration::from_secs(61));
    app.tick().await;
    let expired = app.get_order(&ana, &order).await.expect(200).clone();
    assert_eq!(
        (expired["state"].as_str(), payment_state(&expired)),
        (Some("expired"), "void_required")
    );
    assert_eq!(app.available(&sale).await, [1], "the ticket is back on sale");
    (fake, app, sale, order, intent)
}

#[tokio::test]
async fn an_authorisation_after_the_tickets_went_to_someone_else_is_voided_not_paid() {
    let (fake, app, sale, order, intent) = expired_while_authorised().await;
    let bob = app.buyer_token("bob");
    app.place_hold(&bob, &sale, &items(0, 1), None).await.expect(201);
    app.deliver(&fake.notification(&intent, AUTHORISED, app.now_secs()))
        .await
        .expect(200);
    fake.set_faults(Faults::default());
    let ana = app.buyer_token("ana");
    let voided = app
        .order_until(&ana, &order, WAIT, |o| payment_state(o) == "voided")
        .await;
    assert_eq!(voided["state"], "expired");
    assert_eq!(fake.intent(&intent).map(|i| i.status), Some("canceled".to_string()));
    // The authorisation delivered again after the void: nothing.
    app.deliver(&fake.notification(&intent, AUTHORISED, app.now_secs()))
        .await
        .expect(200);
    let after = app.get_order(&ana, &order).await.expect(200).clone();
    assert_eq!(
        (after["state"].as_str(), payment_state(&after)),
        (Some("expired"), "voided")
    );
    assert_eq!((fake.captures(&intent), fake.calls(Endpoint::Capture)), (0, 0));
    assert_eq!(app.stats(&sale).await["sold"], 0);
}

#[tokio::test]
async fn an_authorisation_after_expiry_takes_back_free_tickets_and_is_captured() {
    let (fake, app, sale, order, intent) = expired_while_authorised().await;
    app.deliver(&fake.notification(&intent, AUTHORISED, app.now_secs()))
        .await
        .expect(200);
    let ana = app.buyer_token("ana");
    let paid = app.order_until(&ana, &order, WAIT, |o| o["state"] == "paid").await;
    assert_eq!((payment_state(&paid), ticket_codes(&paid).len()), ("captured", 1));
    assert_eq!(fake.captures(&intent), 1);
    assert_eq!(app.available(&sale).await, [0]);
    let feed = app.feed().await;
    assert!(
        feed.iter()
            .any(|e| e["type"] == "payment_authorised" && e["data"]["reinstated"] == true),
        "the feed says the order was reinstated"
    );
    fake.set_faults(Faults::default());
}

/// A resilience stack whose breaker opens at the first failure, for `cool_down`.
fn touchy_breaker(cool_down: Duration) -> ResilienceConfig {
    ResilienceConfig {
        deadline: Duration::from_millis(500),
        retry: RetryConfig {
            retries: 0,
            ..RetryConfig::default()
        },
        breaker: BreakerConfig {
            failures: 1,
            calls_min: 1,
            cool_down,
            ..BreakerConfig::default()
        },
    }
}

#[tokio::test]
async fn an_open_circuit_answers_503_and_holds_keep_selling() {
    provider_outage(Codes::default()).await;
}

/// Stripe cannot create payments: the first attempt stays `requested` (202) and opens the
/// breaker; new payments then answer `503 payment_unavailable` with `Retry-After` while holds
/// and checkouts go on; once Stripe is back, the half-open probe closes the circuit and the
/// waiting attempt goes through.
pub async fn provider_outage(codes: Codes) {
    let fake = FakeStripe::start().await;
    fake.set_faults(Faults {
        outage: [Endpoint::CreateIntent].into(),
        ..Faults::default()
    });
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &touchy_breaker(Duration::from_secs(2)))
            .codes(&codes),
    )
    .await;
    let sale = app.simple_sale(5, json!({})).await;
    let (ana, bob) = (app.buyer_token("ana"), app.buyer_token("bob"));
    let ana_order = order_of(&app, &ana, &sale, 1).await;
    let bob_order = order_of(&app, &bob, &sale, 1).await;
    let first = app.pay_waiting(&ana, &ana_order, "stripe", 0).await;
    assert_eq!(payment_state(first.expect(202)), "requested");

    let give_up = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        let r = app.pay_waiting(&bob, &bob_order, "stripe", 0).await;
        if r.status == 503 {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the breaker never opened: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    refused.expect_error(503, "payment_unavailable");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let cleo = app.buyer_token("cleo");
    order_of(&app, &cleo, &sale, 1).await;
    app.pay(&cleo, &order_of(&app, &cleo, &sale, 1).await).await.expect(200);

    fake.set_faults(Faults::default());
    let created = app
        .order_until(&ana, &ana_order, WAIT, |o| payment_state(o) == "awaiting_buyer")
        .await;
    assert_eq!(fake.intents_of(&ana_order).len(), 1);
    assert_eq!(intent_of(&created), fake.intents_of(&ana_order)[0].id);
}

#[tokio::test]
async fn chaos_every_order_ends_and_nothing_is_charged_twice() {
    let fake = Arc::new(
        FakeStripe::start_with(
            taquilla_payments::testing::fake_stripe::FAKE_SECRET_KEY,
            Faults {
                server_errors: Rate::from_percent(30.0).unwrap(),
                timeouts: Rate::from_percent(10.0).unwrap(),
                timeout_delay: Duration::from_secs(2),
                seed: 7,
                ..Faults::default()
            },
        )
        .await,
    );
    let resilience = ResilienceConfig {
        deadline: Duration::from_secs(1),
        retry: RetryConfig {
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(200),
            ..RetryConfig::default()
        },
        breaker: BreakerConfig {
            cool_down: Duration::from_secs(1),
            ..BreakerConfig::default()
        },
    };
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &resilience)
            .reconcile_after(Duration::from_secs(1)),
    )
    .await;
    const CAPACITY: u32 = 12;
    const BUYERS: usize = 20;
    let sale = app.simple_sale(CAPACITY, json!({"hold_ttl_secs": 8})).await;
    let tasks: Vec<_> = (0..BUYERS)
        .map(|i| {
            let (app, fake) = ((*app).clone(), fake.clone());
            let sale = sale.clone();
            tokio::spawn(async move { chaos_buyer(&app, &fake, &sale, i).await })
        })
        .collect();
    let mut orders = Vec::new();
    for t in tasks {
        orders.extend(t.await.expect("buyer task"));
    }
    assert!(
        orders.len() >= CAPACITY as usize,
        "every ticket was ordered: {}",
        orders.len()
    );

    let mut paid = 0;
    let mut ends = BTreeMap::new();
    let mut captured = BTreeMap::new();
    for (token, order) in &orders {
        let view = app
            .order_until(token, order, Duration::from_secs(60), |o| {
                ["paid", "expired", "cancelled", "refunded", "payment_failed"]
                    .contains(&o["state"].as_str().unwrap_or(""))
                    && ["captured", "voided", "declined", "failed"].contains(&payment_state(o))
            })
            .await;
        *ends
            .entry(view["state"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
        if view["state"] == "paid" {
            paid += 1;
            captured.insert(order.clone(), 1);
            assert_eq!(
                fake.intent(&intent_of(&view)).map(|i| i.status),
                Some("succeeded".into())
            );
        }
    }
    eprintln!(
        "chaos: orders by end {ends:?}; calls: create {}, capture {}, cancel {}, retrieve {}; replays {}",
        fake.calls(Endpoint::CreateIntent),
        fake.calls(Endpoint::Capture),
        fake.calls(Endpoint::Cancel),
        fake.calls(Endpoint::Retrieve),
        fake.replays()
    );
    for end in ["paid", "expired", "cancelled"] {
        assert!(ends.contains_key(end), "no order ended {end}: {ends:?}");
    }
    let intents: usize = orders.iter().map(|o| fake.intents_of(&o.1).len()).sum();
    assert!(
        fake.calls(Endpoint::CreateIntent) > intents as u64 && fake.replays() > 0,
        "the faults made the saga retry under the same keys"
    );
    assert_eq!(fake.double_captures(), 0, "no order or intent captured twice");
    assert_eq!(
        fake.captured_per_order(),
        captured,
        "every capture is exactly one paid order"
    );
    let stats = app.stats(&sale).await;
    assert_eq!(stats["sold"], paid as u64, "{stats}");
    assert!(paid <= CAPACITY as usize);
    for o in &orders {
        for i in fake.intents_of(&o.1) {
            assert_ne!(i.status, "requires_capture", "no authorisation left hanging: {i:?}");
        }
    }
}

/// One chaos buyer: holds a ticket, pays with Stripe (waiting out the breaker), then — by its
/// number — approves with webhooks duplicated and reordered, approves and stays silent (the
/// reconciler finds it), is declined and cancels, or walks away (the order expires). Returns
/// its order, if it got one.
async fn chaos_buyer(app: &Api, fake: &FakeStripe, sale: &str, i: usize) -> Option<(String, String)> {
    let token = app.buyer_token(&format!("buyer{i}"));
    let hold = app.place_hold(&token, sale, &items(0, 1), None).await;
    if hold.status == 409 {
        return None;
    }
    let hold = hold.expect_id(201);
    let order = app.checkout(&token, &hold, None).await.expect_id(201);
    let intent = loop {
        let r = app.pay_waiting(&token, &order, "stripe", 5).await;
        match r.status {
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            202 | 200 => match r.json["payment"]["payment_intent_id"].as_str() {
                Some(intent) => break intent.to_string(),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ => panic!("pay: {} {}", r.status, r.text),
        }
    };
    match i % 4 {
        0 => {
            // A first card declined, a second approved: Stripe's two notifications arrive in
            // the wrong order, the second twice, and a stale copy is refused.
            fake.confirm(&intent, BuyerOutcome::Decline("card_declined".into()))
                .unwrap();
            let declined = fake.notification(&intent, FAILED, app.now_secs());
            fake.confirm(&intent, BuyerOutcome::Approve).unwrap();
            let note = fake.notification(&intent, AUTHORISED, app.now_secs());
            let (sig, body) = signed_webhook(&note, WEBHOOK_SECRETS[0], app.now_secs());
            let (stale, _) = signed_webhook(&note, WEBHOOK_SECRETS[0], app.now_secs() - 400);
            app.stripe_webhook(Some(&stale), &body)
                .await
                .expect_error(400, "invalid_signature");
            for _ in 0..2 {
                app.stripe_webhook(Some(&sig), &body).await.expect(200);
            }
            app.deliver(&declined).await.expect(200);
        }
        1 => fake.confirm(&intent, BuyerOutcome::Approve).unwrap(),
        2 => {
            fake.confirm(&intent, BuyerOutcome::Decline("card_declined".into()))
                .unwrap();
            app.deliver(&fake.notification(&intent, FAILED, app.now_secs()))
                .await
                .expect(200);
            app.order_until(&token, &order, WAIT, |o| o["state"] == "awaiting_payment")
                .await;
            app.buyer_cancel(&token, &order).await.expect(200);
        }
        _ => {}
    }
    Some((token, order))
}

#[tokio::test]
async fn refunds_by_ticket_and_in_full_go_back_through_stripe() {
    let fake = FakeStripe::start().await;
    let app = spawn_app(
        AppOptions::default()
            .metrics()
            .stripe(&fake, &ResilienceConfig::default()),
    )
    .await;
    let sale = app.simple_sale(5, json!({})).await;
    let ana = app.buyer_token("ana");
    let order = order_of(&app, &ana, &sale, 3).await;
    let intent = intent_of(app.pay_with(&ana, &order, "stripe").await.expect(202));
    fake.confirm(&intent, BuyerOutcome::Approve).unwrap();
    app.deliver(&fake.notification(&intent, AUTHORISED, app.now_secs()))
        .await
        .expect(200);
    let paid = app.order_until(&ana, &order, WAIT, |o| o["state"] == "paid").await;
    let codes = ticket_codes(&paid);

    let refunded_at_stripe = |n: i64| fake.intent(&intent).is_some_and(|i| i.amount_refunded == n);
    app.refund(&order, Some(&[codes[0].as_str()])).await.expect(200);
    let one = app
        .order_until(&ana, &order, WAIT, |o| o["refunded_minor"] == 1000)
        .await;
    assert_eq!(one["state"], "paid", "two tickets remain");
    let timeline = wait_admin(&app, &order, |v| v["refunds"][0]["state"] == "issued").await;
    let first = &timeline["refunds"][0];
    assert_eq!(
        (first["amount_minor"].as_i64(), first["attempt"].as_u64()),
        (Some(1000), Some(1))
    );
    assert!(
        first["provider_ref"].as_str().is_some_and(|r| r.starts_with("re_")),
        "{first}"
    );
    assert!(refunded_at_stripe(1000));

    app.refund(&order, None).await.expect(200);
    let all = wait_admin(&app, &order, |v| v["refunds"][1]["state"] == "issued").await;
    assert_eq!(all["order"]["state"], "refunded");
    assert_eq!(all["refunds"][1]["amount_minor"], 2000);
    assert!(refunded_at_stripe(3000), "the whole payment went back");
    assert_eq!(app.available(&sale).await, [5]);

    let metrics = app.metrics().await.text;
    for family in [
        "taquilla_payment_calls_total{",
        "taquilla_payment_breaker_state{",
        "taquilla_saga_steps_total{",
        "taquilla_saga_pending",
        "taquilla_saga_oldest_pending_seconds",
    ] {
        assert!(metrics.contains(family), "no {family} in /metrics");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("taquilla_payment_calls_total{")
            && l.contains("provider=\"stripe\"")
            && l.contains("operation=\"refund\"")),
        "refund calls counted per provider"
    );
}

/// Reads the admin's order view until `done` says so.
async fn wait_admin(app: &TestApp, order: &str, done: impl Fn(&Value) -> bool) -> Value {
    let give_up = tokio::time::Instant::now() + WAIT;
    loop {
        let view = app.admin_order(order).await.expect(200).clone();
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "not there after {WAIT:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_offline_payment_keeps_the_tickets_until_confirmed_or_its_own_deadline() {
    let app = spawn_app(AppOptions::default().test_payments().manual_clock()).await;
    let sale = app
        .simple_sale(4, json!({"hold_ttl_secs": 60, "offline_payment_ttl_secs": 3 * 86_400}))
        .await;
    let (ana, bob) = (app.buyer_token("ana"), app.buyer_token("bob"));
    let ana_order = order_of(&app, &ana, &sale, 2).await;
    let bob_order = order_of(&app, &bob, &sale, 2).await;
    for (token, order) in [(&ana, &ana_order), (&bob, &bob_order)] {
        let r = app.pay_with(token, order, "offline").await;
        let view = r.expect(202);
        assert_eq!(
            (view["state"].as_str(), payment_state(view)),
            (Some("awaiting_payment"), "awaiting_offline")
        );
    }
    // Past the hold's minute, the offline deadline (3 days) counts.
    app.advance(Duration::from_secs(3600));
    app.tick().await;
    let bob = app.buyer_token("bob");
    assert_eq!(
        app.get_order(&bob, &bob_order).await.expect(200)["state"],
        "awaiting_payment"
    );
    let paid = app.confirm_payment(&ana_order, "bank-transfer-77").await;
    assert_eq!(
        (paid.expect(200)["state"].as_str(), ticket_codes(&paid.json).len()),
        (Some("paid"), 2)
    );

    app.advance(Duration::from_secs(3 * 86_400));
    app.tick().await;
    let (ana, bob) = (app.buyer_token("ana"), app.buyer_token("bob"));
    let expired = app.get_order(&bob, &bob_order).await.expect(200).clone();
    assert_eq!(
        (expired["state"].as_str(), payment_state(&expired)),
        (Some("expired"), "voided")
    );
    assert_eq!(
        app.available(&sale).await,
        [2],
        "Bob's tickets are back; Ana's are sold"
    );

    // A sale without offline payments refuses them.
    let plain = app.simple_sale(4, json!({})).await;
    let order = order_of(&app, &ana, &plain, 1).await;
    let r = app.pay_with(&ana, &order, "offline").await;
    assert_eq!(
        r.expect_error(409, "conflict")["details"]["reason"],
        "payment_method_not_offered"
    );
}

#[tokio::test]
async fn a_free_order_is_paid_at_checkout_without_a_provider() {
    // No payment method at all on this server.
    let app = spawn_app(AppOptions::default()).await;
    let sale = app
        .create_sale(&json!({
            "event": {"name": "Free talk", "currency": "EUR"},
            "ticket_types": [{"name": "Seat", "price_minor": 0}],
            "quotas": [{"name": "Room", "capacity": 3, "ticket_type_ids": [0]}],
        }))
        .await;
    let ana = app.buyer_token("ana");
    let hold = app.place_hold(&ana, &sale, &items(0, 2), None).await.expect_id(201);
    let order = app.checkout(&ana, &hold, None).await;
    let order = order.expect(201).clone();
    assert_eq!(
        (order["state"].as_str(), order["total_minor"].as_i64()),
        (Some("paid"), Some(0))
    );
    assert_eq!(ticket_codes(&order).len(), 2);
    assert!(order["payment"].is_null(), "no payment: {order}");
    assert_eq!(app.stats(&sale).await["sold"], 2);
}

#[tokio::test]
async fn a_webhook_has_a_body_limit_of_its_own() {
    let fake = FakeStripe::start().await;
    let app = spawn_app(
        AppOptions::default()
            .stripe(&fake, &ResilienceConfig::default())
            .body_limit_bytes(1024),
    )
    .await;
    let sale = app.simple_sale(5, json!({})).await;
    let ana = app.buyer_token("ana");
    let order = order_of(&app, &ana, &sale, 1).await;
    let intent = intent_of(app.pay_with(&ana, &order, "stripe").await.expect(202));
    fake.confirm(&intent, BuyerOutcome::Approve).unwrap();
    // Far over the API's 1 KiB, as a real event with metadata can be: taken.
    let mut note = fake.notification(&intent, AUTHORISED, app.now_secs());
    note["data"]["object"]["metadata"]["notes"] = json!("n".repeat(20_000));
    app.deliver(&note).await.expect(200);
    app.order_until(&ana, &order, WAIT, |o| o["state"] == "paid").await;
    // Over the webhook limit: refused before anything is read into memory.
    note["data"]["object"]["metadata"]["notes"] = json!("n".repeat(300_000));
    app.deliver(&note).await.expect_error(413, "payload_too_large");
}

#[tokio::test]
async fn a_capture_whose_key_answers_a_saved_500_goes_through_under_a_fresh_key() {
    let fake = FakeStripe::start().await;
    let app = spawn_app(AppOptions::default().stripe(&fake, &ResilienceConfig::default())).await;
    let sale = app.simple_sale(5, json!({})).await;
    let ana = app.buyer_token("ana");
    let order = order_of(&app, &ana, &sale, 1).await;
    let intent = intent_of(app.pay_with(&ana, &order, "stripe").await.expect(202));
    fake.confirm(&intent, BuyerOutcome::Approve).unwrap();
    // Stripe fails the capture and saves the 500 under its key, as it does once an endpoint
    // began executing: that key will answer 500 for 24 h, whatever is sent.
    fake.set_faults(Faults {
        saved_failures: [Endpoint::Capture].into(),
        ..Faults::default()
    });
    app.deliver(&fake.notification(&intent, AUTHORISED, app.now_secs()))
        .await
        .expect(200);
    let give_up = tokio::time::Instant::now() + WAIT;
    while fake.calls(Endpoint::Capture) == 0 {
        assert!(tokio::time::Instant::now() < give_up, "no capture was tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.set_faults(Faults::default());
    // The status shows the money still reserved: the saga captures under a fresh key.
    let paid = app.order_until(&ana, &order, WAIT, |o| o["state"] == "paid").await;
    assert_eq!(payment_state(&paid), "captured");
    assert_eq!(fake.captures(&intent), 1);
    assert!(fake.calls(Endpoint::Retrieve) >= 1, "it asked before sending again");
}
