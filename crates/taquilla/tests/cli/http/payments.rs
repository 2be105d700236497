//! SIGKILL in the middle of the payment saga, several times on one data directory, with a
//! fake Stripe on a real HTTP server that outlives every kill (as Stripe would). The buyers
//! keep paying through the kills: each confirms its PaymentIntent at Stripe once the order
//! shows it, and Stripe's webhook is delivered to whichever server is up (or lost in a kill,
//! for the reconciler to make up). After the last restart, every order is paid, with exactly
//! one PaymentIntent created and captured for it: the restarted saga re-sent its calls under
//! the same idempotency keys (the fake replays them) instead of repeating them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use taquilla_payments::testing::{BuyerOutcome, Endpoint, FAKE_SECRET_KEY, FakeStripe, Faults, signed_webhook};

use super::support::*;

const KILLS: usize = 5;
const ORDERS_PER_ROUND: usize = 12;
const WEBHOOK_SECRET: &str = "whsec_taquilla_crash_test";
/// Every order must be paid within this long after the last restart.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

/// The orders being paid, and what their buyers have done.
#[derive(Default)]
struct Buyers {
    /// Order id → buyer token.
    orders: BTreeMap<String, String>,
    /// Intents the buyers confirmed at Stripe.
    confirmed: BTreeSet<String>,
    paid: BTreeSet<String>,
}

async fn try_send(
    s: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    prefer: Option<&str>,
) -> Option<Resp> {
    let mut rb = s.http.request(method, s.url(path)).bearer_auth(token);
    if let Some(p) = prefer {
        rb = rb.header("prefer", p);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.ok()?;
    let status = r.status().as_u16();
    let text = r.text().await.ok()?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Resp { status, text, json })
}

fn server_args(fake: &FakeStripe) -> Vec<String> {
    [
        "--payment-methods",
        "stripe",
        "--stripe-secret-key",
        FAKE_SECRET_KEY,
        "--stripe-webhook-secret",
        WEBHOOK_SECRET,
        "--stripe-api-base",
        &fake.uri(),
        "--payment-reconcile-after-secs",
        "1",
    ]
    .map(String::from)
    .to_vec()
}

async fn start(dir: &std::path::Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(dir, &args).await
}

impl Buyers {
    /// New orders of one ticket each, paid with Stripe without waiting (`202`).
    async fn order_and_pay(&mut self, s: &Server, event: &str, round: usize) {
        for n in 0..ORDERS_PER_ROUND {
            let token = buyer_token(&format!("r{round}-b{n}"));
            let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
            let hold = s
                .buyer(&token, Method::POST, &format!("/v1/events/{event}/holds"), Some(&one))
                .await;
            let hold = hold.expect(201)["id"].as_str().expect("hold id").to_string();
            let order = s
                .buyer(&token, Method::POST, &format!("/v1/holds/{hold}/checkout"), None)
                .await;
            let order = order.expect(201)["id"].as_str().expect("order id").to_string();
            let pay = try_send(
                s,
                Method::POST,
                &format!("/v1/orders/{order}/pay"),
                &token,
                Some(&json!({"method": "stripe"})),
                Some("wait=0"),
            )
            .await
            .expect("the server is up");
            assert_eq!(pay.status, 202, "{}", pay.text);
            self.orders.insert(order, token);
        }
    }

    /// One pass over the unpaid orders, as their buyers: confirm a PaymentIntent once the
    /// order shows it, and deliver Stripe's webhook for it (every other one: the reconciler
    /// finds the rest). Errors (the server being killed) are shrugged off: the next pass,
    /// or the reconciler, makes up for them.
    async fn pass(&mut self, s: &Server, fake: &FakeStripe, webhooks: bool) {
        let unpaid: Vec<(String, String)> = self
            .orders
            .iter()
            .filter(|(o, _)| !self.paid.contains(*o))
            .map(|(o, t)| (o.clone(), t.clone()))
            .collect();
        for (i, (order, token)) in unpaid.iter().enumerate() {
            let Some(r) = try_send(s, Method::GET, &format!("/v1/orders/{order}"), token, None, None).await else {
                return;
            };
            if r.json["state"] == "paid" {
                self.paid.insert(order.clone());
                continue;
            }
            let Some(intent) = r.json["payment"]["payment_intent_id"].as_str() else {
                continue;
            };
            if self.confirmed.insert(intent.to_string()) {
                fake.confirm(intent, BuyerOutcome::Approve).expect("confirm at Stripe");
                if webhooks && i % 2 == 0 {
                    let t = now_secs();
                    let note = fake.notification(intent, "payment_intent.amount_capturable_updated", t);
                    let (sig, body) = signed_webhook(&note, WEBHOOK_SECRET, t);
                    let _ = s
                        .http
                        .post(s.url("/v1/webhooks/stripe"))
                        .header("stripe-signature", sig)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                }
            }
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_saga_resumes_and_captures_each_order_exactly_once() {
    // Slow answers and some lost ones (taking effect all the same), so that kills land while
    // creations and captures are in flight.
    let fake = FakeStripe::start_with(
        FAKE_SECRET_KEY,
        Faults {
            extra_latency: Duration::from_millis(40),
            timeouts: taquilla_payments::simulated::Rate::from_percent(10.0).expect("a rate"),
            timeout_delay: Duration::from_millis(1500),
            seed: 11,
            ..Faults::default()
        },
    )
    .await;
    let args = server_args(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(dir.path(), &args).await;
    let event = s.simple_sale(1_000, json!({"hold_ttl_secs": 3600})).await;
    let mut buyers = Buyers::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut captures_before_kill = Vec::new();
    for round in 0..KILLS {
        buyers.order_and_pay(&s, &event, round).await;
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(50..600));
        while Instant::now() < kill_at {
            buyers.pass(&s, &fake, true).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        captures_before_kill.push(fake.calls(Endpoint::Capture));
        s.kill();
        s = start(dir.path(), &args).await;
    }

    let until = Instant::now() + SETTLE_DEADLINE;
    while buyers.paid.len() < buyers.orders.len() {
        assert!(
            Instant::now() < until,
            "{} of {} orders paid {SETTLE_DEADLINE:?} after the last restart",
            buyers.paid.len(),
            buyers.orders.len()
        );
        buyers.pass(&s, &fake, false).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "capture calls before each kill {captures_before_kill:?}; calls: create {}, capture {}, retrieve {}; replays {}",
        fake.calls(Endpoint::CreateIntent),
        fake.calls(Endpoint::Capture),
        fake.calls(Endpoint::Retrieve),
        fake.replays()
    );
    let expected: BTreeMap<String, u32> = buyers.orders.keys().map(|o| (o.clone(), 1)).collect();
    assert_eq!(fake.captured_per_order(), expected, "each order captured exactly once");
    assert_eq!(fake.double_captures(), 0);
    for (order, token) in &buyers.orders {
        let intents = fake.intents_of(order);
        assert_eq!(
            intents.len(),
            1,
            "one PaymentIntent for {order}, however often the saga restarted"
        );
        let view = s.buyer(token, Method::GET, &format!("/v1/orders/{order}"), None).await;
        let view = view.expect(200);
        assert_eq!(view["payment"]["payment_intent_id"], intents[0].id.as_str());
        assert_eq!(
            (view["state"].as_str(), view["payment"]["state"].as_str()),
            (Some("paid"), Some("captured"))
        );
    }
    assert!(fake.replays() > 0, "restarted sagas re-sent calls under their keys");
    let stats = s.stats(&event).await;
    assert_eq!(stats["sold"], buyers.orders.len() as u64, "{stats}");
    assert_eq!(stats["orders"]["paid"], buyers.orders.len() as u64, "{stats}");
}
