//! Every error code of the table in `crates/api/src/error.rs` that a client can reach, with
//! its status, its code, and the correlation id in the body equal to the response header.
//!
//! `every_code_is_covered` keeps the suite in step with the table by what the tests really
//! received: each scenario below is a plain `async fn` taking a [`Codes`] recorder and has a
//! test of its own; `every_code_is_covered` runs them all in sequence with one recorder (nextest
//! runs each test in a process of its own, so nothing could be shared across tests) and
//! compares the codes recorded with `Code::ALL` minus the unreachable ones, named with why.
//! It also checks that every status those scenarios received on a documented operation is one
//! the operation declares in the OpenAPI document.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::{concurrency, disk, flow, keys, limits, ops, payments, push, refunds, waiting_room};

/// Codes no client request to a correctly working server can produce, and why.
const UNREACHABLE: &[(&str, &str)] = &[
    (
        "already_exists",
        "the engine assigns sale ids, so CreateSale never meets an existing sale",
    ),
    (
        "internal",
        "a bug by definition; the bad-input campaign asserts that no request gets a 5xx",
    ),
];

type Scenario = fn(Codes) -> BoxFuture<'static, ()>;

/// Every scenario that asserts error answers, by name.
fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("errors::input_auth_and_routing_errors", |c| {
            Box::pin(input_auth_and_routing(c))
        }),
        ("errors::test_payments_are_off_unless_enabled", |c| {
            Box::pin(test_payments_off(c))
        }),
        ("errors::sale_rule_errors", |c| Box::pin(sale_rules(c))),
        ("errors::too_many_sales", |c| Box::pin(too_many_sales(c))),
        ("errors::protocol_errors", |c| Box::pin(protocol_errors(c))),
        ("errors::sale_not_open_in_every_form", |c| Box::pin(sale_not_open(c))),
        ("flow::whole_flow", |c| Box::pin(flow::whole_flow(c))),
        ("flow::correlation_ids", |c| Box::pin(flow::correlation_ids(c))),
        ("flow::ownership", |c| Box::pin(flow::ownership(c))),
        ("flow::idempotent_retries", |c| Box::pin(flow::idempotent_retries(c))),
        ("flow::idempotency_ttl", |c| Box::pin(flow::idempotency_ttl(c))),
        ("flow::expiry", |c| Box::pin(flow::expiry(c))),
        ("refunds::refunds", |c| Box::pin(refunds::refunds(c))),
        ("refunds::cancellations", |c| Box::pin(refunds::cancellations(c))),
        ("refunds::late_payment", |c| {
            Box::pin(refunds::late_payment_without_inventory(c))
        }),
        ("payments::stripe_flow", |c| Box::pin(payments::stripe_flow(c))),
        ("payments::provider_outage", |c| Box::pin(payments::provider_outage(c))),
        ("concurrency::full_queue", |c| Box::pin(concurrency::full_queue(c))),
        ("ops::not_ready", |c| Box::pin(ops::not_ready_until_recovered(c))),
        // Needs the right to mount a tmpfs (root, as in CI).
        ("disk::storage_full", |c| Box::pin(disk::storage_full(c))),
        ("keys::scopes", |c| Box::pin(keys::scopes(c))),
        ("keys::too_many_keys", |c| Box::pin(keys::too_many_keys(c))),
        ("limits::buyer_rate_limit", |c| Box::pin(limits::buyer_rate_limit(c))),
        ("waiting_room::admission", |c| Box::pin(waiting_room::admission(c))),
        ("waiting_room::join_leave_limits", |c| {
            Box::pin(waiting_room::join_leave_limits(c))
        }),
        ("push::subscriber_limits", |c| Box::pin(push::subscriber_limits(c))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_code_is_covered() {
    let codes = Codes::default();
    for (name, scenario) in scenarios() {
        eprintln!("scenario {name}");
        scenario(codes.clone()).await;
    }
    let table: BTreeSet<String> = taquilla_api::Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    let unreachable: BTreeSet<String> = UNREACHABLE.iter().map(|(c, _)| c.to_string()).collect();
    assert!(
        unreachable.is_subset(&table),
        "an unreachable code that is not in the table: {:?}",
        unreachable.difference(&table).collect::<Vec<_>>()
    );
    let expected: BTreeSet<String> = table.difference(&unreachable).cloned().collect();
    assert_eq!(
        codes.seen(),
        expected,
        "the codes the scenarios received differ from the table minus the unreachable codes: \
         add a test for a new code, or say in UNREACHABLE why no request can get it"
    );
    assert_eq!(
        codes.undeclared(),
        Vec::<String>::new(),
        "answers whose status the route's OpenAPI operation does not declare (declare it in the \
         handler's #[utoipa::path], or for a group of routes in openapi::COMMON_ANSWERS)"
    );
}

#[tokio::test]
async fn input_auth_and_routing_errors() {
    input_auth_and_routing(Codes::default()).await;
}

async fn input_auth_and_routing(codes: Codes) {
    let app = spawn_app(
        AppOptions::default()
            .test_payments()
            .body_limit_bytes(1024)
            .codes(&codes),
    )
    .await;
    let id = app.simple_sale(10, json!({})).await;
    let holds = format!("/v1/events/{id}/holds");
    let ana = app.buyer_token("ana");
    let post_raw = |path: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>| {
        let mut rb = app.request(Method::POST, path);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        app.execute(rb.body(body))
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
        let r = app.place_hold(&ana, &id, &body, None).await;
        r.expect_error(422, "invalid");
    }
    for bad_event in [
        json!({"name": "", "currency": "EUR"}),
        json!({"name": "x", "currency": "euro"}),
        json!({"name": "x", "currency": "EUR", "opens_at": "tomorrow"}),
    ] {
        app.create_event(&bad_event).await.expect_error(422, "invalid");
    }
    app.feed_page("0", 0).await.expect_error(422, "invalid");
    // Query parameters are as strictly typed as the document says.
    for query in ["limit=true", "limit=1.5", "limit=1001", "after=abc", "after=-1", "x=1"] {
        let path = format!("/v1/admin/feed?{query}");
        let r = app.send(Method::GET, &path, Some(ADMIN_TOKEN), None, &[]).await;
        r.expect_error(422, "invalid");
    }
    // Text limits count characters, as JSON Schema's maxLength does: 200 two-byte
    // characters are a name, 201 are not.
    app.create_event(&json!({"name": "é".repeat(200), "currency": "EUR"}))
        .await
        .expect(201);
    app.create_event(&json!({"name": "é".repeat(201), "currency": "EUR"}))
        .await
        .expect_error(422, "invalid");
    // JSON has one kind of number: 2.0 and 2e0 are the integer 2; 2.5 is not an integer.
    let whole = json!({"items": [{"ticket_type_id": 0.0, "quantity": 2e0}]});
    let hold = app.place_hold(&ana, &id, &whole, None).await;
    assert_eq!(hold.expect(201)["items"][0]["quantity"], 2);
    let r = app.release_hold(&ana, hold.json["id"].as_str().unwrap()).await;
    r.expect(200);
    let half = json!({"items": [{"ticket_type_id": 0, "quantity": 2.5}]});
    app.place_hold(&ana, &id, &half, None)
        .await
        .expect_error(422, "invalid");
    // The webhook without its signature header is malformed, configured or not.
    app.send(Method::POST, "/v1/webhooks/stripe", None, Some(&json!({})), &[])
        .await
        .expect_error(400, "invalid_signature");
    app.place_hold(&ana, &id, &items(7, 1), None)
        .await
        .expect_error(404, "not_found");

    // 401: no credentials, or credentials that prove nothing.
    let one = items(0, 1);
    app.send(Method::POST, &holds, None, Some(&one), &[])
        .await
        .expect_error(401, "unauthorized");
    app.send(Method::GET, "/v1/admin/feed", Some(ADMIN_TOKEN), None, &[])
        .await
        .expect(200);
    app.send(Method::GET, "/v1/admin/feed", None, None, &[])
        .await
        .expect_error(401, "unauthorized");
    let expired = app.buyer_token_expiring("ana", 1_000_000_000);
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
        let r = app.place_hold(token, &id, &one, None).await;
        r.expect_error(401, "unauthorized");
    }
    for auth in [format!("Basic {ana}"), "Bearer ".into(), "Bearer".into()] {
        let r = app
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

    // 403: a valid buyer token is the wrong kind of credential. 401: a wrong admin token is
    // none of ours.
    app.send(Method::GET, "/v1/admin/feed", Some(&ana), None, &[])
        .await
        .expect_error(403, "forbidden");
    let open = format!("/v1/admin/events/{id}/open");
    app.send(Method::POST, &open, Some(&ana), None, &[])
        .await
        .expect_error(403, "forbidden");
    app.send(
        Method::GET,
        "/v1/admin/feed",
        Some("test-admin-token-01234567890"),
        None,
        &[],
    )
    .await
    .expect_error(401, "unauthorized");

    // 404: unknown ids, malformed ids, unknown routes.
    for path in [
        "/v1/events/evt_999",
        "/v1/events/nope",
        "/v1/events/evt_01",
        "/v1/events/evt_18446744073709551616",
        "/v1/nope",
        "/",
    ] {
        app.send(Method::GET, path, None, None, &[])
            .await
            .expect_error(404, "not_found");
    }
    for hold in ["hld_0_999", "hld_999_1", "ord_0_1"] {
        app.get_hold(&ana, hold).await.expect_error(404, "not_found");
    }
    for order in ["ord_0_999", "x"] {
        app.get_order(&ana, order).await.expect_error(404, "not_found");
    }
    app.get_stats("evt_999").await.expect_error(404, "not_found");
    app.open("evt_999").await.expect_error(404, "not_found");
    app.place_hold(&ana, "evt_999", &one, None)
        .await
        .expect_error(404, "not_found");

    // 405: a known route, another method.
    for (m, path) in [
        (Method::DELETE, format!("/v1/events/{id}")),
        (Method::GET, "/v1/admin/events".to_string()),
        (Method::PUT, holds.clone()),
        (Method::POST, "/healthz".into()),
    ] {
        let r = app.send(m, &path, Some(ADMIN_TOKEN), None, &[]).await;
        r.expect_error(405, "method_not_allowed");
        // RFC 9110: a 405 says which methods the route takes.
        assert!(
            r.header("allow").is_some_and(|a| !a.is_empty()),
            "no Allow: {:?}",
            r.headers
        );
    }

    // 413: a body over the body limit (1024 here), with or without Content-Length.
    let big = json!({"items": [{"ticket_type_id": 0, "quantity": 1}], "pad": "x".repeat(2000)});
    app.place_hold(&ana, &id, &big, None)
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
        let rb = app
            .request(Method::POST, &holds)
            .bearer_auth(&ana)
            .header("content-type", "application/json")
            .body(stream);
        let r = app.execute(rb).await;
        r.expect_error(413, "payload_too_large");
        assert_eq!(r.header("connection"), Some("close"));
        app.get_sale(&id).await.expect(200);
        let rb = app
            .request(Method::GET, &format!("/v1/events/{id}"))
            .body(vec![b'x'; 200_000]);
        let r = app.execute(rb).await;
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        app.get_sale(&id).await.expect(200);
    }
    // A body read to its end keeps the connection.
    let r = app.get_sale(&id).await;
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
    let st = app.stats(&id).await;
    assert_eq!(
        (st["held"].as_u64(), st["holds"]["active"].as_u64()),
        (Some(0), Some(0))
    );
    post_raw(&holds, Some(&ana), json_ct, body).await.expect(201);
}

#[tokio::test]
async fn test_payments_are_off_unless_enabled() {
    test_payments_off(Codes::default()).await;
}

async fn test_payments_off(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    let id = app.simple_sale(10, json!({})).await;
    let ana = app.buyer_token("ana");
    let hold_id = app.place_hold(&ana, &id, &items(0, 1), None).await.expect_id(201);
    let order_id = app.checkout(&ana, &hold_id, None).await.expect_id(201);
    app.pay(&ana, &order_id)
        .await
        .expect_error(403, "payment_method_disabled");
    app.pay_with(&ana, &order_id, "card").await.expect_error(422, "invalid");
    let o = app.get_order(&ana, &order_id).await;
    assert_eq!(o.expect(200)["state"], "awaiting_payment");
}

#[tokio::test]
async fn sale_rule_errors() {
    sale_rules(Codes::default()).await;
}

async fn sale_rules(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().codes(&codes)).await;
    let id = app
        .create_sale(&json!({
            "event": {"name": "Small", "currency": "EUR", "max_tickets_per_buyer": 3},
            "ticket_types": [{"name": "A", "price_minor": 100}, {"name": "B", "price_minor": 200}],
            "quotas": [
                {"name": "Hall", "capacity": 4, "ticket_type_ids": [0, 1]},
                {"name": "B only", "capacity": 1, "ticket_type_ids": [1]}
            ],
        }))
        .await;
    let hold = |token: &str, t: u32, q: u32| {
        let (app, id, token) = (&app, &id, token.to_string());
        async move { app.place_hold(&token, id, &items(t, q), None).await }
    };
    let (ana, bob, cleo) = (app.buyer_token("ana"), app.buyer_token("bob"), app.buyer_token("cleo"));

    // limit_exceeded: 3 per buyer, across holds.
    let e = hold(&ana, 0, 4).await;
    let e = e.expect_error(422, "limit_exceeded");
    assert_eq!(
        (e["details"]["limit"].as_u64(), e["details"]["current"].as_u64()),
        (Some(3), Some(0))
    );
    let first_id = hold(&ana, 0, 2).await.expect_id(201);
    let e = hold(&ana, 0, 2).await;
    assert_eq!(e.expect_error(422, "limit_exceeded")["details"]["current"], 2);

    // insufficient_inventory: 2 left in the hall, Bob wants 3.
    let e = hold(&bob, 0, 3).await;
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
    app.place_hold(&bob, &id, &both, None)
        .await
        .expect_error(409, "insufficient_inventory");
    hold(&bob, 1, 1).await.expect(201);
    // sold_out: B's own quota is empty now.
    let e = hold(&cleo, 1, 1).await;
    assert_eq!(e.expect_error(409, "sold_out")["details"]["ticket_type_id"], 1);
    hold(&cleo, 0, 1).await.expect(201);
    let e = hold(&cleo, 0, 1).await;
    e.expect_error(409, "sold_out");

    // conflict: actions that the current state does not allow, each with its stable reason.
    let reason = |r: Resp| r.expect_error(409, "conflict")["details"]["reason"].clone();
    // hold_ended: a hold that was released or checked out is not kept; naming it again
    // (whoever does) says so.
    assert_eq!(app.release_hold(&ana, &first_id).await.expect(200)["state"], "released");
    app.release_hold(&ana, &first_id).await.expect_error(410, "hold_ended");
    app.checkout(&ana, &first_id, None)
        .await
        .expect_error(410, "hold_ended");
    app.get_hold(&ana, &first_id).await.expect_error(410, "hold_ended");
    app.get_hold(&bob, &first_id).await.expect_error(410, "hold_ended");
    let again_id = hold(&ana, 0, 1).await.expect_id(201);
    let order_id = app.checkout(&ana, &again_id, None).await.expect_id(201);
    app.release_hold(&ana, &again_id).await.expect_error(410, "hold_ended");
    app.pay(&ana, &order_id).await.expect(200);
    assert_eq!(
        reason(app.buyer_cancel(&ana, &order_id).await),
        "order_not_awaiting_payment"
    );
    assert_eq!(reason(app.admin_cancel(&order_id).await), "order_not_awaiting_payment");
    app.close(&id).await.expect(200);
    assert_eq!(reason(app.open(&id).await), "status_transition");
    let late_type = app
        .create_ticket_type(&id, &json!({"name": "C", "price_minor": 1}))
        .await;
    assert_eq!(reason(late_type), "sale_closed");

    let st = app.stats(&id).await;
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
    sale_not_open(Codes::default()).await;
}

/// On a manual clock (started at the current second), so that the window that closes while
/// we watch closes exactly when the clock says.
async fn sale_not_open(codes: Codes) {
    let app = spawn_app(AppOptions::default().manual_clock().codes(&codes)).await;
    let ana = app.buyer_token("ana");
    let one = items(0, 1);
    let hold = |id: String| {
        let (app, ana, one) = (&app, &ana, &one);
        async move { app.place_hold(ana, &id, one, None).await }
    };
    let draft = app
        .create_sale(&json!({
            "event": {"name": "Draft", "currency": "EUR"},
            "ticket_types": [{"name": "A", "price_minor": 100}],
            "quotas": [{"name": "All", "capacity": 5, "ticket_type_ids": [0]}],
            "open": false,
        }))
        .await;
    hold(draft.clone()).await.expect_error(409, "sale_not_open");

    let paused = app.simple_sale(5, json!({})).await;
    let kept_id = hold(paused.clone()).await.expect_id(201);
    app.pause(&paused).await.expect(200);
    hold(paused.clone()).await.expect_error(409, "sale_not_open");
    // A hold taken before the pause may still be checked out.
    app.checkout(&ana, &kept_id, None).await.expect(201);
    app.open(&paused).await.expect(200);
    hold(paused.clone()).await.expect(201);

    let closed = app.simple_sale(5, json!({})).await;
    let kept_id = hold(closed.clone()).await.expect_id(201);
    app.close(&closed).await.expect(200);
    hold(closed.clone()).await.expect_error(409, "sale_not_open");
    app.checkout(&ana, &kept_id, None)
        .await
        .expect_error(409, "sale_not_open");

    // Open, but outside its window: before opens_at, and from closes_at on.
    let future = app.simple_sale(5, json!({"opens_at": "2999-01-01T00:00:00Z"})).await;
    hold(future).await.expect_error(409, "sale_not_open");
    let past = app
        .simple_sale(
            5,
            json!({"opens_at": "2000-01-01T00:00:00Z", "closes_at": "2000-01-02T00:00:00+02:00"}),
        )
        .await;
    hold(past).await.expect_error(409, "sale_not_open");
    let now = app
        .simple_sale(
            5,
            json!({"opens_at": "2000-01-01T00:00:00Z", "closes_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    hold(now).await.expect(201);

    // A window that closes while we watch. A probe with an unknown ticket type takes no
    // inventory: it is `404` while the sale is open (the window is checked first), then
    // `sale_not_open` from `closes_at` on, to the millisecond.
    let soon = app
        .simple_sale(5, json!({"closes_at": app.time_in(Duration::from_secs(2))}))
        .await;
    hold(soon.clone()).await.expect(201);
    let probe = items(9, 1);
    app.advance(Duration::from_millis(1999));
    app.place_hold(&ana, &soon, &probe, None)
        .await
        .expect_error(404, "not_found");
    app.advance(Duration::from_millis(1));
    app.place_hold(&ana, &soon, &probe, None)
        .await
        .expect_error(409, "sale_not_open");
    hold(soon).await.expect_error(409, "sale_not_open");
}

#[tokio::test]
async fn too_many_sales_is_refused_and_nothing_is_created() {
    too_many_sales(Codes::default()).await;
}

async fn too_many_sales(codes: Codes) {
    let app = spawn_app(AppOptions::default().sales_max(2).codes(&codes)).await;
    let sale = json!({"name": "One more", "currency": "EUR"});
    app.create_event(&sale).await.expect(201);
    app.create_event(&sale).await.expect(201);
    app.create_event(&sale).await.expect_error(422, "too_many_sales");
    // Drafts are not public: the organiser's stats show the two, and no third.
    for event in ["evt_1", "evt_2"] {
        app.get_stats(event).await.expect(200);
    }
    app.get_stats("evt_3").await.expect_error(404, "not_found");
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_json_errors_too() {
    protocol_errors(Codes::default()).await;
}

/// Requests that never reach the router (hyper refuses them while parsing) are answered in the
/// JSON error shape all the same, and the connection is closed.
async fn protocol_errors(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    // Over hyper's 100 headers; small enough to be read whole, so the close is clean.
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge_header = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(70_000));
    for (request, status, code) in [
        (
            &b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"[..],
            400,
            "malformed_request",
        ),
        (
            b"GET /v1/events/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "malformed_request",
        ),
        (
            b"POST /v1/admin/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            400,
            "malformed_request",
        ),
        (b"GARBAGE\r\n\r\n", 400, "malformed_request"),
        (huge_header.as_bytes(), 431, "headers_too_large"),
        (long_uri.as_bytes(), 414, "uri_too_long"),
    ] {
        let r = app.raw(request).await.expect("an answer");
        r.expect_error(status, code);
        assert_eq!(r.header("connection"), Some("close"), "{}", r.text);
    }
    // The connection stays usable for what hyper does parse.
    app.healthz().await.expect(200);
}
