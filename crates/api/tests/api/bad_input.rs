//! Bad input against every documented route (the list comes from `/openapi.json`, whose
//! operations `ops` checks are all routed, so a new route is covered without editing this file): malformed and mistyped JSON, huge and
//! negative numbers, overlong strings, invalid UTF-8 in bodies and paths, duplicate and too
//! many items, unknown fields, empty and oversized bodies, wrong methods and content types,
//! huge headers; table-driven, then property-based. Asserts: no 5xx ever, every 4xx in the JSON
//! error shape and declared by the route's OpenAPI operation, and afterwards the state is intact (stats consistent, a normal hold works, and
//! a restart in process — which re-checks every invariant while replaying — gives the same
//! stats).

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Body limit of the campaign's server: large enough for 1,000 hold lines to reach validation.
const BODY_LIMIT: usize = 65_536;

/// Ids that exist, for the `{…}` segments of the route table.
struct Ids {
    event: String,
    hold: String,
    order: String,
}

fn fill(template: &str, ids: &Ids) -> String {
    template
        .replace("{event_id}", &ids.event)
        .replace("{hold_id}", &ids.hold)
        .replace("{order_id}", &ids.order)
}

fn fill_with(template: &str, segment: &str) -> String {
    ["{event_id}", "{hold_id}", "{order_id}"]
        .iter()
        .fold(template.to_string(), |t, p| t.replace(p, segment))
}

/// The token a route wants: the admin's for admin routes, the owner's otherwise.
fn token_for(path: &str, buyer: &str) -> String {
    if path.starts_with("/v1/admin/") {
        ADMIN_TOKEN.to_string()
    } else {
        buyer.to_string()
    }
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).expect("method")
}

/// Raw bodies sent, as JSON, to every route.
fn bodies() -> Vec<Vec<u8>> {
    let long = "x".repeat(10_000);
    let mut out: Vec<Vec<u8>> = [
        &b""[..],
        b"{",
        b"}",
        b"null",
        b"[]",
        b"\"x\"",
        b"1e30",
        b"-1",
        b"{}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":18446744073709551616}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1e30}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":-1}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":4294967296}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1.5}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":\"1\"}]}",
        b"{\"items\":[{\"ticket_type_id\":-1,\"quantity\":1}]}",
        b"{\"items\":[{\"ticket_type_id\":4294967295,\"quantity\":1}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1},{\"ticket_type_id\":0,\"quantity\":1}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1,\"x\":1}]}",
        b"{\"items\":[{\"ticket_type_id\":0,\"quantity\":1}],\"items\":[]}",
        b"{\"items\":null}",
        b"\xef\xbb\xbf{\"items\":[{\"ticket_type_id\":0,\"quantity\":1}]}",
        b"\xff\xfe\xff",
        b"{\"name\":\"\xff\xfe\",\"currency\":\"EUR\"}",
        b"{\"name\":\"\\ud800\",\"currency\":\"EUR\"}",
        b"{\"name\":\"a\\u0000b\",\"currency\":\"EUR\"}",
        b"{\"name\":\"x\",\"currency\":\"EUR\",\"hold_ttl_secs\":18446744073709551615}",
        b"{\"name\":\"x\",\"currency\":\"EUR\",\"hold_ttl_secs\":0,\"max_tickets_per_buyer\":0}",
        b"{\"name\":\"x\",\"currency\":\"\xe2\x82\xac\"}",
        b"{\"name\":\"x\",\"currency\":\"EUR\",\"opens_at\":\"9999-12-31T23:59:59Z\",\"closes_at\":\"0001-01-01T00:00:00Z\"}",
        b"{\"name\":\"x\",\"currency\":\"EUR\",\"opens_at\":\"+275760-09-13T00:00:00Z\"}",
        b"{\"name\":\"x\",\"currency\":\"EUR\",\"closes_at\":\"1969-12-31T23:59:59.999-23:59\"}",
        b"{\"name\":\"x\",\"price_minor\":9223372036854775807,\"max_per_order\":0}",
        b"{\"name\":\"x\",\"price_minor\":-9223372036854775808}",
        b"{\"name\":\"x\",\"price_minor\":-1}",
        b"{\"name\":\"x\",\"capacity\":4294967295,\"ticket_type_ids\":[0,0,99,4294967295]}",
        b"{\"name\":\"x\",\"capacity\":-1,\"ticket_type_ids\":[]}",
        b"{\"buyer_id\":\"\",\"ttl_secs\":18446744073709551615}",
        b"{\"buyer_id\":\"a\\nb\",\"ttl_secs\":0}",
        b"{\"method\":\"test\",\"x\":1}",
        b"{\"method\":\"TEST\"}",
        b"{\"ticket_code\":\"00000000000000000000000000\"}",
        b"{\"ticket_code\":\"\xff\"}",
        b"{\"ticket_codes\":[]}",
        b"{\"ticket_codes\":[\"00000000000000000000000000\",\"00000000000000000000000000\"]}",
        b"{\"ticket_codes\":null}",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    for field in ["name", "currency", "buyer_id", "method", "ticket_code", "opens_at"] {
        out.push(format!("{{\"{field}\":\"{long}\",\"currency\":\"EUR\"}}").into_bytes());
    }
    out.push(format!("{{\"ticket_codes\":{}}}", json!(vec!["0".repeat(26); 1001])).into_bytes());
    out.push(
        format!(
            "{{\"name\":\"q\",\"capacity\":1,\"ticket_type_ids\":{}}}",
            json!((0..1000).collect::<Vec<_>>())
        )
        .into_bytes(),
    );
    let lines = |n: usize, distinct: bool| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"ticket_type_id": if distinct { i } else { 0 }, "quantity": 1}))
            .collect();
        json!({ "items": items }).to_string().into_bytes()
    };
    out.push(lines(1000, true));
    out.push(lines(1000, false));
    out.push(lines(17, true));
    out.push(lines(16, true));
    out.push("[".repeat(5_000).into_bytes());
    out.push(format!("{{\"items\":{}}}", "1".repeat(5_000)).into_bytes());
    out.push(vec![b' '; BODY_LIMIT + 1]);
    out
}

/// Path segments put in place of every `{…}` of a route.
const SEGMENTS: &[&str] = &[
    "%FF",
    "%00",
    "%C3%28",
    "%E2%82",
    "%2F",
    "%25",
    "%C3%A9vt_0",
    "evt_0%00",
    "evt_-1",
    "evt_18446744073709551616",
    "evt_18446744073709551615",
    "hld_0_18446744073709551616",
    "hld_00_1",
    "hld_0_0",
    "ord_0_-1",
    "ord_18446744073709551615_18446744073709551615",
    "0",
    "null",
];

/// Checks one answer: never 5xx; a 4xx is in our error shape.
#[track_caller]
fn judge(what: &str, r: &Resp) {
    assert!(r.status < 500, "{what}: {} {}", r.status, r.text);
    if r.status >= 400 {
        r.assert_error_shape();
    }
}

struct Campaign {
    app: TestApp,
    ids: Ids,
    buyer: String,
    sent: AtomicUsize,
}

impl Campaign {
    async fn raw(&self, m: Method, path: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut rb = self.app.request(m, path);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        self.app.execute(rb.body(body)).await
    }
}

#[test]
fn bad_input_on_every_route_never_answers_5xx_or_corrupts_state() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let c = rt.block_on(async {
        let app = spawn_app(AppOptions::default().test_payments().body_limit_bytes(BODY_LIMIT)).await;
        let event = app
            .create_sale(&json!({
                "event": {"name": "Target", "currency": "EUR", "max_tickets_per_buyer": 1000},
                "ticket_types": [{"name": "A", "price_minor": 100, "max_per_order": 5}, {"name": "B", "price_minor": 0}],
                "quotas": [{"name": "All", "capacity": 100000, "ticket_type_ids": [0, 1]}],
            }))
            .await;
        let buyer = app.buyer_token("campaigner");
        let hold = app.place_hold(&buyer, &event, &items(0, 1), None).await.expect_id(201);
        let order = app.checkout(&buyer, &hold, None).await.expect_id(201);
        Campaign {
            app,
            ids: Ids { event, hold, order },
            buyer,
            sent: AtomicUsize::new(0),
        }
    });
    let routes = rt.block_on(c.app.documented_routes());
    assert!(routes.len() >= 24, "documented routes: {routes:?}");
    // State-changing admin routes without a body (open/pause/close) last, so that the sale
    // stays open while the hold paths are exercised.
    let mut ordered: Vec<&(String, String)> = routes.iter().collect();
    ordered.sort_by_key(|(_, p)| ["/open", "/pause", "/close"].iter().any(|s| p.ends_with(s)));

    // 1. Property-based: hold requests of any shape, then any JSON and any bytes on any POST route.
    let posts: Vec<String> = routes
        .iter()
        .filter(|(m, _)| m == "post")
        .map(|(_, p)| p.clone())
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let holds = format!("/v1/events/{}/holds", c.ids.event);
    runner
        .run(&hold_items(), |items| {
            let r = rt.block_on(c.raw(
                Method::POST,
                &holds,
                Some(&c.buyer),
                Some("application/json"),
                items.to_string().into_bytes(),
            ));
            judge(&format!("hold {items}"), &r);
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 150,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(prop::sample::select(posts.clone()), json_value()), |(route, body)| {
            let path = fill(&route, &c.ids);
            let token = token_for(&path, &c.buyer);
            let r = rt.block_on(c.raw(
                Method::POST,
                &path,
                Some(&token),
                Some("application/json"),
                body.to_string().into_bytes(),
            ));
            judge(&format!("POST {path} {body}"), &r);
            Ok(())
        })
        .unwrap();
    runner
        .run(
            &(prop::sample::select(posts), prop::collection::vec(any::<u8>(), 0..256)),
            |(route, body)| {
                let path = fill(&route, &c.ids);
                let token = token_for(&path, &c.buyer);
                let r = rt.block_on(c.raw(
                    Method::POST,
                    &path,
                    Some(&token),
                    Some("application/json"),
                    body.clone(),
                ));
                judge(&format!("POST {path} {body:?}"), &r);
                Ok(())
            },
        )
        .unwrap();

    // 2. Table-driven, every route: every bad body (right and wrong content types, with and
    // without credentials), every bad path segment, every other method.
    rt.block_on(async {
        let bodies = bodies();
        for (m, template) in &ordered {
            let path = fill(template, &c.ids);
            let token = token_for(&path, &c.buyer);
            for body in &bodies {
                let r = c
                    .raw(method(m), &path, Some(&token), Some("application/json"), body.clone())
                    .await;
                judge(
                    &format!("{m} {path} {:?}", String::from_utf8_lossy(&body[..body.len().min(80)])),
                    &r,
                );
            }
            for ct in [
                None,
                Some("text/plain"),
                Some("application/json; charset=latin1"),
                Some("application/json/x"),
            ] {
                let r = c.raw(method(m), &path, Some(&token), ct, b"{}".to_vec()).await;
                judge(&format!("{m} {path} content-type {ct:?}"), &r);
            }
            let r = c
                .raw(method(m), &path, None, Some("application/json"), b"{}".to_vec())
                .await;
            judge(&format!("{m} {path} anonymous"), &r);
            if template.contains('{') {
                for seg in SEGMENTS.iter().copied().chain([&*"a".repeat(5_000)]) {
                    let p = fill_with(template, seg);
                    let r = c
                        .raw(method(m), &p, Some(&token), Some("application/json"), b"{}".to_vec())
                        .await;
                    judge(&format!("{m} {p}"), &r);
                    // A bad id is not found (unless the `{}` body was refused first).
                    assert!(
                        r.status == 404 || r.json["error"]["code"] == "invalid",
                        "{m} {p}: {} {}",
                        r.status,
                        r.text
                    );
                }
            }
            for other in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
                if routes.contains(&(other.to_lowercase(), template.to_string())) {
                    continue;
                }
                let r = c.raw(method(other), &path, Some(&token), None, Vec::new()).await;
                r.expect_error(405, "method_not_allowed");
            }
        }
    });

    // 3. Property-based path segments: any bytes, percent-encoded, in place of every id.
    let all: Vec<(String, String)> = routes.iter().cloned().collect();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(prop::sample::select(all), prop::collection::vec(any::<u8>(), 1..40)),
            |((m, template), bytes)| {
                let seg: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
                let path = fill_with(&template, &seg);
                let token = token_for(&path, &c.buyer);
                let r = rt.block_on(c.raw(
                    method(&m),
                    &path,
                    Some(&token),
                    Some("application/json"),
                    b"{}".to_vec(),
                ));
                judge(&format!("{m} {path}"), &r);
                Ok(())
            },
        )
        .unwrap();

    // 4. Queries and headers.
    rt.block_on(async {
        let app = &c.app;
        for q in [
            "after=-1",
            "after=abc",
            "after=18446744073709551616",
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=1e30",
            "limit=99999999999999999999999",
            "after=%FF",
            "x=1",
            "limit=1&limit=2",
            "after=",
            "%FF=%FF",
        ] {
            let r = app
                .send(Method::GET, &format!("/v1/admin/feed?{q}"), Some(ADMIN_TOKEN), None, &[])
                .await;
            judge(q, &r);
            assert_eq!(r.status / 100, 4, "feed?{q}: {}", r.text);
        }
        // The largest cursor is a cursor: an empty page.
        let r = app.feed_page("18446744073709551615", 100).await;
        assert_eq!(r.expect(200)["events"], json!([]));
        let huge = "v".repeat(100_000);
        let many: Vec<(String, String)> = (0..300).map(|i| (format!("x-h{i}"), "v".into())).collect();
        // On a fresh sale: the table above closed the target sale.
        let fresh = app.simple_sale(1000, json!({})).await;
        let holds = format!("/v1/events/{fresh}/holds");
        let one = items(0, 1);
        for headers in [
            vec![("x-junk".to_string(), huge.clone())],
            vec![("authorization".into(), format!("Bearer {huge}"))],
            vec![("idempotency-key".into(), huge.clone())],
            vec![("x-correlation-id".into(), huge.clone())],
            many,
        ] {
            let mut rb = app.request(Method::POST, &holds).bearer_auth(&c.buyer).json(&one);
            for (k, v) in &headers {
                rb = rb.header(k.as_str(), v.as_str());
            }
            match rb.send().await {
                // Headers over hyper's limits are refused before routing: a 431 (in the JSON
                // shape, see `protocol_errors`), or the connection closed. Never a 5xx.
                Ok(r) => {
                    let r = app.read_resp(r).await;
                    assert!(r.status < 500 && r.status != 409, "{}: {} {}", headers[0].0, r.status, r.text);
                    if r.status >= 400 {
                        r.assert_error_shape();
                    }
                }
                Err(e) => eprintln!("{} ({} headers): connection closed: {e}", headers[0].0, headers.len()),
            }
        }
        let bad_key = reqwest::header::HeaderValue::from_bytes(b"k\xff\xfe").unwrap();
        let rb = app.request(Method::POST, &holds).bearer_auth(&c.buyer).header("idempotency-key", bad_key).json(&one);
        app.execute(rb).await.expect_error(422, "invalid");
        let bad_auth = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
        let rb = app.request(Method::POST, &holds).header("authorization", bad_auth).json(&one);
        app.execute(rb).await.expect_error(401, "unauthorized");
        // Raw bytes that an HTTP client would escape: hyper refuses them before routing.
        for request in [
            &b"GET /v1/events/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
            b"GET /v1/events/evt_0 HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\x01\r\nConnection: close\r\n\r\n",
            b"POST /v1/admin/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!",
            b"POST /v1/admin/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
            b"POST /v1/admin/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
            b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GARBAGE\r\n\r\n",
        ] {
            if let Some(r) = app.raw(request).await {
                assert!(r.status < 500, "{:?} -> {}", String::from_utf8_lossy(request), r.text);
                if r.status >= 400 {
                    r.assert_error_shape();
                }
            }
        }
    });
    eprintln!("bad-input campaign: {} requests", c.sent.load(Ordering::Relaxed));
    // Whatever it was sent, every documented route answered only statuses its operation in the
    // OpenAPI document declares.
    assert_eq!(c.app.codes().undeclared(), Vec::<String>::new(), "undeclared answers");

    // 5. Nothing is corrupted: stats add up, the engine still takes commands, and a restart
    // (which replays the log and checks every invariant) gives the same state.
    let Campaign { mut app, ids, .. } = c;
    rt.block_on(async {
        let st = app.stats(&ids.event).await;
        check_stats(&st);
        let fresh = app.simple_sale(10, json!({})).await;
        app.place_hold(&app.buyer_token("after"), &fresh, &items(0, 1), None)
            .await
            .expect(201);
        assert_eq!(app.stats(&fresh).await["held"], 1);
        app.restart().await;
        assert_eq!(app.stats(&ids.event).await, st, "the same state after replay");
        assert_eq!(app.stats(&fresh).await["held"], 1);
        app.shutdown().await;
    });
}

/// Quotas never over capacity; totals are the sums of their parts.
fn check_stats(st: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    for q in st["quotas"].as_array().unwrap() {
        assert_eq!(
            n(&q["held"]) + n(&q["sold"]) + n(&q["available"]),
            n(&q["capacity"]),
            "quota over capacity, or availability off: {q}"
        );
    }
    let types = st["ticket_types"].as_array().unwrap();
    assert_eq!(n(&st["held"]), types.iter().map(|t| n(&t["held"])).sum::<u64>());
    assert_eq!(n(&st["sold"]), types.iter().map(|t| n(&t["sold"])).sum::<u64>());
}

/// Hold bodies with structure: mostly well-formed lines with extreme values.
fn hold_items() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        0i64..4,
        Just(-1i64),
        Just(100),
        Just(101),
        Just(u32::MAX as i64),
        Just(u32::MAX as i64 + 1),
        any::<i64>(),
    ];
    let line = (number.clone(), number, any::<bool>()).prop_map(|(t, q, extra)| {
        let mut l = json!({"ticket_type_id": t, "quantity": q});
        if extra {
            l["note"] = json!("x");
        }
        l
    });
    prop::collection::vec(line, 0..20).prop_map(|items| json!({ "items": items }))
}

const FIELDS: &[&str] = &[
    "items",
    "ticket_type_id",
    "quantity",
    "name",
    "currency",
    "hold_ttl_secs",
    "max_tickets_per_buyer",
    "opens_at",
    "closes_at",
    "price_minor",
    "max_per_order",
    "capacity",
    "ticket_type_ids",
    "buyer_id",
    "ttl_secs",
    "method",
    "ticket_code",
    "ticket_codes",
];

/// Any JSON, with keys mostly from the API's own field names so that it gets past the
/// first `deny_unknown_fields`.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        Just(json!(1e30)),
        ".{0,30}".prop_map(Value::from),
        Just(json!("EUR")),
        Just(json!("test")),
        Just(json!("2030-01-01T00:00:00Z")),
    ];
    let key = prop_oneof![prop::sample::select(FIELDS).prop_map(String::from), "[a-z_]{1,8}"];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
