//! The whole buyer journey over HTTP, plus what the rest of the suite relies on: ownership,
//! idempotent retries, expiry on (simulated) time, and ETag/304 on the sale page.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// Event with two ticket types over two overlapping quotas and a per-buyer limit.
fn festival() -> Value {
    json!({
        "event": {"name": "Festival", "currency": "EUR", "max_tickets_per_buyer": 4},
        "ticket_types": [
            {"name": "General", "price_minor": 3500, "max_per_order": 4},
            {"name": "VIP", "price_minor": 12000}
        ],
        "quotas": [
            {"name": "Venue", "capacity": 10, "ticket_type_ids": [0, 1]},
            {"name": "VIP area", "capacity": 3, "ticket_type_ids": [1]}
        ],
    })
}

#[tokio::test]
async fn whole_flow_from_sale_to_check_in_with_correlation_ids_in_the_feed() {
    whole_flow(Codes::default()).await;
}

pub async fn whole_flow(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().codes(&codes)).await;
    let corr = |id: &str| app.with_header("x-correlation-id", id);

    // The organiser builds the sale, step by step, each request with its own correlation id.
    let ev = corr("flow-create").create_event(&festival()["event"]).await;
    assert_eq!(ev.header("x-correlation-id"), Some("flow-create"), "given id echoed");
    let ev = ev.expect(201).clone();
    let id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(
        (ev["status"].as_str(), ev["currency"].as_str()),
        (Some("draft"), Some("EUR"))
    );
    assert_eq!(ev["max_tickets_per_buyer"], 4);
    for (i, tt) in festival()["ticket_types"].as_array().unwrap().iter().enumerate() {
        let r = app.create_ticket_type(&id, tt).await;
        assert_eq!(r.expect(201)["id"], i);
    }
    for (i, q) in festival()["quotas"].as_array().unwrap().iter().enumerate() {
        let r = app.create_quota(&id, q).await;
        let q = r.expect(201);
        assert_eq!(
            (q["id"].as_u64(), q["available"].as_u64()),
            (Some(i as u64), q["capacity"].as_u64())
        );
    }
    let opened = app.open(&id).await;
    assert_eq!(opened.expect(200)["status"], "open");
    assert_eq!(app.available(&id).await, [10, 3], "VIP is capped by its own quota");
    let listed = app.list_sales().await;
    assert!(
        listed.expect(200)["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );

    // The buyer holds, checks out and pays.
    let ana = app.buyer_token("ana");
    let items = json!({"items": [{"ticket_type_id": 0, "quantity": 2}, {"ticket_type_id": 1, "quantity": 1}]});
    let hold = corr("flow-hold").place_hold(&ana, &id, &items, None).await;
    assert_eq!(hold.header("x-correlation-id"), Some("flow-hold"));
    let hold = hold.expect(201).clone();
    let hold_id = hold["id"].as_str().unwrap().to_string();
    assert_eq!(hold["state"], "active");
    assert_eq!(
        (hold["total_minor"].as_i64(), hold["currency"].as_str()),
        (Some(2 * 3500 + 12000), Some("EUR"))
    );
    assert_eq!(quantity(&hold), 3);
    assert!(
        hold["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "RFC 3339 UTC"
    );
    assert_eq!(app.available(&id).await, [7, 2]);

    let order = corr("flow-checkout").checkout(&ana, &hold_id, None).await;
    let order = order.expect(201).clone();
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(
        (order["state"].as_str(), order["hold_id"].as_str()),
        (Some("awaiting_payment"), Some(hold_id.as_str()))
    );
    assert!(
        order["tickets"].as_array().unwrap().is_empty(),
        "no tickets before payment"
    );
    assert_eq!(order["total_minor"], hold["total_minor"]);

    let paid = corr("flow-pay").pay(&ana, &order_id).await;
    assert_eq!(paid.expect(200)["state"], "paid");
    let order = app.get_order(&ana, &order_id).await;
    let order = order.expect(200).clone();
    assert_eq!(order["state"], "paid");
    assert!(order["paid_at"].is_string());
    let tickets = order["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 3, "one ticket per unit");
    let mut by_type = tickets
        .iter()
        .map(|t| t["ticket_type_id"].as_u64().unwrap())
        .collect::<Vec<_>>();
    by_type.sort();
    assert_eq!(by_type, [0, 0, 1]);
    let codes: Vec<&str> = tickets.iter().map(|t| t["code"].as_str().unwrap()).collect();
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 26 && tickets.iter().all(|t| t["state"] == "valid"))
    );
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 3, "distinct codes");
    // The hold ended on checkout: the order carries it on.
    app.get_hold(&ana, &hold_id).await.expect_error(410, "hold_ended");
    assert_eq!(
        app.get_order(&ana, &order_id).await.expect(200)["hold_id"],
        hold_id.as_str()
    );

    // At the door: first scan admits, the second names the first time.
    let first = corr("flow-checkin").checkin(&id, codes[0]).await;
    let first = first.expect(200).clone();
    assert_eq!(
        (first["ticket_code"].as_str(), first["order_id"].as_str()),
        (Some(codes[0]), Some(order_id.as_str()))
    );
    let at = first["checked_in_at"].as_str().expect("checked_in_at").to_string();
    let again = app.checkin(&id, codes[0]).await;
    let err = again.expect_error(409, "already_checked_in");
    assert_eq!(err["details"]["checked_in_at"].as_str(), Some(at.as_str()));
    let order = app.get_order(&ana, &order_id).await;
    let t0 = order.expect(200)["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == codes[0])
        .cloned()
        .unwrap();
    assert_eq!(
        (t0["state"].as_str(), t0["checked_in_at"].as_str()),
        (Some("checked_in"), Some(at.as_str()))
    );

    // Stats reflect all of it.
    let st = app.stats(&id).await;
    assert_eq!(
        (st["capacity"].as_u64(), st["held"].as_u64(), st["sold"].as_u64()),
        (Some(13), Some(0), Some(3))
    );
    assert_eq!(
        (st["tickets_valid"].as_u64(), st["tickets_checked_in"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        (st["holds"]["converted"].as_u64(), st["holds"]["active"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(st["orders"]["paid"], 1);
    let quotas: Vec<(u64, u64)> = st["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["sold"].as_u64().unwrap(), q["available"].as_u64().unwrap()))
        .collect();
    assert_eq!(quotas, [(3, 7), (1, 2)]);
    let types: Vec<(u64, u64)> = st["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["sold"].as_u64().unwrap(), t["available"].as_u64().unwrap()))
        .collect();
    assert_eq!(types, [(2, 7), (1, 2)]);

    // The feed: every event in order, each carrying its request's correlation id.
    let feed = app.feed().await;
    let kinds: Vec<(&str, Option<&str>)> = feed
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["correlation_id"].as_str()))
        .collect();
    assert_eq!(kinds[0], ("sale_created", Some("flow-create")));
    let tail: Vec<_> = kinds.iter().skip(1).map(|(k, _)| *k).collect();
    assert_eq!(
        tail,
        [
            "ticket_type_added",
            "ticket_type_added",
            "quota_added",
            "quota_added",
            "sale_status_changed",
            "hold_placed",
            "order_placed",
            "payment_requested",
            "payment_created",
            "payment_authorised",
            "payment_captured",
            "order_paid",
            "ticket_checked_in",
        ]
    );
    let of = |kind: &str| feed.iter().find(|e| e["type"] == kind).unwrap();
    assert_eq!(of("hold_placed")["correlation_id"], "flow-hold");
    assert_eq!(of("hold_placed")["data"]["hold_id"], hold_id.as_str());
    assert_eq!(of("hold_placed")["data"]["buyer_id"], "ana");
    assert_eq!(of("order_placed")["correlation_id"], "flow-checkout");
    // The buyer's request starts the payment; the saga's steps carry their own ids.
    assert_eq!(of("payment_requested")["correlation_id"], "flow-pay");
    assert_eq!(
        of("payment_authorised")["correlation_id"],
        format!("saga:{order_id}:authorise")
    );
    assert_eq!(of("order_paid")["correlation_id"], format!("saga:{order_id}:capture"));
    assert_eq!(of("order_paid")["data"]["tickets"].as_array().unwrap().len(), 3);
    assert_eq!(of("ticket_checked_in")["correlation_id"], "flow-checkin");
    // Requests without an id got a generated one, carried into their events too.
    let generated = of("quota_added")["correlation_id"]
        .as_str()
        .expect("generated id in the log");
    assert!(
        generated.len() == 24 && generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    assert!(feed.iter().all(|e| e["event_id"] == id.as_str()));
    let cursors: Vec<u64> = feed
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[0] <= w[1]),
        "cursors in order: {cursors:?}"
    );

    // Paging: a reader with a small page size sees the same sequence, and an exhausted
    // cursor answers an empty page with the cursor unchanged.
    let mut paged = Vec::new();
    let mut after = "0".to_string();
    loop {
        let r = app.feed_page(&after, 3).await;
        let page = r.expect(200).clone();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            assert_eq!(page["next_cursor"], after.as_str());
            break;
        }
        paged.extend(events.iter().cloned());
        after = page["next_cursor"].as_str().unwrap().to_string();
    }
    assert_eq!(paged, feed);
}

#[tokio::test]
async fn correlation_ids_are_echoed_given_or_generated() {
    correlation_ids(Codes::default()).await;
}

pub async fn correlation_ids(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    let given = app.with_header("x-correlation-id", "abc-123:x.y_z").healthz().await;
    assert_eq!(given.header("x-correlation-id"), Some("abc-123:x.y_z"));
    let generated = app.healthz().await;
    let a = generated.header("x-correlation-id").expect("generated id").to_string();
    let b = app.healthz().await.header("x-correlation-id").unwrap().to_string();
    assert!(a.len() == 24 && a != b, "fresh ids per request: {a} {b}");
    // An id we cannot carry safely (spaces, too long) is replaced, not echoed.
    for bad in ["has spaces", &"x".repeat(65), "a/b"] {
        let r = app.with_header("x-correlation-id", bad).get_sale("evt_999").await;
        r.expect_error(404, "not_found");
        assert_ne!(r.header("x-correlation-id"), Some(bad));
    }
    // On an error, the body carries the given id too.
    let r = app
        .send(
            reqwest::Method::GET,
            "/nope",
            None,
            None,
            &[("x-correlation-id", "trace-me")],
        )
        .await;
    assert_eq!(r.expect_error(404, "not_found")["correlation_id"], "trace-me");
}

#[tokio::test]
async fn a_buyer_sees_only_their_own_holds_and_orders() {
    ownership(Codes::default()).await;
}

pub async fn ownership(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().codes(&codes)).await;
    let id = app.simple_sale(10, json!({})).await;
    let (ana, bob) = (app.buyer_token("ana"), app.buyer_token("bob"));
    let hold_id = app.place_hold(&ana, &id, &items(0, 2), None).await.expect_id(201);

    // Bob gets exactly what a missing hold gives: 404, whatever he tries.
    app.get_hold(&bob, &hold_id).await.expect_error(404, "not_found");
    app.release_hold(&bob, &hold_id).await.expect_error(404, "not_found");
    app.checkout(&bob, &hold_id, None).await.expect_error(404, "not_found");
    // ... and none of it touched Ana's hold.
    assert_eq!(app.get_hold(&ana, &hold_id).await.expect(200)["state"], "active");

    let order_id = app.checkout(&ana, &hold_id, None).await.expect_id(201);
    app.get_order(&bob, &order_id).await.expect_error(404, "not_found");
    app.pay(&bob, &order_id).await.expect_error(404, "not_found");
    app.buyer_cancel(&bob, &order_id).await.expect_error(404, "not_found");
    let still = app.get_order(&ana, &order_id).await;
    assert_eq!(
        still.expect(200)["state"],
        "awaiting_payment",
        "Bob's attempts changed nothing"
    );
    // A missing order of the same shape answers the same.
    let missing = order_id.rsplit_once('_').map(|(p, _)| format!("{p}_999")).unwrap();
    app.get_order(&bob, &missing).await.expect_error(404, "not_found");

    // Ana can do all of it.
    app.pay(&ana, &order_id).await.expect(200);
    let st = app.stats(&id).await;
    assert_eq!((st["sold"].as_u64(), st["held"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn idempotent_retries_return_the_original_and_take_inventory_once() {
    idempotent_retries(Codes::default()).await;
}

pub async fn idempotent_retries(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    let id = app.simple_sale(20, json!({})).await;
    let ana = app.buyer_token("ana");
    let (two, three) = (items(0, 2), items(0, 3));
    let with_key = |key: &'static str, body: Value| {
        let (app, ana, id) = (&app, &ana, &id);
        async move { app.place_hold(ana, id, &body, Some(key)).await }
    };

    let first = with_key("k-1", two.clone()).await;
    let hold_id = first.expect_id(201);
    let retry = with_key("k-1", two.clone()).await;
    assert_eq!(
        retry.expect(201)["id"],
        hold_id.as_str(),
        "same key, same body: same hold"
    );
    // Concurrent retries (they can land in one batch) still make one hold.
    let retries = futures_util::future::join_all((0..16).map(|_| with_key("k-1", two.clone()))).await;
    for r in &retries {
        assert_eq!(r.expect(201)["id"], hold_id.as_str());
    }
    assert_eq!(app.stats(&id).await["held"], 2, "inventory taken once");
    let conflict = with_key("k-1", three.clone()).await;
    conflict.expect_error(409, "idempotency_conflict");

    // Keys are scoped per buyer: Bob's "k-1" is his own.
    let bob = app.buyer_token("bob");
    let bobs = app.place_hold(&bob, &id, &two, Some("k-1")).await;
    assert_ne!(bobs.expect(201)["id"], hold_id.as_str());
    // A fresh key, or no key, is a fresh hold.
    let other = with_key("k-2", two.clone()).await;
    let other_id = other.expect_id(201);
    assert_ne!(other_id, hold_id);
    assert_eq!(app.stats(&id).await["held"], 6);

    // Checkout: same key on the same hold returns the same order; on another hold it conflicts.
    let order_id = app.checkout(&ana, &hold_id, Some("c-1")).await.expect_id(201);
    let again = app.checkout(&ana, &hold_id, Some("c-1")).await;
    assert_eq!(again.expect(201)["id"], order_id.as_str());
    app.checkout(&ana, &other_id, Some("c-1"))
        .await
        .expect_error(409, "idempotency_conflict");
    // Without the key, a second checkout names a hold that ended on the first.
    let plain = app.checkout(&ana, &hold_id, None).await;
    plain.expect_error(410, "hold_ended");
    let st = app.stats(&id).await;
    assert_eq!(
        (st["orders"]["awaiting_payment"].as_u64(), st["held"].as_u64()),
        (Some(1), Some(6))
    );

    // A key we cannot store is refused up front.
    let long = "k".repeat(65);
    let r = app.place_hold(&ana, &id, &two, Some(&long)).await;
    r.expect_error(422, "invalid");
}

#[tokio::test]
async fn idempotency_keys_are_remembered_for_a_day_on_the_engines_clock() {
    idempotency_ttl(Codes::default()).await;
}

/// On a manual clock: a retry within the TTL (24 h by default) answers what the first command
/// did (here a hold that ended since); from the TTL on, the key is new.
pub async fn idempotency_ttl(codes: Codes) {
    let app = spawn_app(AppOptions::default().manual_clock().codes(&codes)).await;
    let id = app.simple_sale(20, json!({})).await;
    let ana = app.buyer_token_expiring("ana", app.now_secs() + 3 * 86_400);
    let (one, two) = (items(0, 1), items(0, 2));
    let hold_id = app.place_hold(&ana, &id, &one, Some("k")).await.expect_id(201);
    let retry = app.place_hold(&ana, &id, &one, Some("k")).await;
    assert_eq!(retry.expect(201)["id"], hold_id.as_str());
    app.release_hold(&ana, &hold_id).await.expect(200);

    app.advance(Duration::from_millis(86_400_000 - 1));
    // Still remembered: the original hold, which has ended; another body conflicts.
    let retry = app.place_hold(&ana, &id, &one, Some("k")).await;
    retry.expect_error(410, "hold_ended");
    let other = app.place_hold(&ana, &id, &two, Some("k")).await;
    other.expect_error(409, "idempotency_conflict");
    assert_eq!(app.stats(&id).await["holds"]["active"], 0, "no retry held anything");

    app.advance(Duration::from_millis(1));
    // A day after the first command: a new command under the same key.
    let fresh = app.place_hold(&ana, &id, &two, Some("k")).await.expect_id(201);
    assert_ne!(fresh, hold_id);
    let retry = app.place_hold(&ana, &id, &two, Some("k")).await;
    assert_eq!(retry.expect(201)["id"], fresh.as_str(), "and remembered again");
}

#[tokio::test]
async fn holds_and_unpaid_orders_expire_on_time() {
    expiry(Codes::default()).await;
}

/// On a manual clock: nothing expires a millisecond early, everything on the dot.
pub async fn expiry(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().manual_clock().codes(&codes)).await;
    let id = app.simple_sale(2, json!({"hold_ttl_secs": 1})).await;
    let ana = app.buyer_token("ana");
    let hold_id = app.place_hold(&ana, &id, &items(0, 2), None).await.expect_id(201);
    assert_eq!(app.available(&id).await, [0]);
    let bob = app.buyer_token("bob");
    let one = items(0, 1);
    app.place_hold(&bob, &id, &one, None)
        .await
        .expect_error(409, "sold_out");

    app.advance(Duration::from_millis(999));
    app.tick().await;
    assert_eq!(
        app.get_hold(&ana, &hold_id).await.expect(200)["state"],
        "active",
        "not a millisecond early"
    );
    app.advance(Duration::from_millis(1));
    app.tick().await;
    app.get_hold(&ana, &hold_id).await.expect_error(410, "hold_ended");
    assert_eq!(app.available(&id).await, [2], "inventory returned");
    let late = app.checkout(&ana, &hold_id, None).await;
    late.expect_error(410, "hold_ended");
    app.release_hold(&ana, &hold_id).await.expect_error(410, "hold_ended");
    let st = app.stats(&id).await;
    assert_eq!(
        (st["held"].as_u64(), st["holds"]["expired"].as_u64()),
        (Some(0), Some(1))
    );

    // An order left unpaid expires after the same window and gives its tickets back.
    let hold_id = app.place_hold(&bob, &id, &one, None).await.expect_id(201);
    let order_id = app.checkout(&bob, &hold_id, None).await.expect_id(201);
    app.advance(Duration::from_millis(1000));
    app.tick().await;
    assert_eq!(app.get_order(&bob, &order_id).await.expect(200)["state"], "expired");
    assert_eq!(app.available(&id).await, [2]);
    // The buyer cannot start paying an expired order; money the organiser received offline
    // for it is honoured while the inventory is still there.
    app.pay(&bob, &order_id).await.expect_error(409, "hold_expired");
    let paid = app.confirm_payment(&order_id, "bank-7").await;
    let paid = paid.expect(200);
    assert_eq!(
        (paid["state"].as_str(), paid["tickets"].as_array().map(Vec::len)),
        (Some("paid"), Some(1))
    );
    assert_eq!(app.available(&id).await, [1]);
}

#[tokio::test]
async fn the_sale_page_has_an_etag_and_answers_304() {
    let app = spawn_app(AppOptions::default()).await;
    let id = app.simple_sale(5, json!({})).await;
    let r = app.get_sale(&id).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let etag = r.header("etag").expect("ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        let r = app.get_sale_if_none_match(&id, &tag).await;
        assert_eq!(r.status, 304, "If-None-Match: {tag}");
        assert!(r.text.is_empty(), "304 has no body");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    }
    assert_eq!(app.get_sale_if_none_match(&id, "\"stale\"").await.status, 200);
    // Unchanged sale, unchanged ETag.
    assert_eq!(app.get_sale(&id).await.header("etag"), Some(etag.as_str()));

    // Availability changes: so does the ETag, and the old one no longer matches.
    app.place_hold(&app.buyer_token("ana"), &id, &items(0, 1), None)
        .await
        .expect(201);
    let r = app.get_sale_if_none_match(&id, &etag).await;
    assert_eq!(r.status, 200, "stale ETag must not match");
    let fresh = r.header("etag").expect("ETag");
    assert_ne!(fresh, etag);
    assert_eq!(available(&r.json), [4]);
    assert_eq!(app.get_sale_if_none_match(&id, fresh).await.status, 304);
}

#[tokio::test]
async fn buyer_tokens_from_the_api_authenticate_until_they_expire() {
    let app = spawn_app(AppOptions::default().manual_clock()).await;
    let id = app.simple_sale(5, json!({})).await;
    let issued = app.issue_buyer_token("ana", Some(60)).await;
    let issued = issued.expect(201).clone();
    assert_eq!(issued["buyer_id"], "ana");
    assert!(issued["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let token = issued["token"].as_str().expect("token").to_string();
    // The same token a back end would mint with signing key 0's secret.
    let ana = taquilla_domain::BuyerId::parse("ana").unwrap();
    let minted = taquilla_api::mint_buyer_token_with_kid(0, BUYER_SECRET.as_bytes(), &ana, app.now_secs() + 60);
    assert_eq!(token, minted);
    let hold = app.place_hold(&token, &id, &items(0, 1), None).await.expect_id(201);
    // It is Ana's hold: her own minted token reads it.
    app.get_hold(&app.buyer_token("ana"), &hold).await.expect(200);
    for ttl in [59, 2_592_001] {
        app.issue_buyer_token("ana", Some(ttl))
            .await
            .expect_error(422, "invalid");
    }

    app.advance(Duration::from_secs(59));
    app.get_hold(&token, &hold).await.expect(200);
    app.advance(Duration::from_secs(1));
    app.get_hold(&token, &hold).await.expect_error(401, "unauthorized");
}
