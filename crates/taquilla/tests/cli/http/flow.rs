//! The whole buyer journey over HTTP, plus what the rest of the suite relies on: ownership,
//! idempotent retries, expiry on time, and ETag/304 on the sale page.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

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

fn available(event: &Value) -> Vec<u64> {
    event["ticket_types"]
        .as_array()
        .expect("ticket_types")
        .iter()
        .map(|t| t["available"].as_u64().expect("available"))
        .collect()
}

#[tokio::test]
async fn whole_flow_from_sale_to_check_in_with_correlation_ids_in_the_feed() {
    let s = Server::start(&["--allow-test-payments"]).await;
    let corr = |id: &'static str| [("x-correlation-id", id)];

    // The organiser builds the sale, step by step, each request with its own correlation id.
    let ev = s
        .send(
            Method::POST,
            "/v1/admin/events",
            Some(ADMIN_TOKEN),
            Some(&festival()["event"]),
            &corr("flow-create"),
        )
        .await;
    assert_eq!(ev.header("x-correlation-id"), Some("flow-create"), "given id echoed");
    let ev = ev.expect(201).clone();
    let id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(
        (ev["status"].as_str(), ev["currency"].as_str()),
        (Some("draft"), Some("EUR"))
    );
    assert_eq!(ev["max_tickets_per_buyer"], 4);
    for (i, tt) in festival()["ticket_types"].as_array().unwrap().iter().enumerate() {
        let r = s
            .admin(Method::POST, &format!("/v1/admin/events/{id}/ticket-types"), Some(tt))
            .await;
        assert_eq!(r.expect(201)["id"], i);
    }
    for (i, q) in festival()["quotas"].as_array().unwrap().iter().enumerate() {
        let r = s
            .admin(Method::POST, &format!("/v1/admin/events/{id}/quotas"), Some(q))
            .await;
        let q = r.expect(201);
        assert_eq!(
            (q["id"].as_u64(), q["available"].as_u64()),
            (Some(i as u64), q["capacity"].as_u64())
        );
    }
    let opened = s
        .admin(Method::POST, &format!("/v1/admin/events/{id}/open"), None)
        .await;
    assert_eq!(opened.expect(200)["status"], "open");
    let page = s.get(&format!("/v1/events/{id}")).await;
    assert_eq!(available(page.expect(200)), [10, 3], "VIP is capped by its own quota");
    let listed = s.get("/v1/events").await;
    assert!(
        listed.expect(200)["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );

    // The buyer holds, checks out and pays.
    let ana = buyer_token("ana");
    let items = json!({"items": [{"ticket_type_id": 0, "quantity": 2}, {"ticket_type_id": 1, "quantity": 1}]});
    let hold = s
        .send(
            Method::POST,
            &format!("/v1/events/{id}/holds"),
            Some(&ana),
            Some(&items),
            &corr("flow-hold"),
        )
        .await;
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
    let page = s.get(&format!("/v1/events/{id}")).await;
    assert_eq!(available(page.expect(200)), [7, 2]);

    let order = s
        .send(
            Method::POST,
            &format!("/v1/holds/{hold_id}/checkout"),
            Some(&ana),
            None,
            &corr("flow-checkout"),
        )
        .await;
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

    let paid = s
        .send(
            Method::POST,
            &format!("/v1/orders/{order_id}/pay"),
            Some(&ana),
            Some(&json!({"method": "test"})),
            &corr("flow-pay"),
        )
        .await;
    assert_eq!(paid.expect(200)["state"], "paid");
    let order = s
        .buyer(&ana, Method::GET, &format!("/v1/orders/{order_id}"), None)
        .await;
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
    let hold_now = s.buyer(&ana, Method::GET, &format!("/v1/holds/{hold_id}"), None).await;
    let hold_now = hold_now.expect(200);
    assert_eq!(
        (hold_now["state"].as_str(), hold_now["order_id"].as_str()),
        (Some("converted"), Some(order_id.as_str()))
    );

    // At the door: first scan admits, the second names the first time.
    let checkin = |code: &str| json!({ "ticket_code": code });
    let first = s
        .send(
            Method::POST,
            &format!("/v1/admin/events/{id}/checkins"),
            Some(ADMIN_TOKEN),
            Some(&checkin(codes[0])),
            &corr("flow-checkin"),
        )
        .await;
    let first = first.expect(200).clone();
    assert_eq!(
        (first["ticket_code"].as_str(), first["order_id"].as_str()),
        (Some(codes[0]), Some(order_id.as_str()))
    );
    let at = first["checked_in_at"].as_str().expect("checked_in_at").to_string();
    let again = s
        .admin(
            Method::POST,
            &format!("/v1/admin/events/{id}/checkins"),
            Some(&checkin(codes[0])),
        )
        .await;
    let err = again.expect_error(409, "already_checked_in");
    assert_eq!(err["details"]["checked_in_at"].as_str(), Some(at.as_str()));
    let order = s
        .buyer(&ana, Method::GET, &format!("/v1/orders/{order_id}"), None)
        .await;
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
    let st = s.stats(&id).await;
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
    let feed = s.feed().await;
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
            "order_paid",
            "ticket_checked_in",
        ]
    );
    let of = |kind: &str| feed.iter().find(|e| e["type"] == kind).unwrap();
    assert_eq!(of("hold_placed")["correlation_id"], "flow-hold");
    assert_eq!(of("hold_placed")["data"]["hold_id"], hold_id.as_str());
    assert_eq!(of("hold_placed")["data"]["buyer_id"], "ana");
    assert_eq!(of("order_placed")["correlation_id"], "flow-checkout");
    assert_eq!(of("order_paid")["correlation_id"], "flow-pay");
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
        let r = s
            .admin(Method::GET, &format!("/v1/admin/feed?after={after}&limit=3"), None)
            .await;
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
    let s = Server::start(&[]).await;
    let given = s
        .send(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-correlation-id", "abc-123:x.y_z")],
        )
        .await;
    assert_eq!(given.header("x-correlation-id"), Some("abc-123:x.y_z"));
    let generated = s.get("/healthz").await;
    let a = generated.header("x-correlation-id").expect("generated id").to_string();
    let b = s.get("/healthz").await.header("x-correlation-id").unwrap().to_string();
    assert!(a.len() == 24 && a != b, "fresh ids per request: {a} {b}");
    // An id we cannot carry safely (spaces, too long) is replaced, not echoed.
    for bad in ["has spaces", &"x".repeat(65), "a/b"] {
        let r = s
            .send(
                Method::GET,
                "/v1/events/evt_999",
                None,
                None,
                &[("x-correlation-id", bad)],
            )
            .await;
        r.expect_error(404, "not_found");
        assert_ne!(r.header("x-correlation-id"), Some(bad));
    }
    // On an error, the body carries the given id too.
    let r = s
        .send(Method::GET, "/nope", None, None, &[("x-correlation-id", "trace-me")])
        .await;
    assert_eq!(r.expect_error(404, "not_found")["correlation_id"], "trace-me");
}

#[tokio::test]
async fn a_buyer_sees_only_their_own_holds_and_orders() {
    let s = Server::start(&["--allow-test-payments"]).await;
    let id = s.simple_sale(10, json!({})).await;
    let (ana, bob) = (buyer_token("ana"), buyer_token("bob"));
    let items = json!({"items": [{"ticket_type_id": 0, "quantity": 2}]});
    let hold = s
        .buyer(&ana, Method::POST, &format!("/v1/events/{id}/holds"), Some(&items))
        .await;
    let hold_id = hold.expect(201)["id"].as_str().unwrap().to_string();
    let h = format!("/v1/holds/{hold_id}");

    // Bob gets exactly what a missing hold gives: 404, whatever he tries.
    s.buyer(&bob, Method::GET, &h, None)
        .await
        .expect_error(404, "not_found");
    s.buyer(&bob, Method::DELETE, &h, None)
        .await
        .expect_error(404, "not_found");
    s.buyer(&bob, Method::POST, &format!("{h}/checkout"), None)
        .await
        .expect_error(404, "not_found");
    // ... and none of it touched Ana's hold.
    assert_eq!(
        s.buyer(&ana, Method::GET, &h, None).await.expect(200)["state"],
        "active"
    );

    let order = s.buyer(&ana, Method::POST, &format!("{h}/checkout"), None).await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    let o = format!("/v1/orders/{order_id}");
    let pay = json!({"method": "test"});
    s.buyer(&bob, Method::GET, &o, None)
        .await
        .expect_error(404, "not_found");
    s.buyer(&bob, Method::POST, &format!("{o}/pay"), Some(&pay))
        .await
        .expect_error(404, "not_found");
    s.buyer(&bob, Method::POST, &format!("{o}/cancel"), None)
        .await
        .expect_error(404, "not_found");
    let still = s.buyer(&ana, Method::GET, &o, None).await;
    assert_eq!(
        still.expect(200)["state"],
        "awaiting_payment",
        "Bob's attempts changed nothing"
    );
    // A missing order of the same shape answers the same.
    let missing = order_id.rsplit_once('_').map(|(p, _)| format!("{p}_999")).unwrap();
    s.buyer(&bob, Method::GET, &format!("/v1/orders/{missing}"), None)
        .await
        .expect_error(404, "not_found");

    // Ana can do all of it.
    s.buyer(&ana, Method::POST, &format!("{o}/pay"), Some(&pay))
        .await
        .expect(200);
    let st = s.stats(&id).await;
    assert_eq!((st["sold"].as_u64(), st["held"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn idempotent_retries_return_the_original_and_take_inventory_once() {
    let s = Server::start(&[]).await;
    let id = s.simple_sale(20, json!({})).await;
    let ana = buyer_token("ana");
    let holds = format!("/v1/events/{id}/holds");
    let two = json!({"items": [{"ticket_type_id": 0, "quantity": 2}]});
    let three = json!({"items": [{"ticket_type_id": 0, "quantity": 3}]});
    let with_key = |key: &'static str, body: Value| {
        let (s, ana, holds) = (&s, &ana, &holds);
        async move {
            s.send(Method::POST, holds, Some(ana), Some(&body), &[("idempotency-key", key)])
                .await
        }
    };

    let first = with_key("k-1", two.clone()).await;
    let hold_id = first.expect(201)["id"].as_str().unwrap().to_string();
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
    assert_eq!(s.stats(&id).await["held"], 2, "inventory taken once");
    let conflict = with_key("k-1", three.clone()).await;
    conflict.expect_error(409, "idempotency_conflict");

    // Keys are scoped per buyer: Bob's "k-1" is his own.
    let bob = buyer_token("bob");
    let bobs = s
        .send(
            Method::POST,
            &holds,
            Some(&bob),
            Some(&two),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_ne!(bobs.expect(201)["id"], hold_id.as_str());
    // A fresh key, or no key, is a fresh hold.
    let other = with_key("k-2", two.clone()).await;
    let other_id = other.expect(201)["id"].as_str().unwrap().to_string();
    assert_ne!(other_id, hold_id);
    assert_eq!(s.stats(&id).await["held"], 6);

    // Checkout: same key on the same hold returns the same order; on another hold it conflicts.
    let checkout = |hold: &str, key: &'static str| {
        let (s, ana) = (&s, &ana);
        let path = format!("/v1/holds/{hold}/checkout");
        async move {
            s.send(Method::POST, &path, Some(ana), None, &[("idempotency-key", key)])
                .await
        }
    };
    let order = checkout(&hold_id, "c-1").await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    let again = checkout(&hold_id, "c-1").await;
    assert_eq!(again.expect(201)["id"], order_id.as_str());
    checkout(&other_id, "c-1")
        .await
        .expect_error(409, "idempotency_conflict");
    // Without the key, a second checkout of a converted hold is a plain conflict.
    let plain = s
        .buyer(&ana, Method::POST, &format!("/v1/holds/{hold_id}/checkout"), None)
        .await;
    plain.expect_error(409, "conflict");
    let st = s.stats(&id).await;
    assert_eq!(
        (st["orders"]["awaiting_payment"].as_u64(), st["held"].as_u64()),
        (Some(1), Some(6))
    );

    // A key we cannot store is refused up front.
    let long = "k".repeat(65);
    let r = s
        .send(
            Method::POST,
            &holds,
            Some(&ana),
            Some(&two),
            &[("idempotency-key", &long)],
        )
        .await;
    r.expect_error(422, "invalid");
}

#[tokio::test]
async fn holds_and_unpaid_orders_expire_on_time() {
    let s = Server::start(&["--allow-test-payments"]).await;
    let id = s.simple_sale(2, json!({"hold_ttl_secs": 1})).await;
    let ana = buyer_token("ana");
    let items = json!({"items": [{"ticket_type_id": 0, "quantity": 2}]});
    let hold = s
        .buyer(&ana, Method::POST, &format!("/v1/events/{id}/holds"), Some(&items))
        .await;
    let hold_id = hold.expect(201)["id"].as_str().unwrap().to_string();
    assert_eq!(available(s.get(&format!("/v1/events/{id}")).await.expect(200)), [0]);
    let bob = buyer_token("bob");
    let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    s.buyer(&bob, Method::POST, &format!("/v1/events/{id}/holds"), Some(&one))
        .await
        .expect_error(409, "sold_out");

    wait_for("the hold to expire", Duration::from_secs(10), || async {
        let r = s.buyer(&ana, Method::GET, &format!("/v1/holds/{hold_id}"), None).await;
        (r.expect(200)["state"] == "expired").then_some(())
    })
    .await;
    assert_eq!(
        available(s.get(&format!("/v1/events/{id}")).await.expect(200)),
        [2],
        "inventory returned"
    );
    let late = s
        .buyer(&ana, Method::POST, &format!("/v1/holds/{hold_id}/checkout"), None)
        .await;
    late.expect_error(409, "hold_expired");
    s.buyer(&ana, Method::DELETE, &format!("/v1/holds/{hold_id}"), None)
        .await
        .expect_error(409, "hold_expired");
    let st = s.stats(&id).await;
    assert_eq!(
        (st["held"].as_u64(), st["holds"]["expired"].as_u64()),
        (Some(0), Some(1))
    );

    // An order left unpaid expires after the same window and gives its tickets back.
    let hold = s
        .buyer(&bob, Method::POST, &format!("/v1/events/{id}/holds"), Some(&one))
        .await;
    let hold_id = hold.expect(201)["id"].as_str().unwrap().to_string();
    let order = s
        .buyer(&bob, Method::POST, &format!("/v1/holds/{hold_id}/checkout"), None)
        .await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    wait_for("the order to expire", Duration::from_secs(10), || async {
        let r = s
            .buyer(&bob, Method::GET, &format!("/v1/orders/{order_id}"), None)
            .await;
        (r.expect(200)["state"] == "expired").then_some(())
    })
    .await;
    assert_eq!(available(s.get(&format!("/v1/events/{id}")).await.expect(200)), [2]);
    // A payment that arrives late is honoured while the inventory is still there.
    let pay = json!({"method": "test"});
    let paid = s
        .buyer(&bob, Method::POST, &format!("/v1/orders/{order_id}/pay"), Some(&pay))
        .await;
    let paid = paid.expect(200);
    assert_eq!(
        (paid["state"].as_str(), paid["tickets"].as_array().map(Vec::len)),
        (Some("paid"), Some(1))
    );
    assert_eq!(available(s.get(&format!("/v1/events/{id}")).await.expect(200)), [1]);
}

#[tokio::test]
async fn the_sale_page_has_an_etag_and_answers_304() {
    let s = Server::start(&[]).await;
    let id = s.simple_sale(5, json!({})).await;
    let page = format!("/v1/events/{id}");
    let r = s.get(&page).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let etag = r.header("etag").expect("ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );
    let cond = |tag: String| {
        let (s, page) = (&s, &page);
        async move { s.send(Method::GET, page, None, None, &[("if-none-match", &tag)]).await }
    };

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        let r = cond(tag.clone()).await;
        assert_eq!(r.status, 304, "If-None-Match: {tag}");
        assert!(r.text.is_empty(), "304 has no body");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    }
    assert_eq!(cond("\"stale\"".into()).await.status, 200);
    // Unchanged sale, unchanged ETag.
    assert_eq!(s.get(&page).await.header("etag"), Some(etag.as_str()));

    // Availability changes: so does the ETag, and the old one no longer matches.
    let items = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    s.buyer(
        &buyer_token("ana"),
        Method::POST,
        &format!("{page}/holds"),
        Some(&items),
    )
    .await
    .expect(201);
    let r = cond(etag.clone()).await;
    assert_eq!(r.status, 200, "stale ETag must not match");
    let fresh = r.header("etag").expect("ETag");
    assert_ne!(fresh, etag);
    assert_eq!(available(&r.json), [4]);
    assert_eq!(cond(fresh.to_string()).await.status, 304);
}
