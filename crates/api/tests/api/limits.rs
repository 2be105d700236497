//! Abuse limits over real HTTP and real TCP: rate limits per buyer and per client address
//! (`429 rate_limited` with `Retry-After`, before any work is queued), the bounded key table,
//! connection limits (maximum open, header read timeout, idle timeout) and CORS.
//!
//! The rate limits run on a manual clock ([`LimitClock::manual`]): buckets refill only when a
//! test says so. The connection timeouts need real sockets and so real time: they are short,
//! and each test asserts the outcome (the connection closed, not before its timeout) with a
//! generous upper bound.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use taquilla_api::{Bucket, ConnectionLimits, CorsSettings, LimitClock, RateLimitSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Far longer than any answer takes: only a broken server waits this long.
const GENEROUS: Duration = Duration::from_secs(10);

fn bucket(per_sec: u32, burst: u32) -> Option<Bucket> {
    Some(Bucket {
        per_sec: NonZeroU32::new(per_sec).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    })
}

fn limits(buyer: Option<Bucket>, address: Option<Bucket>, clock: &LimitClock) -> RateLimitSettings {
    RateLimitSettings {
        buyer,
        address,
        clock: clock.clone(),
        ..RateLimitSettings::default()
    }
}

#[track_caller]
fn assert_rate_limited(r: &Resp, retry_after: &str) {
    r.expect_error(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some(retry_after), "{}", r.text);
}

#[tokio::test]
async fn a_buyer_over_its_rate_gets_429_before_any_work_is_queued() {
    buyer_rate_limit(Codes::default()).await;
}

/// A hold/release loop by one buyer: the burst passes, then `429` with `Retry-After`, and the
/// refused hold took nothing; other buyers and the organiser go on; the bucket refills.
pub async fn buyer_rate_limit(codes: Codes) {
    let clock = LimitClock::manual();
    let app = spawn_app(
        AppOptions::default()
            .codes(&codes)
            .metrics()
            .rate_limits(limits(bucket(1, 4), None, &clock)),
    )
    .await;
    let event = app.simple_sale(100, json!({})).await;
    let ana = app.buyer_token("ana");
    let hold = app.place_hold(&ana, &event, &items(0, 1), None).await.expect_id(201);
    app.release_hold(&ana, &hold).await.expect(200);
    let active = app.place_hold(&ana, &event, &items(0, 1), None).await.expect_id(201);
    app.get_hold(&ana, &active).await.expect(200);
    // The burst of 4 is spent.
    let refused = app.place_hold(&ana, &event, &items(0, 1), None).await;
    assert_rate_limited(&refused, "1");
    assert_eq!(app.stats(&event).await["held"], 1, "the refused hold took nothing");
    assert_rate_limited(&app.get_hold(&ana, &active).await, "1");

    // Another buyer has a bucket of its own; the organiser has none.
    app.place_hold(&app.buyer_token("bob"), &event, &items(0, 1), None)
        .await
        .expect(201);
    for _ in 0..10 {
        app.get_stats(&event).await.expect(200);
    }

    clock.advance(Duration::from_secs(1));
    app.place_hold(&ana, &event, &items(0, 1), None).await.expect(201);
    assert_rate_limited(&app.place_hold(&ana, &event, &items(0, 1), None).await, "1");

    let m = app.metrics().await;
    assert!(
        m.text.contains("taquilla_rate_limited_total{scope=\"buyer\"}"),
        "/metrics lacks the buyer rate limit counter:\n{}",
        m.text
    );
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_on_public_and_buyer_routes_but_not_ops_or_admin() {
    let clock = LimitClock::manual();
    let app = spawn_app(
        AppOptions::default()
            .metrics()
            .rate_limits(limits(None, bucket(1, 3), &clock)),
    )
    .await;
    let event = app.simple_sale(10, json!({})).await;
    for _ in 0..3 {
        app.list_sales().await.expect(200);
    }
    assert_rate_limited(&app.list_sales().await, "1");
    assert_rate_limited(&app.get_sale(&event).await, "1");
    // Every buyer behind this address shares its bucket.
    let bob = app.buyer_token("bob");
    assert_rate_limited(&app.place_hold(&bob, &event, &items(0, 1), None).await, "1");
    assert_eq!(app.stats(&event).await["held"], 0, "the refused hold took nothing");
    // Probes, scrapers and the organiser are never limited by address.
    for _ in 0..5 {
        app.healthz().await.expect(200);
        app.readyz().await.expect(200);
        app.get_stats(&event).await.expect(200);
    }
    let m = app.metrics().await;
    assert!(
        m.text.contains("taquilla_rate_limited_total{scope=\"address\"}"),
        "/metrics lacks the address rate limit counter:\n{}",
        m.text
    );
    clock.advance(Duration::from_secs(1));
    app.place_hold(&bob, &event, &items(0, 1), None).await.expect(201);
}

#[tokio::test]
async fn many_distinct_buyers_do_not_grow_the_rate_limit_table_past_its_bound() {
    let clock = LimitClock::manual();
    let keys_max = 200;
    let app = spawn_app(AppOptions::default().rate_limits(RateLimitSettings {
        keys_max,
        ..limits(bucket(1, 1), None, &clock)
    }))
    .await;
    let mut largest = 0;
    for i in 0..3 * keys_max {
        // An unknown hold: the buyer's bucket is taken, then 404.
        let token = app.buyer_token(&format!("buyer-{i}"));
        app.get_hold(&token, "hld_1_1").await.expect(404);
        largest = largest.max(app.state().rate_limit_keys().0);
    }
    assert!(largest <= keys_max, "{largest} buyers tracked, bound {keys_max}");
    assert!(largest > keys_max / 2, "the table did fill: {largest}");
}

#[tokio::test]
async fn a_rate_limited_answer_carries_cors_headers_for_an_allowed_origin() {
    let clock = LimitClock::manual();
    let app = spawn_app(
        AppOptions::default()
            .rate_limits(limits(None, bucket(1, 1), &clock))
            .cors(CorsSettings::parse(&["https://shop.example"]).unwrap()),
    )
    .await;
    let origin = [("origin", "https://shop.example")];
    app.send(Method::GET, "/v1/events", None, None, &origin)
        .await
        .expect(200);
    let r = app.send(Method::GET, "/v1/events", None, None, &origin).await;
    assert_rate_limited(&r, "1");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example"),
        "a browser script must be able to read the 429"
    );
    let exposed = r.header("access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test]
async fn cors_preflights_and_simple_requests_from_allowed_origins_only() {
    let app = spawn_app(
        AppOptions::default().cors(CorsSettings::parse(&["https://shop.example,http://localhost:3000"]).unwrap()),
    )
    .await;
    let event = app.simple_sale(10, json!({})).await;
    let holds = format!("/v1/events/{event}/holds");
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, &holds)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key, prefer",
            )
    };
    let r = app.execute(preflight("https://shop.example")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://shop.example"));
    let methods = r.header("access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    let headers = r.header("access-control-allow-headers").unwrap_or_default();
    for h in ["authorization", "content-type", "idempotency-key", "prefer"] {
        assert!(headers.contains(h), "{h} not allowed: {headers}");
    }
    assert_eq!(r.header("access-control-max-age"), Some("600"));

    let r = app.execute(preflight("https://evil.example")).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "another origin is not allowed"
    );

    // A real request from the page: the answer names the origin; the hold is made.
    let ana = app.buyer_token("ana");
    let r = app
        .send(
            Method::POST,
            &holds,
            Some(&ana),
            Some(&items(0, 1)),
            &[("origin", "http://localhost:3000")],
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://localhost:3000"));
    let exposed = r.header("access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("x-correlation-id"), "{exposed}");
}

#[tokio::test]
async fn without_allowed_origins_there_are_no_cors_headers() {
    let app = spawn_app(AppOptions::default()).await;
    let r = app
        .send(
            Method::GET,
            "/v1/events",
            None,
            None,
            &[("origin", "https://shop.example")],
        )
        .await;
    r.expect(200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = app
        .execute(
            app.request(Method::OPTIONS, "/v1/events")
                .header("origin", "https://shop.example")
                .header("access-control-request-method", "GET"),
        )
        .await;
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("access-control-allow-origin"), None);
}

// ---------- connections: real TCP ----------

fn connection_limits(max_connections: usize, header_ms: u64, idle_ms: u64) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        header_read_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        ..ConnectionLimits::default()
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: taquilla\r\n\r\n";

/// Reads one HTTP/1.1 answer with a `Content-Length` body; returns its head and body.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(GENEROUS, s.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before a whole answer: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits for the server to close `s`: end of stream, or a reset. Returns when it did.
async fn closed_by_server(s: &mut TcpStream) -> Instant {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(GENEROUS, s.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Instant::now(),
        Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        Err(_) => panic!("the server kept the connection open for {GENEROUS:?}"),
    }
}

async fn served(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(HEALTHZ).await.expect("write");
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    s
}

#[tokio::test]
async fn connections_past_the_maximum_wait_until_a_slot_frees() {
    let app = spawn_app(AppOptions::default().connections(connection_limits(2, 10_000, 60_000))).await;
    let first = served(app.addr()).await;
    let _second = served(app.addr()).await;
    // The kernel completes the handshake; the server does not take the connection yet.
    let mut third = TcpStream::connect(app.addr()).await.expect("connect");
    third.write_all(HEALTHZ).await.expect("write");
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte))
            .await
            .is_err(),
        "a third connection was served past the maximum of 2"
    );
    drop(first);
    let answer = read_answer(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_slowloris_client_is_closed_after_the_header_timeout_and_frees_its_slot() {
    let header = Duration::from_millis(500);
    let app = spawn_app(AppOptions::default().connections(connection_limits(1, 500, 60_000))).await;
    let mut slow = TcpStream::connect(app.addr()).await.expect("connect");
    let started = Instant::now();
    // One byte of an endless head every 50 ms: never idle, never a whole head.
    let head = b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let closed = 'send: {
        for b in head.iter() {
            if slow.write_all(&[*b]).await.is_err() {
                break 'send Instant::now();
            }
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut byte)).await {
                Err(_) => {}
                Ok(Ok(0) | Err(_)) => break 'send Instant::now(),
                Ok(Ok(_)) => panic!("the server answered a head it never got whole"),
            }
        }
        panic!("the whole trickle ({} ms) went through", head.len() * 50)
    };
    assert!(
        closed - started >= header,
        "closed after {:?}, before the header timeout",
        closed - started
    );
    // The only slot is free again.
    drop(served(app.addr()).await);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(1_000);
    let app = spawn_app(AppOptions::default().connections(connection_limits(4, 300, 1_000))).await;
    // After an answer on keep-alive.
    let mut s = served(app.addr()).await;
    let answered = Instant::now();
    let closed = closed_by_server(&mut s).await;
    assert!(
        closed - answered >= idle,
        "closed {:?} after the answer: the idle timeout is {idle:?}",
        closed - answered
    );
    // Before any request.
    let mut silent = TcpStream::connect(app.addr()).await.expect("connect");
    let connected = Instant::now();
    let closed = closed_by_server(&mut silent).await;
    assert!(
        closed - connected >= idle,
        "closed {:?} after connecting",
        closed - connected
    );
}

#[tokio::test]
async fn a_request_in_progress_outlives_the_header_and_idle_timeouts() {
    let app = spawn_app(AppOptions::default().connections(connection_limits(4, 200, 200))).await;
    let mut s = TcpStream::connect(app.addr()).await.expect("connect");
    // A whole head, then the body well after both timeouts: the handler is reading it.
    s.write_all(
        format!(
            "POST /v1/admin/events HTTP/1.1\r\nHost: taquilla\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write the head");
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.write_all(b"{}").await.expect("the connection is still open");
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("\"invalid\""), "{answer}");
}
