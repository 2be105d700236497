//! SIGKILL during a queued sale: a real `taquilla serve` with a waiting room, buyers joining
//! while the queue moves, killed and restarted on the same data directory. After the restart:
//! every buyer whose join was answered is still queued or admitted; a queued buyer keeps their
//! place (admitted before them + position: positions move only as admission goes on); every
//! admission token issued before the kill still places a hold.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const BUYERS: usize = 60;

fn rfc3339_in(ms: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    taquilla_api::time::rfc3339(taquilla_domain::Timestamp(now + ms))
}

async fn statuses(s: &Server, event: &str, tokens: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in tokens {
        let r = s
            .buyer(t, Method::GET, &format!("/v1/events/{event}/waiting-room"), None)
            .await;
        out.push(r.expect(200).clone());
    }
    out
}

/// A queued buyer's place counted from the start of the queue: buyers admitted before them
/// plus their position, both from one read. It does not change as the queue moves (nobody
/// leaves here), so reads made at different moments compare.
fn place(status: &Value) -> u64 {
    status["room"]["admitted"].as_u64().unwrap() + status["position"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_queued_sale_keeps_every_place_and_every_admission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &[]).await;
    let event = s.simple_sale(10_000, json!({})).await;
    let room = json!({
        "prequeue_opens_at": rfc3339_in(-1_000),
        "opens_at": rfc3339_in(500),
        "admit_per_sec": 4,
        "session_secs": 600,
        "queue_max": 1_000,
    });
    s.admin(
        Method::PUT,
        &format!("/v1/admin/events/{event}/waiting-room"),
        Some(&room),
    )
    .await
    .expect(200);
    let tokens: Vec<String> = (0..BUYERS).map(|i| buyer_token(&format!("q{i}"))).collect();
    let join = format!("/v1/events/{event}/waiting-room");
    for t in &tokens {
        s.buyer(t, Method::POST, &join, None).await.expect(200);
    }
    // The queue moves: wait until a few are admitted, then kill it mid-way.
    wait_for("admissions", Duration::from_secs(30), || async {
        let st = statuses(&s, &event, &tokens[..1]).await;
        let admitted = st[0]["room"]["admitted"].as_u64().unwrap();
        (admitted >= 3).then_some(())
    })
    .await;
    let before = statuses(&s, &event, &tokens).await;
    s.kill();
    s = Server::start_in(dir.path(), &[]).await;
    let after = statuses(&s, &event, &tokens).await;

    let mut admissions: HashMap<usize, String> = HashMap::new();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        match (b["status"].as_str().unwrap(), a["status"].as_str().unwrap()) {
            ("admitted", "admitted") => {
                admissions.insert(i, b["admission_token"].as_str().unwrap().to_string());
            }
            ("queued", "queued") => assert_eq!(place(a), place(b), "q{i} lost its place: {b} then {a}"),
            // Admitted since the last read before the kill (the queue kept moving).
            ("queued", "admitted") => {}
            (x, y) => panic!("q{i}: {x} before the kill, {y} after"),
        }
    }
    assert!(admissions.len() >= 3);
    // Every admission token issued before the kill still holds.
    let body = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    for (i, admission) in &admissions {
        s.send(
            Method::POST,
            &format!("/v1/events/{event}/holds"),
            Some(&tokens[*i]),
            Some(&body),
            &[("admission-token", admission)],
        )
        .await
        .expect(201);
    }
    let status = s.signal_and_wait(Signal::SIGTERM);
    assert!(status.success(), "graceful exit: {status:?}");
}
