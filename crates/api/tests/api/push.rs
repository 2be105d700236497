//! Live push (`GET /v1/events/{id}/stream`) with real HTTP clients against the real server:
//! updates in order, `Last-Event-ID`, a stalled reader dropped while others go on, the
//! subscriber limits, streams outliving the idle timeout, and shutdown ending streams. The
//! heartbeat is timed on paused time in `push`'s unit tests.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::{Value, json};
use taquilla_api::{ConnectionLimits, PushLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::helpers::{AppOptions, Codes, TestApp, items, spawn_app};

/// Longest a test waits for something the server must do soon (a guard against hanging, not
/// a measure: the assertions are on what arrives, never on when).
const PATIENCE: Duration = Duration::from_secs(30);

/// One server-sent event (or comment) as the client parsed it.
#[derive(Debug, Default)]
struct Frame {
    event: Option<String>,
    id: Option<u64>,
    data: Option<String>,
    comment: Option<String>,
    retry: Option<u64>,
}

impl Frame {
    fn parse(text: &str) -> Frame {
        let mut f = Frame::default();
        for line in text.lines() {
            if let Some(c) = line.strip_prefix(':') {
                f.comment = Some(c.trim().to_string());
            } else if let Some((field, value)) = line.split_once(": ") {
                match field {
                    "event" => f.event = Some(value.to_string()),
                    "id" => f.id = value.parse().ok(),
                    "data" => f.data = Some(value.to_string()),
                    "retry" => f.retry = value.parse().ok(),
                    other => panic!("unexpected field {other}"),
                }
            }
        }
        f
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("data")).expect("JSON data")
    }
}

/// A subscriber over reqwest: the response's bytes, cut into events.
struct Subscriber {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: String,
}

impl Subscriber {
    async fn open(app: &TestApp, event: &str, headers: &[(&str, &str)]) -> Subscriber {
        Subscriber::open_path(app, &format!("/v1/events/{event}/stream"), headers).await
    }

    async fn open_path(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Subscriber {
        let mut rb = app.http.get(app.url(path));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("request");
        Subscriber {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next frame; `None` when the server ended the stream.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let frame = Frame::parse(&self.buf[..at]);
                self.buf.drain(..at + 2);
                return Some(frame);
            }
            let chunk = timeout(PATIENCE, self.body.next()).await.expect("a frame in time")?;
            let Ok(chunk) = chunk else {
                return None;
            };
            self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `availability` event (skipping the `retry` preamble and comments).
    async fn availability(&mut self) -> Frame {
        loop {
            let f = self.next().await.expect("the stream goes on");
            if f.event.as_deref() == Some("availability") {
                return f;
            }
            assert!(f.event.is_none(), "unexpected event {f:?}");
        }
    }
}

/// Waits until `done` holds, looking every 10 ms; fails naming `what` after `patience`.
async fn until(patience: Duration, what: &str, done: impl Fn() -> bool) {
    timeout(patience, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {patience:?}"));
}

async fn app_with(options: AppOptions) -> (TestApp, String, String) {
    let app = spawn_app(options).await;
    let event = app.simple_sale(1_000, json!({})).await;
    let token = app.buyer_token("ana");
    (app, event, token)
}

fn available_of(data: &Value) -> (u64, u64, u64) {
    let t = &data["ticket_types"][0];
    (
        t["available"].as_u64().expect("available"),
        t["held"].as_u64().expect("held"),
        t["sold"].as_u64().expect("sold"),
    )
}

#[tokio::test]
async fn updates_arrive_in_order_one_render_per_change_for_every_subscriber() {
    let (app, event, token) = app_with(AppOptions::default()).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(Subscriber::open(&app, &event, &[]).await);
    }
    let first = subs[0].next().await.expect("a first frame");
    assert_eq!(first.retry, Some(1000), "the stream starts with the reconnection delay");
    assert_eq!(subs[0].status, 200);
    assert_eq!(subs[0].headers["content-type"], "text/event-stream");
    assert_eq!(subs[0].headers["cache-control"], "no-cache");
    let now = subs[0].availability().await;
    assert_eq!(now.json()["version"].as_u64(), now.id, "id = version");
    assert_eq!(available_of(&now.json()), (1_000, 0, 0));
    assert_eq!(now.json()["status"], "open");
    assert_eq!(now.json()["quotas"][0]["capacity"], 1_000);
    for s in &mut subs[1..] {
        assert_eq!(s.availability().await.id, now.id, "everyone starts from the same state");
    }
    let renders = app.state().push.renders();

    let holds = 20;
    for _ in 0..holds {
        app.place_hold(&token, &event, &items(0, 2), None).await.expect(201);
    }
    // Every subscriber sees versions only grow, ending at the state after the last hold.
    for s in &mut subs {
        let mut last = now.id.expect("id");
        loop {
            let f = s.availability().await;
            let id = f.id.expect("an id");
            assert!(id > last, "versions strictly increase: {id} after {last}");
            last = id;
            if available_of(&f.json()) == (1_000 - 2 * holds, 2 * holds, 0) {
                assert_eq!(f.json()["quotas"][0]["held"], 2 * holds);
                break;
            }
        }
    }
    let rendered = app.state().push.renders() - renders;
    assert!(
        (1..=holds).contains(&rendered),
        "{rendered} renders for {holds} changes and 3 subscribers: one per (coalesced) change"
    );
}

/// A change that moves the sale's version but nothing an availability event shows (a price
/// edit) is not pushed: the next event a subscriber gets is the next visible change.
#[tokio::test]
async fn a_change_nobody_can_see_is_not_pushed() {
    let (app, event, token) = app_with(AppOptions::default()).await;
    let mut sub = Subscriber::open(&app, &event, &[]).await;
    let first = sub.availability().await;
    let renders = app.state().push.renders();
    app.edit_ticket_type(&event, 0, &serde_json::json!({"price_minor": 4200}))
        .await
        .expect(200);
    // The feed renders the edited sale (waiting on the hub's own count, not on a guess).
    until(PATIENCE, "the edit was rendered", || {
        app.state().push.renders() > renders
    })
    .await;
    app.place_hold(&token, &event, &items(0, 2), None).await.expect(201);
    let next = sub.availability().await;
    assert_eq!(
        available_of(&next.json()),
        (998, 2, 0),
        "the price edit (same availability) was not sent"
    );
    assert!(next.id > first.id);
}

#[tokio::test]
async fn last_event_id_resumes_without_resending_the_current_state() {
    let (app, event, token) = app_with(AppOptions::default()).await;
    let mut first = Subscriber::open(&app, &event, &[]).await;
    let seen = first.availability().await.id.expect("id");
    drop(first);

    // Current: nothing again; the first availability is the next change.
    let current = seen.to_string();
    let mut resumed = Subscriber::open(&app, &event, &[("Last-Event-ID", &current)]).await;
    app.place_hold(&token, &event, &items(0, 1), None).await.expect(201);
    let next = resumed.availability().await;
    assert!(next.id.expect("id") > seen, "the known state was not sent again");
    assert_eq!(available_of(&next.json()), (999, 1, 0));

    // Older (or unreadable): the current state at once.
    for last in [seen.to_string(), "0".into(), "not-a-version".into()] {
        let mut behind = Subscriber::open(&app, &event, &[("Last-Event-ID", &last)]).await;
        let now = behind.availability().await;
        assert_eq!(now.id, next.id, "Last-Event-ID {last}: the current state at once");
        assert_eq!(available_of(&now.json()), (999, 1, 0));
    }
}

#[tokio::test]
async fn a_stalled_reader_is_dropped_while_others_keep_receiving() {
    let limits = ConnectionLimits {
        write_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let (app, event, token) = app_with(AppOptions::default().connections(limits)).await;
    // Big updates fill the stalled reader's socket buffers sooner.
    for n in 1..200 {
        let body = json!({"name": format!("Type {n}"), "price_minor": 1000});
        app.create_ticket_type(&event, &body).await.expect(201);
    }
    let mut reader = Subscriber::open(&app, &event, &[]).await;
    let mut last = reader.availability().await.id.expect("id");

    // A raw client with a small receive buffer that asks for the stream and never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stalled = socket.connect(app.addr()).await.expect("connect");
    let request = format!("GET /v1/events/{event}/stream HTTP/1.1\r\nHost: test\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.expect("request sent");
    timeout(PATIENCE, async {
        while app.state().push.subscribers() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both subscribed");

    // Change the sale, paced by what the good reader receives, until the stalled one is gone.
    let mut changes = 0;
    while app.state().push.subscribers() > 1 {
        app.place_hold(&token, &event, &items(0, 1), None).await.expect(201);
        changes += 1;
        assert!(changes < 900, "the stalled reader was never dropped");
        loop {
            let f = reader.availability().await;
            let id = f.id.expect("id");
            assert!(id > last, "in order");
            last = id;
            if available_of(&f.json()).1 == changes {
                break;
            }
        }
    }
    // The good reader goes on.
    app.place_hold(&token, &event, &items(0, 1), None).await.expect(201);
    loop {
        let f = reader.availability().await;
        if available_of(&f.json()).1 == changes + 1 {
            break;
        }
    }
    // The stalled client finds its connection closed once it reads what was buffered.
    let mut sink = vec![0u8; 64 * 1024];
    timeout(PATIENCE, async {
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the stalled connection was closed");
}

#[tokio::test]
async fn subscribers_past_the_limits_get_503_too_many_subscribers() {
    subscriber_limits(Codes::default()).await;
}

/// Two per sale, three in all: the third on a sale and the fourth in all are refused with
/// `503 too_many_subscribers` and `Retry-After`; one leaving frees a place.
pub async fn subscriber_limits(codes: Codes) {
    let limits = PushLimits {
        subscribers_max: 3,
        subscribers_per_sale_max: 2,
    };
    let (app, a, _) = app_with(AppOptions::default().push(limits).codes(&codes)).await;
    let b = app.simple_sale(10, json!({})).await;
    let mut on_a = vec![
        Subscriber::open(&app, &a, &[]).await,
        Subscriber::open(&app, &a, &[]).await,
    ];
    for s in &mut on_a {
        assert_eq!(s.status, 200);
    }
    let refused = app
        .send(reqwest::Method::GET, &format!("/v1/events/{a}/stream"), None, None, &[])
        .await;
    let e = refused.expect_error(503, "too_many_subscribers");
    assert!(e["message"].as_str().unwrap().contains("this sale streams to 2"), "{e}");
    assert_eq!(refused.header("retry-after"), Some("1"));

    let mut on_b = Subscriber::open(&app, &b, &[]).await;
    assert_eq!(on_b.status, 200);
    on_b.availability().await;
    let refused = app
        .send(reqwest::Method::GET, &format!("/v1/events/{b}/stream"), None, None, &[])
        .await;
    let e = refused.expect_error(503, "too_many_subscribers");
    assert!(
        e["message"].as_str().unwrap().contains("this server streams to 3"),
        "{e}"
    );

    // A subscriber that leaves frees its place.
    drop(on_a.pop());
    until(PATIENCE, "the server saw the subscriber leave", || {
        app.state().push.subscribers() <= 2
    })
    .await;
    assert_eq!(Subscriber::open(&app, &b, &[]).await.status, 200);
}

#[tokio::test]
async fn bad_requests_to_the_stream_are_json_errors() {
    let (app, event, _) = app_with(AppOptions::default()).await;
    let get = |path: String| {
        let app = &app;
        async move { app.send(reqwest::Method::GET, &path, None, None, &[]).await }
    };
    get("/v1/events/evt_999/stream".into())
        .await
        .expect_error(404, "not_found");
    get("/v1/events/nonsense/stream".into())
        .await
        .expect_error(404, "not_found");
    get(format!("/v1/events/{event}/stream?token=forged"))
        .await
        .expect_error(401, "unauthorized");
    let r = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/events/{event}/stream"),
            Some("v1.forged.1.x"),
            None,
            &[],
        )
        .await;
    r.expect_error(401, "unauthorized");
    // A valid buyer token (query or header) is taken; without a waiting room no `room` event.
    let token = app.buyer_token("ana");
    let mut s = Subscriber::open(&app, &event, &[("Authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(s.status, 200);
    s.availability().await;
    let mut s = Subscriber::open_path(&app, &format!("/v1/events/{event}/stream?token={token}"), &[]).await;
    assert_eq!(s.status, 200);
    s.availability().await;
}

#[tokio::test]
async fn a_stream_outlives_the_idle_timeout() {
    let limits = ConnectionLimits {
        idle_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let (app, event, token) = app_with(AppOptions::default().connections(limits)).await;
    let mut s = Subscriber::open(&app, &event, &[]).await;
    s.availability().await;
    // Real time: the idle timeout watches a real socket. Twice the timeout with no request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.place_hold(&token, &event, &items(0, 1), None).await.expect(201);
    assert_eq!(available_of(&s.availability().await.json()), (999, 1, 0));
    // The stream's connection is still read (busy, not idle-closed): the server sees the client
    // leave at once, not only when its next heartbeat fails to be written.
    drop(s);
    let before_heartbeat = taquilla_api::limits::PUSH_HEARTBEAT / 2;
    until(
        before_heartbeat,
        "the server saw the client leave before any heartbeat",
        || app.state().push.subscribers() == 0,
    )
    .await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let (app, event, _) = app_with(AppOptions::default()).await;
    let mut s = Subscriber::open(&app, &event, &[]).await;
    s.availability().await;
    timeout(PATIENCE, app.shutdown())
        .await
        .expect("shutdown does not wait for streams");
    assert!(s.next().await.is_none(), "the stream ended");
}

#[tokio::test]
async fn a_buyer_token_adds_the_buyers_waiting_room_status() {
    let app = spawn_app(AppOptions::default().manual_clock()).await;
    let event = app.simple_sale(10, json!({})).await;
    let room = json!({
        "prequeue_opens_at": app.time_in(Duration::ZERO),
        "opens_at": app.time_in(Duration::from_secs(10)),
        "admit_per_sec": 10,
        "session_secs": 120,
        "queue_max": 100,
    });
    app.configure_room(&event, &room).await.expect(200);
    let ana = app.buyer_token("ana");
    assert_eq!(app.join_room(&ana, &event).await.expect(200)["status"], "prequeued");

    let mut anonymous = Subscriber::open(&app, &event, &[]).await;
    let mut s = Subscriber::open_path(&app, &format!("/v1/events/{event}/stream?token={ana}"), &[]).await;
    assert_eq!(s.status, 200);
    let mut room_events = Vec::new();
    let mut admitted = None;
    // The draw at opens_at, then admission ticks: each moves the sale's version.
    app.advance(Duration::from_secs(10));
    app.tick().await;
    for _ in 0..10 {
        app.advance(Duration::from_millis(100));
        app.tick().await;
    }
    while admitted.is_none() {
        let f = s.next().await.expect("the stream goes on");
        if f.event.as_deref() == Some("room") {
            assert_eq!(f.id, None, "room events do not move Last-Event-ID");
            let status = f.json();
            if status["status"] == "admitted" {
                admitted = Some(status.clone());
            }
            room_events.push(status["status"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(
        room_events.first().map(String::as_str),
        Some("prequeued"),
        "the status at once"
    );
    let admitted = admitted.expect("admitted");
    let token = admitted["admission_token"].as_str().expect("an admission token");
    // The token is the one the polling endpoint gives.
    let polled = app.room_status(&ana, &event).await;
    assert_eq!(polled.expect(200)["admission_token"].as_str(), Some(token));
    // Without a buyer token: availability only (`availability()` refuses any other event).
    // The draw and the admissions moved the sale but not its availability: the anonymous
    // stream's next event is ana's hold.
    anonymous.availability().await;
    app.place_admitted_hold(&ana, &event, &items(0, 2), token)
        .await
        .expect(201);
    let f = anonymous.availability().await;
    assert!(f.id.is_some());
    assert_eq!(available_of(&f.json()), (8, 2, 0));
}
