//! Many buyers at once over HTTP: the race for the last tickets (no oversell, per-buyer
//! limits hold, no 5xx), and backpressure (a full queue answers `503 overloaded` at once,
//! with `Retry-After`, and takes nothing).

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::*;

const BUYERS: usize = 300;
const ATTEMPTS: usize = 4;
const LIMIT: u64 = 2;
const VENUE: u64 = 100;
const VIP_AREA: u64 = 30;

/// What one buyer did, as the client saw it.
#[derive(Default)]
struct Seen {
    /// (hold id, ticket type, quantity, what became of it)
    holds: Vec<(String, u64, u64, &'static str)>,
    statuses: Vec<(u16, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_buyers_race_for_the_last_tickets() {
    let app = spawn_app(AppOptions::default().test_payments()).await;
    let id = app
        .create_sale(&json!({
            "event": {"name": "Race", "currency": "EUR", "max_tickets_per_buyer": LIMIT},
            "ticket_types": [{"name": "General", "price_minor": 1000}, {"name": "VIP", "price_minor": 5000}],
            "quotas": [
                {"name": "Venue", "capacity": VENUE, "ticket_type_ids": [0, 1]},
                {"name": "VIP area", "capacity": VIP_AREA, "ticket_type_ids": [1]}
            ],
        }))
        .await;
    let seed: u64 = rand::random();
    eprintln!("race seed {seed}");
    let tasks = (0..BUYERS).map(|b| {
        let (api, id) = (Api::clone(&app), id.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(b as u64));
            let token = api.buyer_token(&format!("buyer-{b}"));
            let mut seen = Seen::default();
            for _ in 0..ATTEMPTS {
                let (tt, qty) = (rng.random_range(0..2u32), rng.random_range(1..=3u32));
                let r = api.place_hold(&token, &id, &items(tt, qty), None).await;
                seen.statuses
                    .push((r.status, r.json["error"]["code"].as_str().unwrap_or("").to_string()));
                if r.status != 201 {
                    if r.status >= 400 {
                        r.assert_error_shape();
                    }
                    continue;
                }
                assert_eq!(quantity(&r.json), u64::from(qty));
                let hold = r.json["id"].as_str().unwrap().to_string();
                // Some buyers pay, some change their mind; the rest keep holding.
                let fate = match rng.random_range(0..6) {
                    0 | 1 => {
                        let order = api.checkout(&token, &hold, None).await.expect_id(201);
                        let p = api.pay(&token, &order).await;
                        assert_eq!(p.expect(200)["state"], "paid");
                        "sold"
                    }
                    2 => {
                        let d = api.release_hold(&token, &hold).await;
                        assert_eq!(d.expect(200)["state"], "released");
                        "released"
                    }
                    _ => "held",
                };
                seen.holds.push((hold, u64::from(tt), u64::from(qty), fate));
            }
            (token, seen)
        })
    });
    let results: Vec<(String, Seen)> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("buyer task"))
        .collect();

    let mut codes: HashMap<(u16, String), usize> = HashMap::new();
    for (_, seen) in &results {
        for st in &seen.statuses {
            *codes.entry(st.clone()).or_default() += 1;
        }
    }
    eprintln!("answers: {codes:?}");
    for ((status, code), n) in &codes {
        assert!(
            *status == 201 || matches!(code.as_str(), "sold_out" | "insufficient_inventory" | "limit_exceeded"),
            "{n} unexpected answers {status} {code}"
        );
    }
    // The race really happened: buyers were turned away for stock and for the limit.
    let count = |code: &str| {
        codes
            .iter()
            .filter(|((_, c), _)| c == code)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert!(
        count("sold_out") + count("insufficient_inventory") > 0,
        "nobody ran out of stock"
    );
    assert!(count("limit_exceeded") > 0, "nobody hit the per-buyer limit");

    // Per buyer: never more than the limit in kept holds plus orders.
    let mut by_type = [(0u64, 0u64); 2];
    for (_, seen) in &results {
        let kept: u64 = seen.holds.iter().filter(|h| h.3 != "released").map(|h| h.2).sum();
        assert!(kept <= LIMIT, "a buyer holds {kept} > {LIMIT}");
        for (_, tt, qty, fate) in &seen.holds {
            match *fate {
                "held" => by_type[*tt as usize].0 += qty,
                "sold" => by_type[*tt as usize].1 += qty,
                _ => {}
            }
        }
    }
    // The server agrees with what the clients were told, type by type and quota by quota.
    let st = app.stats(&id).await;
    let types: Vec<(u64, u64)> = st["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["held"].as_u64().unwrap(), t["sold"].as_u64().unwrap()))
        .collect();
    assert_eq!(types, by_type, "held/sold per type = what the 201s add up to");
    let used = |q: &Value| q["held"].as_u64().unwrap() + q["sold"].as_u64().unwrap();
    let quotas = st["quotas"].as_array().unwrap();
    assert!(
        used(&quotas[0]) <= VENUE && used(&quotas[1]) <= VIP_AREA,
        "oversold: {st}"
    );
    assert_eq!(
        used(&quotas[0]),
        by_type[0].0 + by_type[0].1 + by_type[1].0 + by_type[1].1
    );
    assert_eq!(used(&quotas[1]), by_type[1].0 + by_type[1].1);
    let n = |state: &str| results.iter().flat_map(|r| &r.1.holds).filter(|h| h.3 == state).count() as u64;
    assert_eq!(st["holds"]["active"].as_u64(), Some(n("held")));
    assert_eq!(st["holds"]["released"].as_u64(), Some(n("released")));
    assert_eq!(st["orders"]["paid"].as_u64(), Some(n("sold")));
    // And every hold is what its buyer was told: still held, or ended (released or checked
    // out: ended holds are not kept).
    for (token, seen) in &results {
        for (hold, _, qty, fate) in &seen.holds {
            let r = app.get_hold(token, hold).await;
            if *fate == "held" {
                let h = r.expect(200);
                assert_eq!((h["state"].as_str(), quantity(h)), (Some("active"), *qty));
            } else {
                r.expect_error(410, "hold_ended");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_overloaded_with_retry_after() {
    full_queue(Codes::default()).await;
}

pub async fn full_queue(codes: Codes) {
    let app = spawn_app(AppOptions::default().queue(1, 1).codes(&codes)).await;
    let id = app.simple_sale(1_000_000, json!({})).await;
    let mut created: Vec<(String, String)> = Vec::new();
    let mut overloaded = 0;
    // Bursts until the queue overflowed at least once; bounded, so a server that never
    // pushes back fails instead of hanging.
    for burst in 0..20 {
        let tasks = (0..200).map(|i| {
            let (api, id) = (Api::clone(&app), id.clone());
            tokio::spawn(async move {
                let token = api.buyer_token(&format!("b{burst}-{i}"));
                let r = api.place_hold(&token, &id, &items(0, 1), None).await;
                (token, r)
            })
        });
        for res in futures_util::future::join_all(tasks).await {
            let (token, r) = res.expect("task");
            match r.status {
                201 => created.push((token, r.json["id"].as_str().unwrap().to_string())),
                503 => {
                    r.expect_error(503, "overloaded");
                    assert_eq!(r.header("retry-after"), Some("1"));
                    overloaded += 1;
                }
                other => panic!("unexpected {other}: {}", r.text),
            }
        }
        if overloaded > 0 {
            break;
        }
    }
    assert!(
        overloaded > 0,
        "a queue of one never overflowed under 200 concurrent holds"
    );
    // A 503 took nothing; every 201 is there.
    let st = app.stats(&id).await;
    assert_eq!(st["held"].as_u64(), Some(created.len() as u64));
    assert_eq!(st["holds"]["active"].as_u64(), Some(created.len() as u64));
    for (token, hold) in &created {
        app.get_hold(token, hold).await.expect(200);
    }
}
