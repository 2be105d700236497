//! The waiting room over HTTP: the organiser configures it, buyers join, read their place and
//! leave; admitted buyers hold with their admission token and nobody else can; limits.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const ONE: &str = r#"{"items": [{"ticket_type_id": 0, "quantity": 1}]}"#;

fn one() -> Value {
    serde_json::from_str(ONE).unwrap()
}

/// A sale of `capacity` with a room whose pre-queue is open now and which opens in 10 s.
async fn room_sale(app: &TestApp, capacity: u32, queue_max: u32) -> String {
    let event = app.simple_sale(capacity, json!({})).await;
    let body = json!({
        "prequeue_opens_at": app.time_in(Duration::ZERO),
        "opens_at": app.time_in(Duration::from_secs(10)),
        "admit_per_sec": 10,
        "session_secs": 120,
        "queue_max": queue_max,
    });
    let room = app.configure_room(&event, &body).await;
    let view = room.expect(200);
    assert_eq!(view["seed_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(view["seed"], Value::Null, "the seed stays secret while the sale runs");
    event
}

/// Joins buyers `b0..bn`, opens the room and lets a second of admissions pass.
async fn open_room(app: &TestApp, event: &str, n: usize) -> Vec<String> {
    let tokens: Vec<String> = (0..n).map(|i| app.buyer_token(&format!("b{i}"))).collect();
    for t in &tokens {
        let st = app.join_room(t, event).await;
        assert_eq!(st.expect(200)["status"], "prequeued");
    }
    app.advance(Duration::from_secs(10));
    app.tick().await;
    for _ in 0..10 {
        app.advance(Duration::from_millis(100));
        app.tick().await;
    }
    tokens
}

#[tokio::test]
async fn buyers_queue_get_admitted_and_hold_with_their_token_only() {
    admission(Codes::default()).await;
}

pub async fn admission(codes: Codes) {
    let app = spawn_app(AppOptions::default().manual_clock().codes(&codes)).await;
    let event = room_sale(&app, 100, 1000).await;
    let tokens = open_room(&app, &event, 30).await;
    let mut admitted = Vec::new();
    let mut positions = Vec::new();
    for t in &tokens {
        let st = app.room_status(t, &event).await.expect(200).clone();
        match st["status"].as_str().unwrap() {
            "admitted" => admitted.push((t.clone(), st["admission_token"].as_str().unwrap().to_string())),
            "queued" => {
                positions.push(st["position"].as_u64().unwrap());
                assert_eq!(st["odds"], "likely");
                assert_eq!(st["ahead"].as_u64().unwrap() + 1, st["position"].as_u64().unwrap());
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(admitted.len(), 10, "10 per second");
    positions.sort_unstable();
    assert_eq!(positions, (1..=20).collect::<Vec<u64>>());
    // Without a token, or with someone else's: 403 admission_required.
    let (t0, a0) = &admitted[0];
    let (t1, _) = &admitted[1];
    app.place_hold(t0, &event, &one(), None)
        .await
        .expect_error(403, "admission_required");
    app.place_admitted_hold(t1, &event, &one(), a0)
        .await
        .expect_error(403, "admission_required");
    app.place_admitted_hold(t0, &event, &one(), "a1.0.garbage")
        .await
        .expect_error(403, "admission_required");
    // With their own: held, checked out; the admission is then used and its token refused.
    let hold = app.place_admitted_hold(t0, &event, &one(), a0).await.expect_id(201);
    app.checkout(t0, &hold, None).await.expect(201);
    assert_eq!(app.room_status(t0, &event).await.expect(200)["status"], "used");
    app.place_admitted_hold(t0, &event, &one(), a0)
        .await
        .expect_error(403, "admission_required");
}

#[tokio::test]
async fn joining_is_idempotent_leaving_frees_the_place_and_limits_answer() {
    join_leave_limits(Codes::default()).await;
}

pub async fn join_leave_limits(codes: Codes) {
    let app = spawn_app(AppOptions::default().manual_clock().codes(&codes)).await;
    let event = room_sale(&app, 100, 2).await;
    let (a, b, c) = (app.buyer_token("a"), app.buyer_token("b"), app.buyer_token("c"));
    app.join_room(&a, &event).await.expect(200);
    app.join_room(&a, &event).await.expect(200);
    app.join_room(&b, &event).await.expect(200);
    let full = app.join_room(&c, &event).await;
    full.expect_error(503, "queue_full");
    assert!(full.header("retry-after").is_some());
    app.leave_room(&a, &event).await.expect(200);
    assert_eq!(app.room_status(&a, &event).await.expect(200)["status"], "left");
    app.leave_room(&a, &event).await.expect_error(409, "conflict");
    app.join_room(&c, &event).await.expect(200);
    // A sale without a room has no room to join; a room cannot change once joined.
    let plain = app.simple_sale(5, json!({})).await;
    app.join_room(&a, &plain).await.expect_error(404, "not_found");
    let body = json!({"prequeue_opens_at": app.time_in(Duration::ZERO), "opens_at": app.time_in(Duration::ZERO),
        "admit_per_sec": 1, "session_secs": 60, "queue_max": 5});
    app.configure_room(&event, &body).await.expect_error(409, "conflict");
    let bad = json!({"prequeue_opens_at": "soon", "opens_at": app.time_in(Duration::ZERO),
        "admit_per_sec": 0, "session_secs": 60, "queue_max": 5});
    app.configure_room(&plain, &bad).await.expect_error(422, "invalid");
}

#[tokio::test]
async fn the_queue_and_its_tokens_survive_a_restart_and_sold_out_is_told_at_once() {
    let mut app = spawn_app(AppOptions::default().manual_clock()).await;
    let event = room_sale(&app, 3, 1000).await;
    let tokens = open_room(&app, &event, 8).await;
    let before: Vec<Value> = {
        let mut v = Vec::new();
        for t in &tokens {
            v.push(app.room_status(t, &event).await.expect(200).clone());
        }
        v
    };
    app.restart().await;
    let mut admitted = Vec::new();
    for (t, was) in tokens.iter().zip(&before) {
        let now = app.room_status(t, &event).await.expect(200).clone();
        assert_eq!(now["status"], was["status"]);
        assert_eq!(now["position"], was["position"]);
        if was["status"] == "admitted" {
            admitted.push((t.clone(), was["admission_token"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(admitted.len(), 3, "3 tickets, one each");
    // The tokens issued before the restart still work; buying everything sells out.
    for (t, a) in &admitted {
        let hold = app.place_admitted_hold(t, &event, &one(), a).await.expect_id(201);
        let order = app.checkout(t, &hold, None).await.expect_id(201);
        app.confirm_payment(&order, &format!("cash-{order}")).await.expect(200);
    }
    for t in &tokens {
        let st = app.room_status(t, &event).await.expect(200).clone();
        assert_eq!(st["odds"], "sold_out", "{st}");
    }
}
