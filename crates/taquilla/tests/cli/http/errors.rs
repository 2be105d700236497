//! Every error code of the table in `crates/api/src/error.rs` that a client can reach, with
//! its status, its code, and the correlation id in the body equal to the response header.
//! `every_code_is_covered` keeps this file in step with the table.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::support::*;

/// Where each code is reached (file::test).
const REACHED: &[(&str, &str)] = &[
    ("malformed_request", "errors::input_auth_and_routing_errors"),
    ("invalid", "errors::input_auth_and_routing_errors"),
    ("unauthorized", "errors::input_auth_and_routing_errors"),
    ("forbidden", "errors::input_auth_and_routing_errors"),
    ("test_payments_disabled", "errors::test_payments_are_off_unless_enabled"),
    ("not_found", "errors::input_auth_and_routing_errors"),
    ("method_not_allowed", "errors::input_auth_and_routing_errors"),
    ("payload_too_large", "errors::input_auth_and_routing_errors"),
    ("unsupported_media_type", "errors::input_auth_and_routing_errors"),
    ("sold_out", "errors::sale_rule_errors"),
    ("insufficient_inventory", "errors::sale_rule_errors"),
    ("sale_not_open", "errors::sale_not_open_in_every_form"),
    ("hold_expired", "flow::holds_and_unpaid_orders_expire_on_time"),
    (
        "idempotency_conflict",
        "flow::idempotent_retries_return_the_original_and_take_inventory_once",
    ),
    (
        "already_checked_in",
        "flow::whole_flow_from_sale_to_check_in_with_correlation_ids_in_the_feed",
    ),
    ("conflict", "errors::sale_rule_errors"),
    ("limit_exceeded", "errors::sale_rule_errors"),
    (
        "overloaded",
        "concurrency::a_full_queue_answers_503_overloaded_with_retry_after",
    ),
];

/// Codes no client request can produce, and why.
const UNREACHABLE: &[(&str, &str)] = &[
    (
        "already_exists",
        "the engine assigns sale ids; CreateSale never meets an existing sale",
    ),
    (
        "too_many_sales",
        "needs 100,000 sales (engine SALES_MAX): too slow for a test",
    ),
    (
        "unavailable",
        "only before recovery finishes (the banner is printed after) or after a storage failure",
    ),
    (
        "internal",
        "a bug by definition; the bad-input campaign asserts it never happens",
    ),
];

#[test]
fn every_code_is_covered() {
    let table: BTreeSet<&str> = taquilla_api::Code::ALL.iter().map(|c| c.as_str()).collect();
    let listed: BTreeSet<&str> = REACHED.iter().chain(UNREACHABLE).map(|(c, _)| *c).collect();
    assert_eq!(
        table, listed,
        "error.rs changed: add an HTTP test for the new code (or say why not)"
    );
    assert_eq!(REACHED.len() + UNREACHABLE.len(), table.len(), "a code listed twice");
}

#[tokio::test]
async fn input_auth_and_routing_errors() {
    let s = Server::start(&["--allow-test-payments", "--body-limit-bytes", "1024"]).await;
    let id = s.simple_sale(10, json!({})).await;
    let holds = format!("/v1/events/{id}/holds");
    let ana = buyer_token("ana");
    let post_raw = |path: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>| {
        let mut rb = s.http.post(s.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        let fut = rb.body(body).send();
        async move { into_resp(fut.await.expect("request")).await }
    };
    let json_ct = Some("application/json");

    // 400: not JSON at all.
    for body in [
        &b"{\"items\": ["[..],
        b"",
        b"nope",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1}]} trailing",
    ] {
        post_raw(&holds, Some(&ana), json_ct, body.to_vec())
            .await
            .expect_error(400, "malformed_request");
    }
    // 422: JSON of the wrong shape or out-of-range values.
    for body in [
        json!({"items": "x"}),
        json!({"items": []}),
        json!({"items": [{"ticket_type_id": 0, "quantity": 0}]}),
        json!({"items": [{"ticket_type_id": 0, "quantity": -1}]}),
        json!({"items": [{"ticket_type_id": 0, "quantity": 101}]}),
        json!({"items": [{"ticket_type_id": 0, "quantity": 1}, {"ticket_type_id": 0, "quantity": 1}]}),
        json!({"items": [{"ticket_type_id": 0, "quantity": 1}], "extra": true}),
        json!({}),
    ] {
        let r = s.buyer(&ana, Method::POST, &holds, Some(&body)).await;
        r.expect_error(422, "invalid");
    }
    let bad_event = json!({"name": "", "currency": "EUR"});
    s.admin(Method::POST, "/v1/admin/events", Some(&bad_event))
        .await
        .expect_error(422, "invalid");
    let bad_event = json!({"name": "x", "currency": "euro"});
    s.admin(Method::POST, "/v1/admin/events", Some(&bad_event))
        .await
        .expect_error(422, "invalid");
    let bad_event = json!({"name": "x", "currency": "EUR", "opens_at": "tomorrow"});
    s.admin(Method::POST, "/v1/admin/events", Some(&bad_event))
        .await
        .expect_error(422, "invalid");
    s.admin(Method::GET, "/v1/admin/feed?limit=0", None)
        .await
        .expect_error(422, "invalid");
    s.buyer(
        &ana,
        Method::POST,
        &format!("/v1/events/{id}/holds"),
        Some(&json!({"items": [{"ticket_type_id": 7, "quantity": 1}]})),
    )
    .await
    .expect_error(404, "not_found");

    // 401: no credentials, or credentials that prove nothing.
    let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    s.send(Method::POST, &holds, None, Some(&one), &[])
        .await
        .expect_error(401, "unauthorized");
    s.admin(Method::GET, "/v1/admin/feed", None).await.expect(200);
    s.send(Method::GET, "/v1/admin/feed", None, None, &[])
        .await
        .expect_error(401, "unauthorized");
    let expired = buyer_token_expiring("ana", 1_000_000_000);
    let forged = {
        let other = taquilla_domain::BuyerId::parse("ana").unwrap();
        taquilla_api::mint_buyer_token(b"not-the-secret-at-all", &other, 4_000_000_000)
    };
    for token in [
        "garbage",
        "v1.YW5h.9999999999.AAAA",
        expired.as_str(),
        forged.as_str(),
        &"v1.".repeat(300),
    ] {
        let r = s.buyer(token, Method::POST, &holds, Some(&one)).await;
        r.expect_error(401, "unauthorized");
    }
    for auth in [format!("Basic {ana}"), "Bearer ".into(), "Bearer".into()] {
        let r = s
            .send(
                Method::GET,
                "/v1/holds/hld_0_1",
                None,
                None,
                &[("authorization", &auth)],
            )
            .await;
        r.expect_error(401, "unauthorized");
    }

    // 403: a valid buyer token is not an admin token; nor is a wrong admin token.
    s.buyer(&ana, Method::GET, "/v1/admin/feed", None)
        .await
        .expect_error(403, "forbidden");
    s.buyer(&ana, Method::POST, &format!("/v1/admin/events/{id}/open"), None)
        .await
        .expect_error(403, "forbidden");
    s.buyer("test-admin-token-01234567890", Method::GET, "/v1/admin/feed", None)
        .await
        .expect_error(403, "forbidden");

    // 404: unknown ids, malformed ids, unknown routes.
    for path in [
        "/v1/events/evt_999".to_string(),
        "/v1/events/nope".into(),
        "/v1/events/evt_01".into(),
        "/v1/events/evt_18446744073709551616".into(),
        "/v1/nope".into(),
        "/".into(),
    ] {
        s.get(&path).await.expect_error(404, "not_found");
    }
    for path in [
        "/v1/holds/hld_0_999",
        "/v1/holds/hld_999_1",
        "/v1/holds/ord_0_1",
        "/v1/orders/ord_0_999",
        "/v1/orders/x",
    ] {
        s.buyer(&ana, Method::GET, path, None)
            .await
            .expect_error(404, "not_found");
    }
    s.admin(Method::GET, "/v1/admin/events/evt_999/stats", None)
        .await
        .expect_error(404, "not_found");
    s.admin(Method::POST, "/v1/admin/events/evt_999/open", None)
        .await
        .expect_error(404, "not_found");
    s.buyer(&ana, Method::POST, "/v1/events/evt_999/holds", Some(&one))
        .await
        .expect_error(404, "not_found");

    // 405: a known route, another method.
    for (m, path) in [
        (Method::DELETE, format!("/v1/events/{id}")),
        (Method::GET, "/v1/admin/events".to_string()),
        (Method::PUT, holds.clone()),
        (Method::POST, "/healthz".into()),
    ] {
        s.admin(m, &path, None).await.expect_error(405, "method_not_allowed");
    }

    // 413: a body over --body-limit-bytes (1024 here), with or without Content-Length.
    let big = json!({"items": [{"ticket_type_id": 0, "quantity": 1}], "pad": "x".repeat(2000)});
    s.buyer(&ana, Method::POST, &holds, Some(&big))
        .await
        .expect_error(413, "payload_too_large");
    // The server answers before reading the rest of such a body, so the connection cannot
    // be reused: it must say `Connection: close`, or a client reusing the connection sees
    // its next request fail (one time in three here before the server said so). The same for
    // a body sent to a route that reads none.
    for _ in 0..20 {
        let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(vec![b' '; 600])),
        ));
        let r = s
            .http
            .post(s.url(&holds))
            .bearer_auth(&ana)
            .header("content-type", "application/json")
            .body(stream)
            .send()
            .await
            .expect("chunked request");
        let r = into_resp(r).await;
        r.expect_error(413, "payload_too_large");
        assert_eq!(r.header("connection"), Some("close"));
        s.get(&format!("/v1/events/{id}")).await.expect(200);
        let r = s
            .http
            .get(s.url(&format!("/v1/events/{id}")))
            .body(vec![b'x'; 200_000])
            .send()
            .await;
        let r = into_resp(r.expect("GET with a body")).await;
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        s.get(&format!("/v1/events/{id}")).await.expect(200);
    }
    // A body read to its end keeps the connection.
    let r = s.get(&format!("/v1/events/{id}")).await;
    assert_eq!(r.header("connection"), None);

    // 415: a body that does not say it is JSON.
    let body = serde_json::to_vec(&one).unwrap();
    post_raw(&holds, Some(&ana), None, body.clone())
        .await
        .expect_error(415, "unsupported_media_type");
    post_raw(&holds, Some(&ana), Some("text/plain"), body.clone())
        .await
        .expect_error(415, "unsupported_media_type");

    // None of it took a ticket.
    let st = s.stats(&id).await;
    assert_eq!(
        (st["held"].as_u64(), st["holds"]["active"].as_u64()),
        (Some(0), Some(0))
    );
    post_raw(&holds, Some(&ana), json_ct, body).await.expect(201);
}

#[tokio::test]
async fn test_payments_are_off_unless_enabled() {
    let s = Server::start(&[]).await;
    let id = s.simple_sale(10, json!({})).await;
    let ana = buyer_token("ana");
    let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    let hold = s
        .buyer(&ana, Method::POST, &format!("/v1/events/{id}/holds"), Some(&one))
        .await;
    let hold_id = hold.expect(201)["id"].as_str().unwrap().to_string();
    let order = s
        .buyer(&ana, Method::POST, &format!("/v1/holds/{hold_id}/checkout"), None)
        .await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    let pay = format!("/v1/orders/{order_id}/pay");
    s.buyer(&ana, Method::POST, &pay, Some(&json!({"method": "test"})))
        .await
        .expect_error(403, "test_payments_disabled");
    s.buyer(&ana, Method::POST, &pay, Some(&json!({"method": "card"})))
        .await
        .expect_error(422, "invalid");
    let o = s
        .buyer(&ana, Method::GET, &format!("/v1/orders/{order_id}"), None)
        .await;
    assert_eq!(o.expect(200)["state"], "awaiting_payment");
}

#[tokio::test]
async fn sale_rule_errors() {
    let s = Server::start(&["--allow-test-payments"]).await;
    let id = s
        .create_sale(&json!({
            "event": {"name": "Small", "currency": "EUR", "max_tickets_per_buyer": 3},
            "ticket_types": [{"name": "A", "price_minor": 100}, {"name": "B", "price_minor": 200}],
            "quotas": [
                {"name": "Hall", "capacity": 4, "ticket_type_ids": [0, 1]},
                {"name": "B only", "capacity": 1, "ticket_type_ids": [1]}
            ],
        }))
        .await;
    let holds = format!("/v1/events/{id}/holds");
    let item = |t: u32, q: u32| json!({"items": [{"ticket_type_id": t, "quantity": q}]});
    let (ana, bob, cleo) = (buyer_token("ana"), buyer_token("bob"), buyer_token("cleo"));

    // limit_exceeded: 3 per buyer, across holds.
    let e = s.buyer(&ana, Method::POST, &holds, Some(&item(0, 4))).await;
    let e = e.expect_error(422, "limit_exceeded");
    assert_eq!(
        (e["details"]["limit"].as_u64(), e["details"]["current"].as_u64()),
        (Some(3), Some(0))
    );
    let first = s.buyer(&ana, Method::POST, &holds, Some(&item(0, 2))).await;
    let first_id = first.expect(201)["id"].as_str().unwrap().to_string();
    let e = s.buyer(&ana, Method::POST, &holds, Some(&item(0, 2))).await;
    assert_eq!(e.expect_error(422, "limit_exceeded")["details"]["current"], 2);

    // insufficient_inventory: 2 left in the hall, Bob wants 3.
    let e = s.buyer(&bob, Method::POST, &holds, Some(&item(0, 3))).await;
    let e = e.expect_error(409, "insufficient_inventory");
    assert_eq!(
        (
            e["details"]["ticket_type_id"].as_u64(),
            e["details"]["available"].as_u64()
        ),
        (Some(0), Some(2))
    );
    // Both lines count against the hall: 1 + 2 > 2 although each alone would fit.
    let both = json!({"items": [{"ticket_type_id": 0, "quantity": 2}, {"ticket_type_id": 1, "quantity": 1}]});
    s.buyer(&bob, Method::POST, &holds, Some(&both))
        .await
        .expect_error(409, "insufficient_inventory");
    s.buyer(&bob, Method::POST, &holds, Some(&item(1, 1))).await.expect(201);
    // sold_out: B's own quota is empty now.
    let e = s.buyer(&cleo, Method::POST, &holds, Some(&item(1, 1))).await;
    assert_eq!(e.expect_error(409, "sold_out")["details"]["ticket_type_id"], 1);
    s.buyer(&cleo, Method::POST, &holds, Some(&item(0, 1)))
        .await
        .expect(201);
    let e = s.buyer(&cleo, Method::POST, &holds, Some(&item(0, 1))).await;
    e.expect_error(409, "sold_out");

    // conflict: actions that the current state does not allow.
    let h = format!("/v1/holds/{first_id}");
    s.buyer(&ana, Method::DELETE, &h, None).await.expect(200);
    s.buyer(&ana, Method::DELETE, &h, None)
        .await
        .expect_error(409, "conflict");
    s.buyer(&ana, Method::POST, &format!("{h}/checkout"), None)
        .await
        .expect_error(409, "conflict");
    let again = s.buyer(&ana, Method::POST, &holds, Some(&item(0, 1))).await;
    let again_id = again.expect(201)["id"].as_str().unwrap().to_string();
    let order = s
        .buyer(&ana, Method::POST, &format!("/v1/holds/{again_id}/checkout"), None)
        .await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    let o = format!("/v1/orders/{order_id}");
    s.buyer(
        &ana,
        Method::POST,
        &format!("{o}/pay"),
        Some(&json!({"method": "test"})),
    )
    .await
    .expect(200);
    s.buyer(&ana, Method::POST, &format!("{o}/cancel"), None)
        .await
        .expect_error(409, "conflict");
    s.admin(Method::POST, &format!("/v1/admin/orders/{order_id}/cancel"), None)
        .await
        .expect_error(409, "conflict");
    s.admin(Method::POST, &format!("/v1/admin/events/{id}/close"), None)
        .await
        .expect(200);
    s.admin(Method::POST, &format!("/v1/admin/events/{id}/open"), None)
        .await
        .expect_error(409, "conflict");
    s.admin(
        Method::POST,
        &format!("/v1/admin/events/{id}/ticket-types"),
        Some(&json!({"name": "C", "price_minor": 1})),
    )
    .await
    .expect_error(409, "conflict");

    let st = s.stats(&id).await;
    assert_eq!((st["held"].as_u64(), st["sold"].as_u64()), (Some(2), Some(1)));
    assert!(
        st["quotas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["held"].as_u64().unwrap() + q["sold"].as_u64().unwrap() <= q["capacity"].as_u64().unwrap())
    );
}

#[tokio::test]
async fn sale_not_open_in_every_form() {
    let s = Server::start(&[]).await;
    let ana = buyer_token("ana");
    let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    let hold = |id: String| {
        let (s, ana, one) = (&s, &ana, &one);
        async move {
            s.buyer(ana, Method::POST, &format!("/v1/events/{id}/holds"), Some(one))
                .await
        }
    };
    let draft = s
        .create_sale(&json!({
            "event": {"name": "Draft", "currency": "EUR"},
            "ticket_types": [{"name": "A", "price_minor": 100}],
            "quotas": [{"name": "All", "capacity": 5, "ticket_type_ids": [0]}],
            "open": false,
        }))
        .await;
    hold(draft.clone()).await.expect_error(409, "sale_not_open");

    let paused = s.simple_sale(5, json!({})).await;
    let kept = hold(paused.clone()).await;
    let kept_id = kept.expect(201)["id"].as_str().unwrap().to_string();
    s.admin(Method::POST, &format!("/v1/admin/events/{paused}/pause"), None)
        .await
        .expect(200);
    hold(paused.clone()).await.expect_error(409, "sale_not_open");
    // A hold taken before the pause may still be checked out.
    s.buyer(&ana, Method::POST, &format!("/v1/holds/{kept_id}/checkout"), None)
        .await
        .expect(201);
    s.admin(Method::POST, &format!("/v1/admin/events/{paused}/open"), None)
        .await
        .expect(200);
    hold(paused.clone()).await.expect(201);

    let closed = s.simple_sale(5, json!({})).await;
    let kept = hold(closed.clone()).await;
    let kept_id = kept.expect(201)["id"].as_str().unwrap().to_string();
    s.admin(Method::POST, &format!("/v1/admin/events/{closed}/close"), None)
        .await
        .expect(200);
    hold(closed.clone()).await.expect_error(409, "sale_not_open");
    s.buyer(&ana, Method::POST, &format!("/v1/holds/{kept_id}/checkout"), None)
        .await
        .expect_error(409, "sale_not_open");

    // Open, but outside its window: before opens_at, and from closes_at on.
    let future = s.simple_sale(5, json!({"opens_at": "2999-01-01T00:00:00Z"})).await;
    hold(future).await.expect_error(409, "sale_not_open");
    let past = s
        .simple_sale(
            5,
            json!({"opens_at": "2000-01-01T00:00:00Z", "closes_at": "2000-01-02T00:00:00+02:00"}),
        )
        .await;
    hold(past).await.expect_error(409, "sale_not_open");
    let now = s
        .simple_sale(
            5,
            json!({"opens_at": "2000-01-01T00:00:00Z", "closes_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    hold(now).await.expect(201);

    // A window that closes while we watch. Polling with an unknown ticket type takes no
    // inventory: it is `404` while the sale is open (the window is checked first), then
    // `sale_not_open`.
    let soon = s
        .simple_sale(5, json!({"closes_at": time_in(Duration::from_secs(2))}))
        .await;
    hold(soon.clone()).await.expect(201);
    let probe = json!({"items": [{"ticket_type_id": 9, "quantity": 1}]});
    let path = format!("/v1/events/{soon}/holds");
    wait_for("the sale window to close", Duration::from_secs(10), || async {
        let r = s.buyer(&ana, Method::POST, &path, Some(&probe)).await;
        match r.status {
            404 => None,
            _ => {
                r.expect_error(409, "sale_not_open");
                Some(())
            }
        }
    })
    .await;
    hold(soon).await.expect_error(409, "sale_not_open");
}

/// RFC 3339 UTC time `d` from now.
fn time_in(d: Duration) -> String {
    (time::OffsetDateTime::now_utc() + d)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}
