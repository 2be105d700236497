//! SIGKILL during a burst of holds over HTTP, several times on one data directory. After each
//! restart, precisely:
//!
//! - every hold answered `201` is there, with the id, buyer and items of the answer;
//! - every hold in the log comes from a request we sent, with that request's items, and no
//!   request made two holds (each request has its own buyer id, so the feed's `buyer_id`
//!   names the request);
//! - a request that got no answer (in flight at the kill, or refused after it) may or may not
//!   have been applied: both are correct, since the client cannot know. So the number of holds
//!   lies between the `201`s and the requests sent, and stats equal the log exactly;
//! - retrying an unanswered request with its `Idempotency-Key` returns the hold it made if it
//!   was applied (the idempotency table survives the crash), or makes it now.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const KILLS: usize = 4;
const CLIENTS: usize = 48;

struct Req {
    buyer: String,
    token: String,
    body: Value,
    /// Sent before the kill signal was given (so possibly in flight at the kill).
    before_kill: bool,
    answer: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_holds_loses_no_201_and_invents_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &[]).await;
    let event = s.simple_sale(10_000_000, json!({"hold_ttl_secs": 86_400})).await;
    let reqs: Arc<Mutex<Vec<Req>>> = Arc::default();
    let mut in_flight_at_kills = 0;
    for round in 0..KILLS {
        let killed = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let url = s.url.clone();
        let clients = (0..CLIENTS).map(|c| {
            let (reqs, killed, acked, url, event) =
                (reqs.clone(), killed.clone(), acked.clone(), url.clone(), event.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let buyer = format!("r{round}-c{c}-n{n}");
                    let token = buyer_token(&buyer);
                    let qty = 1 + (n % 3) as u64;
                    let body = json!({"items": [{"ticket_type_id": 0, "quantity": qty}]});
                    let i = {
                        let mut reqs = reqs.lock().unwrap();
                        reqs.push(Req {
                            buyer: buyer.clone(),
                            token: token.clone(),
                            body: body.clone(),
                            before_kill: !killed.load(Ordering::SeqCst),
                            answer: None,
                        });
                        reqs.len() - 1
                    };
                    let sent = http
                        .post(format!("{url}/v1/events/{event}/holds"))
                        .bearer_auth(&token)
                        .header("idempotency-key", "k")
                        .json(&body)
                        .send()
                        .await;
                    let r = match sent {
                        Ok(r) => match r.bytes().await {
                            Ok(b) => b,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let v: Value = serde_json::from_slice(&r).unwrap_or_else(|_| panic!("non-JSON answer {r:?}"));
                    let id = v["id"].as_str().unwrap_or_else(|| panic!("not a 201 hold: {v}"));
                    assert_eq!(v["items"][0]["quantity"].as_u64(), Some(qty));
                    reqs.lock().unwrap()[i].answer = Some(id.to_string());
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        });
        let clients: Vec<_> = clients.collect();
        let target = rand::rng().random_range(50..400);
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "only {} holds acknowledged in 30 s",
                acked.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        s.kill();
        killed.store(true, Ordering::SeqCst);
        for c in clients {
            c.await.expect("client task");
        }
        let unanswered = reqs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.before_kill && r.answer.is_none())
            .count();
        eprintln!("round {round}: killed after {target}+ acks with {unanswered} requests unanswered");
        in_flight_at_kills += unanswered;

        s = Server::start_in(dir.path(), &[]).await;
        verify(&s, &event, &reqs).await;
    }
    assert!(in_flight_at_kills > 0, "no kill landed with requests in flight");
    let status = s.signal_and_wait(Signal::SIGTERM);
    assert!(status.success(), "graceful exit after the crash rounds: {status:?}");
}

async fn verify(s: &Server, event: &str, reqs: &Mutex<Vec<Req>>) {
    let feed = s.feed().await;
    let mut placed: HashMap<String, (String, Value)> = HashMap::new();
    for e in feed.iter().filter(|e| e["type"] == "hold_placed") {
        let d = &e["data"];
        let buyer = d["buyer_id"].as_str().unwrap().to_string();
        let prev = placed.insert(
            buyer.clone(),
            (d["hold_id"].as_str().unwrap().to_string(), d["items"].clone()),
        );
        assert!(prev.is_none(), "one request made two holds: {buyer}");
    }
    let snapshot: Vec<(String, String, Value, Option<String>)> = reqs
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.buyer.clone(), r.token.clone(), r.body.clone(), r.answer.clone()))
        .collect();
    let sent: HashSet<&str> = snapshot.iter().map(|r| r.0.as_str()).collect();
    for buyer in placed.keys() {
        assert!(sent.contains(buyer.as_str()), "a hold nobody asked for: {buyer}");
    }
    let applied_unanswered = snapshot
        .iter()
        .filter(|r| r.3.is_none() && placed.contains_key(&r.0))
        .count();
    eprintln!("{applied_unanswered} holds applied whose request got no answer");
    let mut acked_qty = 0;
    let mut acked = 0;
    for (buyer, token, body, answer) in &snapshot {
        let in_log = placed.get(buyer);
        if let Some((_, items)) = in_log {
            assert_eq!(
                items, &body["items"],
                "{buyer}: the log's items differ from the request's"
            );
        }
        let Some(hold) = answer else { continue };
        acked += 1;
        acked_qty += quantity(body);
        let (logged, _) = in_log.unwrap_or_else(|| panic!("acknowledged hold {hold} of {buyer} lost"));
        assert_eq!(logged, hold, "{buyer}");
        let r = s.buyer(token, Method::GET, &format!("/v1/holds/{hold}"), None).await;
        let h = r.expect(200);
        assert_eq!(
            (h["state"].as_str(), &h["items"][0]["quantity"]),
            (Some("active"), &body["items"][0]["quantity"])
        );
    }
    let logged_qty: u64 = placed
        .values()
        .map(|(_, items)| quantity(&json!({ "items": items })))
        .sum();
    let st = s.stats(event).await;
    assert_eq!(st["holds"]["active"].as_u64(), Some(placed.len() as u64), "stats = log");
    assert_eq!(st["held"].as_u64(), Some(logged_qty), "stats = log");
    assert!(acked <= placed.len() && placed.len() <= snapshot.len());
    assert!(acked_qty <= logged_qty);

    // Retry every unanswered request with its key: the hold it made, or a new one now.
    for (i, (buyer, token, body, _)) in snapshot.iter().enumerate().filter(|(_, r)| r.3.is_none()) {
        let res = s
            .send(
                Method::POST,
                &format!("/v1/events/{event}/holds"),
                Some(token),
                Some(body),
                &[("idempotency-key", "k")],
            )
            .await;
        let id = res.expect(201)["id"].as_str().unwrap().to_string();
        if let Some((logged, _)) = placed.get(buyer) {
            assert_eq!(
                &id, logged,
                "{buyer}: the retry must return the hold the lost request made"
            );
        }
        reqs.lock().unwrap()[i].answer = Some(id);
    }
}

#[tokio::test]
async fn holds_due_while_the_server_was_down_expire_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &[]).await;
    let event = s.simple_sale(3, json!({"hold_ttl_secs": 1})).await;
    let ana = buyer_token("ana");
    let three = json!({"items": [{"ticket_type_id": 0, "quantity": 3}]});
    let hold = s
        .buyer(&ana, Method::POST, &format!("/v1/events/{event}/holds"), Some(&three))
        .await;
    let hold = hold.expect(201)["id"].as_str().unwrap().to_string();
    s.kill();

    let s = Server::start_in(dir.path(), &[]).await;
    wait_for("the recovered hold to expire", Duration::from_secs(10), || async {
        // An expired hold is not kept: it answers 410 hold_ended.
        let r = s.buyer(&ana, Method::GET, &format!("/v1/holds/{hold}"), None).await;
        (r.status == 410).then_some(())
    })
    .await;
    let st = s.stats(&event).await;
    assert_eq!(
        (st["held"].as_u64(), st["holds"]["expired"].as_u64()),
        (Some(0), Some(1))
    );
    s.buyer(&ana, Method::POST, &format!("/v1/events/{event}/holds"), Some(&three))
        .await
        .expect(201);
}
