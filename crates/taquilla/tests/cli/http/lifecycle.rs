//! The process's life: graceful shutdown on SIGTERM (exit 0, nothing acknowledged lost), and
//! the `--demo` sale, created on the first start only and selling. (Readiness, metrics and
//! OpenAPI are tested in process, in `crates/api/tests/api/ops.rs`.)

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_and_keeps_everything_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &["--allow-test-payments"]).await;
    let id = s.simple_sale(100_000, json!({})).await;
    let ana = buyer_token("ana");
    let two = json!({"items": [{"ticket_type_id": 0, "quantity": 2}]});
    let hold = s
        .buyer(&ana, Method::POST, &format!("/v1/events/{id}/holds"), Some(&two))
        .await;
    let hold_id = hold.expect(201)["id"].as_str().unwrap().to_string();
    let order = s
        .buyer(&ana, Method::POST, &format!("/v1/holds/{hold_id}/checkout"), None)
        .await;
    let order_id = order.expect(201)["id"].as_str().unwrap().to_string();
    s.buyer(
        &ana,
        Method::POST,
        &format!("/v1/orders/{order_id}/pay"),
        Some(&json!({"method": "test"})),
    )
    .await
    .expect(200);

    // SIGTERM in the middle of a burst: whatever was answered 201 survives, and nothing
    // answered is a 5xx other than the documented 503.
    let url = Arc::new(s.url.clone());
    let burst = (0..64).map(|i| {
        let (url, id) = (url.clone(), id.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let token = buyer_token(&format!("burst-{i}"));
            let mut created = Vec::new();
            for _ in 0..50 {
                let r = http
                    .post(format!("{url}/v1/events/{id}/holds"))
                    .bearer_auth(&token)
                    .json(&json!({"items": [{"ticket_type_id": 0, "quantity": 1}]}))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let r = into_resp_lenient(r).await;
                match r {
                    Some((201, v)) => created.push(v["id"].as_str().unwrap().to_string()),
                    Some((503, v)) => assert_eq!(v["error"]["code"], "unavailable"),
                    Some((status, v)) => panic!("unexpected {status}: {v}"),
                    None => break,
                }
            }
            (token, created)
        })
    });
    let burst: Vec<_> = burst.collect();
    let wait = wait_for("the burst to start", std::time::Duration::from_secs(10), || async {
        let st = s.stats(&id).await;
        (st["holds"]["active"].as_u64() > Some(20)).then_some(())
    });
    wait.await;
    let status = s.signal_and_wait(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {status:?}");
    let mut created = Vec::new();
    for b in burst {
        created.push(b.await.expect("burst task"));
    }

    let s = Server::start_in(dir.path(), &[]).await;
    let o = s
        .buyer(&ana, Method::GET, &format!("/v1/orders/{order_id}"), None)
        .await;
    let o = o.expect(200);
    assert_eq!(
        (o["state"].as_str(), o["tickets"].as_array().map(Vec::len)),
        (Some("paid"), Some(2))
    );
    let mut n = 0;
    for (token, holds) in &created {
        for h in holds {
            s.buyer(token, Method::GET, &format!("/v1/holds/{h}"), None)
                .await
                .expect(200);
            n += 1;
        }
    }
    let st = s.stats(&id).await;
    assert_eq!(st["sold"], 2);
    // Graceful: in-flight requests were finished, so the log holds exactly what was answered.
    assert_eq!(st["holds"]["active"].as_u64(), Some(n), "holds made but never answered");
    assert!(n > 20, "the burst made too little to test anything: {n}");
}

/// Status and JSON body, or `None` when the connection broke mid-answer.
async fn into_resp_lenient(r: reqwest::Response) -> Option<(u16, Value)> {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.ok()?;
    Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn the_demo_sale_is_created_once_and_sells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &["--demo"]).await;
    let events = s.get("/v1/events").await;
    let list = events.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "one demo sale");
    let ev = &list[0];
    assert_eq!(
        (ev["status"].as_str(), ev["ticket_types"].as_array().map(Vec::len)),
        (Some("open"), Some(2))
    );
    let id = ev["id"].as_str().unwrap().to_string();
    let st = s.stats(&id).await;
    assert_eq!(st["quotas"].as_array().map(Vec::len), Some(2));
    let token = buyer_token("demo-buyer");
    let two = json!({"items": [{"ticket_type_id": 0, "quantity": 2}]});
    let hold = s
        .buyer(&token, Method::POST, &format!("/v1/events/{id}/holds"), Some(&two))
        .await;
    let hold = hold.expect(201)["id"].as_str().unwrap().to_string();
    let order = s
        .buyer(&token, Method::POST, &format!("/v1/holds/{hold}/checkout"), None)
        .await;
    let order = order.expect(201)["id"].as_str().unwrap().to_string();
    // --demo turns test payments on.
    let paid = s
        .buyer(
            &token,
            Method::POST,
            &format!("/v1/orders/{order}/pay"),
            Some(&json!({"method": "test"})),
        )
        .await;
    assert_eq!(paid.expect(200)["state"], "paid");
    assert!(s.signal_and_wait(Signal::SIGTERM).success());

    let s = Server::start_in(dir.path(), &["--demo"]).await;
    let events = s.get("/v1/events").await;
    assert_eq!(
        events.expect(200)["events"].as_array().map(Vec::len),
        Some(1),
        "not created twice"
    );
    assert_eq!(s.stats(&id).await["sold"], 2);
}
