//! The flash sale itself: the buyers (the sale is set up by `setup.rs`).
//!
//! Each buyer reads the sale page, holds 1–N tickets of the type it prefers (or the other one
//! when that is gone), and then, by its drawn fate, checks out and pays, releases the hold
//! (`DELETE`), or lets it expire. A `503` is retried after its `Retry-After` (bounded).
//!
//! How a buyer pays is the run's [`PaymentMode`]: with `test` the pay request waits for the
//! saga (an instant provider) and answers `200` paid; with `simulated` it answers `202` at once
//! (`Prefer: wait=0`) and the buyer polls its order until the attempt is over, pays again after
//! a decline (up to `--pay-attempts` attempts), and cancels the order when every one was
//! declined.
//!
//! A buyer that finds nothing available waits for inventory to come back, since released and
//! expired holds return tickets. It does not poll: a buyer whose hold ends wakes as many
//! waiters as it returned tickets, and when no hold of any buyer is outstanding the
//! coordinator looks at the sale once: nothing left means sold out for good (the bench is the
//! only client), and every waiter leaves. On `insufficient_inventory` a buyer lowers its
//! quantity to what is left only when nobody else holds tickets (else it waits for them), so
//! the sale ends with min(capacity, demand) sold.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper::Method;
use hyper::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::client::{Answer, Call, Client, Op, Priority};
pub use super::setup::{Admin, Sale, SaleSpec, create_sale};

/// Attempts at a hold per buyer (reads, waits and rejections included); a backstop, since a
/// buyer only retries when inventory came back.
const HOLD_ATTEMPTS_MAX: usize = 256;
/// `503` retries per request.
pub(super) const RETRIES_503_MAX: usize = 8;
/// Longest `Retry-After` honoured; a longer one is cut to this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(5);
/// How often a waiting buyer re-checks "sold out" and the deadline without being woken
/// (only a backstop against a missed wake-up; it sends nothing).
const WAIT_RECHECK: Duration = Duration::from_secs(2);
/// Polls of a hold's state after its deadline, until the server shows it expired.
const EXPIRY_POLLS_MAX: usize = 100;
const EXPIRY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// After a transport failure the outcome is unknown: the buyer counts as holding until its
/// possible hold has certainly expired.
const UNKNOWN_OUTCOME_GRACE: Duration = Duration::from_secs(2);
/// How often the coordinator checks whether waiting buyers should be told "sold out".
const COORDINATOR_TICK: Duration = Duration::from_millis(20);
/// A buyer paying with `simulated` first looks at its order this long after paying, then
/// every `PAY_POLL_EVERY`: a payment is two provider calls (authorise, capture) of 50–300 ms
/// each by default (their sum is under 400 ms two times in three, under 500 ms eleven times
/// in twelve), so most are done at the first or second look — as a front end would poll at
/// its provider's usual latency — and a decline is seen soon enough to pay again well within
/// the order's deadline.
const PAY_POLL_FIRST: Duration = Duration::from_millis(400);
const PAY_POLL_EVERY: Duration = Duration::from_millis(100);
/// The pay request's body, per method.
const PAY_TEST: &[u8] = br#"{"method":"test"}"#;
const PAY_SIMULATED: &[u8] = br#"{"method":"simulated"}"#;

/// How buyers pay (`--payments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    /// `{"method":"test"}`: the pay request waits for the saga (an instant provider) and
    /// answers 200 paid.
    Test,
    /// `{"method":"simulated"}` with `Prefer: wait=0`: 202 at once; the buyer polls its order
    /// until the payment is over, pays again after a decline, cancels after the last one.
    Simulated,
}

impl PaymentMode {
    pub fn name(self) -> &'static str {
        match self {
            PaymentMode::Test => "test",
            PaymentMode::Simulated => "simulated",
        }
    }
}

/// What a buyer will do once it holds tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Pay,
    Abandon,
    Expire,
}

/// One buyer, drawn deterministically from the seed.
pub struct Plan {
    pub auth: HeaderValue,
    pub fate: Fate,
    pub want: u32,
    pub prefers_vip: bool,
    /// After paying, tries to buy past the per-buyer limit (which must be refused).
    pub greedy: bool,
}

/// Shares of buyers (0..=1) by behaviour.
#[derive(Debug, Clone)]
pub struct Mix {
    pub abandon_share: f64,
    pub expire_share: f64,
    pub greedy_share: f64,
    pub vip_share: f64,
    pub quantity_max: u32,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform draw in [0, 1) from `(seed, buyer, field)`.
fn draw(seed: u64, buyer: u64, field: u64) -> f64 {
    let r = splitmix64(seed ^ splitmix64(buyer.wrapping_mul(8).wrapping_add(field)));
    (r >> 11) as f64 / (1u64 << 53) as f64
}

pub fn plan(seed: u64, index: u64, mix: &Mix, auth: HeaderValue) -> Plan {
    let f = draw(seed, index, 0);
    let fate = if f < mix.abandon_share {
        Fate::Abandon
    } else if f < mix.abandon_share + mix.expire_share {
        Fate::Expire
    } else {
        Fate::Pay
    };
    Plan {
        auth,
        fate,
        want: 1 + (draw(seed, index, 1) * mix.quantity_max as f64) as u32,
        prefers_vip: draw(seed, index, 2) < mix.vip_share,
        greedy: fate == Fate::Pay && draw(seed, index, 3) < mix.greedy_share,
    }
}

/// The 2xx answers the client saw, which the audit looks for in the log.
#[derive(Debug, Default)]
pub struct Acks {
    /// `201` holds.
    pub holds: Vec<String>,
    /// `201` orders from checkout.
    pub orders: Vec<String>,
    /// `200` payments with state paid: order id and its ticket codes.
    pub paid: Vec<(String, Vec<String>)>,
    /// `200` releases.
    pub released: Vec<String>,
    /// `200` cancellations of orders whose every payment was declined.
    pub cancelled: Vec<String>,
}

/// Counters the progress line and the report read.
#[derive(Debug, Default)]
pub struct Tally {
    pub tickets_paid: AtomicU64,
    pub buyers_done: AtomicU64,
    pub bought: AtomicU64,
    pub abandoned: AtomicU64,
    pub expired: AtomicU64,
    pub left_sold_out: AtomicU64,
    pub gave_up: AtomicU64,
    /// Greedy attempts past the limit the server accepted (must stay 0).
    pub greedy_accepted: AtomicU64,
    pub greedy_refused: AtomicU64,
    /// Paying buyers whose hold or order lapsed before they could pay, and who tried again.
    pub lapsed: AtomicU64,
    /// Payment attempts the buyers saw declined.
    pub declines_seen: AtomicU64,
    /// Buyers who cancelled their order after `--pay-attempts` declines, and the tickets
    /// they had wanted (demand that left).
    pub declined_out: AtomicU64,
    pub declined_out_tickets: AtomicU64,
}

pub struct Scenario {
    pub client: Client,
    pub sale: Sale,
    event_path: String,
    holds_path: String,
    pub deadline: Instant,
    /// Buyers between sending a hold and knowing its end (paid, released, expired).
    outstanding: AtomicI64,
    pub waiters: AtomicI64,
    pub sold_out: AtomicBool,
    returned: Notify,
    pub acks: Mutex<Acks>,
    pub tally: Tally,
    page: PageCache,
    payments: PaymentMode,
    /// Attempts at paying one order (`--pay-attempts`).
    pay_attempts: u32,
}

/// `Prefer: wait=0`: the pay route answers at once instead of waiting for the payment.
static PREFER_NO_WAIT: HeaderValue = HeaderValue::from_static("wait=0");

#[derive(Debug, PartialEq, Deserialize)]
struct SalePage {
    ticket_types: Vec<TypeAvailability>,
}

/// The last sale page read and what it said. Most reads return the very bytes of the one
/// before (the page changes only when the sale does, and never once it is sold out), and
/// parsing them again was a large part of the client's own work per request in the rush. The
/// request is still sent and answered in full; only identical bytes skip the parse.
#[derive(Default)]
struct PageCache(Mutex<Option<(Bytes, Arc<SalePage>)>>);

impl PageCache {
    fn parse(&self, body: &Bytes) -> Option<Arc<SalePage>> {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bytes, page)) = last.as_ref()
            && bytes == body
        {
            return Some(page.clone());
        }
        let page = Arc::new(serde_json::from_slice::<SalePage>(body).ok()?);
        *last = Some((body.clone(), page.clone()));
        Some(page)
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct TypeAvailability {
    id: u32,
    available: u32,
}

#[derive(Deserialize)]
struct HoldBody {
    id: String,
    state: String,
}

#[derive(Deserialize)]
struct OrderBody {
    id: String,
    state: String,
    #[serde(default)]
    tickets: Vec<TicketBody>,
    #[serde(default)]
    payment: Option<PaymentBody>,
}

/// The order's current (or last) payment attempt.
#[derive(Deserialize)]
struct PaymentBody {
    state: String,
}

/// Where a buyer's order stands, as far as its payment goes.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// Paid, with its tickets.
    Paid,
    /// A payment is under way, or could still change the order (an expired order's attempt
    /// not yet voided may yet reinstate it): look again later.
    Pending,
    /// Awaiting payment after the last attempt ended; `declined` if the provider declined it.
    PayAgain { declined: bool },
    /// Over without being paid (expired, cancelled, failed): the tickets are back.
    Lapsed,
}

impl OrderBody {
    fn standing(&self) -> Standing {
        let attempt_final = self
            .payment
            .as_ref()
            .is_none_or(|p| matches!(p.state.as_str(), "captured" | "voided" | "declined" | "failed"));
        match self.state.as_str() {
            "paid" => Standing::Paid,
            _ if !attempt_final => Standing::Pending,
            "payment_pending" => Standing::Pending,
            "awaiting_payment" => Standing::PayAgain {
                declined: self.payment.as_ref().is_some_and(|p| p.state == "declined"),
            },
            _ => Standing::Lapsed,
        }
    }
}

#[derive(Deserialize)]
struct TicketBody {
    code: String,
}

/// How a buyer's attempt ended.
enum End {
    Bought(u32),
    Abandoned,
    Expired,
    SoldOut,
    GaveUp,
    /// The hold or order lapsed before payment; try again from the sale page.
    Again,
    /// Every payment attempt was declined; the order was cancelled.
    Declined,
}

pub(super) fn retry_delay(retry_after_ms: Option<u64>) -> Duration {
    Duration::from_millis(retry_after_ms.unwrap_or(1000))
        .min(RETRY_AFTER_MAX)
        .max(Duration::from_millis(10))
}

impl Scenario {
    pub fn new(client: Client, sale: Sale, deadline: Instant, payments: PaymentMode, pay_attempts: u32) -> Scenario {
        assert!(pay_attempts >= 1, "a buyer pays at least once");
        let event_path = format!("/v1/events/{}", sale.event_id);
        let holds_path = format!("{event_path}/holds");
        Scenario {
            client,
            sale,
            event_path,
            holds_path,
            deadline,
            outstanding: AtomicI64::new(0),
            waiters: AtomicI64::new(0),
            sold_out: AtomicBool::new(false),
            returned: Notify::new(),
            acks: Mutex::new(Acks::default()),
            tally: Tally::default(),
            page: PageCache::default(),
            payments,
            pay_attempts,
        }
    }

    fn acks(&self) -> std::sync::MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request, retried on `503` after `Retry-After` (bounded by count and deadline).
    /// `Err` means the outcome is unknown (transport failure) or retries ran out.
    async fn call(
        &self,
        op: Op,
        priority: Priority,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Answer> {
        self.call_at(None, op, priority, method, path, auth, None, body).await
    }

    /// As `call`, with the first attempt at an open-loop slot taken in advance, and a
    /// `Prefer` header when given.
    #[allow(clippy::too_many_arguments)]
    async fn call_at(
        &self,
        mut slot: Option<Instant>,
        op: Op,
        priority: Priority,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        prefer: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Answer> {
        for _ in 0..RETRIES_503_MAX {
            let answer = Box::pin(self.client.send(Call {
                op,
                priority,
                method: method.clone(),
                path,
                auth,
                body: body.clone(),
                prefer,
                slot: slot.take(),
            }))
            .await?;
            if answer.reply.status != 503 {
                return Ok(answer);
            }
            let delay = retry_delay(answer.reply.retry_after_ms);
            if Instant::now() + delay >= self.deadline {
                bail!("503 and the run's deadline is near");
            }
            tokio::time::sleep(delay).await;
        }
        bail!("{method} {path}: still 503 after {RETRIES_503_MAX} tries")
    }

    /// Wakes up to `tickets` waiting buyers: that many tickets just came back.
    fn returned(&self, tickets: u32) {
        let n = (tickets as i64).min(self.waiters.load(Ordering::Relaxed));
        for _ in 0..n {
            self.returned.notify_one();
        }
    }

    /// This buyer's hold (or attempt at one) has ended; its tickets, if any, are back.
    fn resolved(&self, returned_tickets: u32) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.returned(returned_tickets);
    }

    /// Waits until tickets come back; false when the sale is sold out or time is up.
    async fn wait_for_inventory(&self) -> bool {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let woke = loop {
            let notified = self.returned.notified();
            tokio::pin!(notified);
            // Registered before the checks, so a wake-up sent in between is not lost.
            notified.as_mut().enable();
            if self.sold_out.load(Ordering::Acquire) || Instant::now() >= self.deadline {
                break false;
            }
            tokio::select! {
                _ = &mut notified => break true,
                _ = tokio::time::sleep(WAIT_RECHECK) => {}
            }
        };
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        woke
    }

    /// A buyer the deadline stopped before it got in: it gave up, like those the deadline
    /// stops mid-purchase.
    pub fn never_started(&self) {
        self.tally.gave_up.fetch_add(1, Ordering::Relaxed);
        self.tally.buyers_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs one buyer to its end and counts it. The steps are boxed so that a buyer waiting
    /// for a connection (most of the crowd, most of the time) is a small future: tens of
    /// thousands of them must not cost the client gigabytes and page faults.
    /// `arrival` is the open-loop slot of the buyer's first request; `admitted`, in closed
    /// loop, a place among the arrivals, given back once the first answer is in.
    pub async fn buyer(&self, plan: &Plan, arrival: Option<Instant>, admitted: Option<OwnedSemaphorePermit>) {
        let end = self.buy(plan, arrival, admitted).await;
        let t = &self.tally;
        match end {
            End::Bought(n) => {
                t.bought.fetch_add(1, Ordering::Relaxed);
                t.tickets_paid.fetch_add(n as u64, Ordering::Relaxed);
            }
            End::Abandoned => {
                t.abandoned.fetch_add(1, Ordering::Relaxed);
            }
            End::Expired => {
                t.expired.fetch_add(1, Ordering::Relaxed);
            }
            End::SoldOut => {
                t.left_sold_out.fetch_add(1, Ordering::Relaxed);
            }
            End::GaveUp | End::Again => {
                t.gave_up.fetch_add(1, Ordering::Relaxed);
            }
            End::Declined => {
                t.declined_out.fetch_add(1, Ordering::Relaxed);
                t.declined_out_tickets.fetch_add(plan.want as u64, Ordering::Relaxed);
            }
        }
        t.buyers_done.fetch_add(1, Ordering::Relaxed);
    }

    async fn buy(&self, plan: &Plan, mut arrival: Option<Instant>, mut admitted: Option<OwnedSemaphorePermit>) -> End {
        let mut want = plan.want;
        let mut priority = Priority::Arrival;
        for _ in 0..HOLD_ATTEMPTS_MAX {
            if self.sold_out.load(Ordering::Acquire) {
                return End::SoldOut;
            }
            if Instant::now() >= self.deadline {
                return End::GaveUp;
            }
            let page = Box::pin(self.read_sale(priority, arrival.take())).await;
            drop(admitted.take());
            let Some(page) = page else {
                return End::GaveUp;
            };
            priority = Priority::InPurchase;
            let available = |id: u32| page.ticket_types.iter().find(|t| t.id == id).map_or(0, |t| t.available);
            let (first, second) = if plan.prefers_vip {
                (self.sale.vip, self.sale.general)
            } else {
                (self.sale.general, self.sale.vip)
            };
            let ticket_type = if available(first) > 0 {
                first
            } else if available(second) > 0 {
                second
            } else {
                if !Box::pin(self.wait_for_inventory()).await {
                    return End::SoldOut;
                }
                continue;
            };
            self.outstanding.fetch_add(1, Ordering::AcqRel);
            let sent = Instant::now();
            let answer = match Box::pin(self.hold(plan, ticket_type, want)).await {
                Ok(a) => a,
                Err(_) => return Box::pin(self.unknown_outcome(sent)).await,
            };
            if answer.reply.status == 201 {
                let Ok(hold) = serde_json::from_slice::<HoldBody>(&answer.reply.body) else {
                    self.resolved(0);
                    return End::GaveUp;
                };
                self.acks().holds.push(hold.id.clone());
                match Box::pin(self.after_hold(plan, &hold.id, want, sent)).await {
                    End::Again => {
                        self.tally.lapsed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    end => return end,
                }
            }
            self.resolved(0);
            let code = answer.error.as_ref().map(|e| e.code.as_str()).unwrap_or("");
            match code {
                // Someone was faster between the page and the hold: look again.
                "sold_out" => {}
                "insufficient_inventory" => {
                    let left = answer
                        .error
                        .as_ref()
                        .and_then(|e| e.details.as_ref())
                        .and_then(|d| d.get("available"))
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0) as u32;
                    if left > 0 && self.outstanding.load(Ordering::Acquire) == 0 {
                        // Nobody holds anything that could come back: take what is left.
                        want = left.min(want);
                    } else if !Box::pin(self.wait_for_inventory()).await {
                        return End::SoldOut;
                    }
                }
                // An expired hold of ours is still counted until the server expires it.
                "limit_exceeded" => tokio::time::sleep(Duration::from_millis(100)).await,
                _ => return End::GaveUp,
            }
        }
        End::GaveUp
    }

    async fn read_sale(&self, priority: Priority, slot: Option<Instant>) -> Option<Arc<SalePage>> {
        let a = self
            .call_at(
                slot,
                Op::Read,
                priority,
                Method::GET,
                &self.event_path,
                None,
                None,
                None,
            )
            .await
            .ok()?;
        if !a.reply.ok() {
            return None;
        }
        self.page.parse(&a.reply.body)
    }

    async fn hold(&self, plan: &Plan, ticket_type: u32, quantity: u32) -> anyhow::Result<Answer> {
        let body = format!(r#"{{"items":[{{"ticket_type_id":{ticket_type},"quantity":{quantity}}}]}}"#);
        self.call(
            Op::Hold,
            Priority::InPurchase,
            Method::POST,
            &self.holds_path,
            Some(&plan.auth),
            Some(Bytes::from(body)),
        )
        .await
    }

    /// A request failed in transport: whatever it did, it is settled once the hold's deadline
    /// has passed (a hold expires; an unpaid order too).
    async fn unknown_outcome(&self, sent: Instant) -> End {
        tokio::time::sleep_until((sent + self.sale.hold_ttl + UNKNOWN_OUTCOME_GRACE).into()).await;
        self.resolved(0);
        self.returned(self.sale.max_per_buyer);
        End::GaveUp
    }

    async fn after_hold(&self, plan: &Plan, hold_id: &str, quantity: u32, sent: Instant) -> End {
        match plan.fate {
            Fate::Abandon => self.abandon(plan, hold_id, quantity, sent).await,
            Fate::Expire => {
                let end = self.await_expiry(plan, hold_id, sent).await;
                self.resolved(quantity);
                if end { End::Expired } else { End::GaveUp }
            }
            Fate::Pay => {
                let end = self.checkout_and_pay(plan, hold_id, quantity, sent).await;
                if let End::Bought(n) = end
                    && plan.greedy
                {
                    self.try_past_limit(plan, n).await;
                }
                end
            }
        }
    }

    async fn abandon(&self, plan: &Plan, hold_id: &str, quantity: u32, sent: Instant) -> End {
        let path = format!("/v1/holds/{hold_id}");
        match self
            .call(
                Op::Release,
                Priority::InPurchase,
                Method::DELETE,
                &path,
                Some(&plan.auth),
                None,
            )
            .await
        {
            Ok(a) if a.reply.ok() => {
                self.acks().released.push(hold_id.to_string());
                self.resolved(quantity);
                End::Abandoned
            }
            // Too late to release (it expired first): wait until the server shows it.
            Ok(_) => {
                self.await_expiry(plan, hold_id, sent).await;
                self.resolved(quantity);
                End::Abandoned
            }
            Err(_) => self.unknown_outcome(sent).await,
        }
    }

    /// Waits past the hold's deadline, then until the server shows it expired (bounded).
    async fn await_expiry(&self, plan: &Plan, hold_id: &str, sent: Instant) -> bool {
        tokio::time::sleep_until((sent + self.sale.hold_ttl).into()).await;
        let path = format!("/v1/holds/{hold_id}");
        for _ in 0..EXPIRY_POLLS_MAX {
            if let Ok(a) = self
                .call(
                    Op::HoldStatus,
                    Priority::InPurchase,
                    Method::GET,
                    &path,
                    Some(&plan.auth),
                    None,
                )
                .await
                && a.reply.ok()
                && let Ok(h) = serde_json::from_slice::<HoldBody>(&a.reply.body)
                && h.state != "active"
            {
                return true;
            }
            if Instant::now() >= self.deadline {
                break;
            }
            tokio::time::sleep(EXPIRY_POLL_INTERVAL).await;
        }
        false
    }

    async fn checkout_and_pay(&self, plan: &Plan, hold_id: &str, quantity: u32, sent: Instant) -> End {
        let path = format!("/v1/holds/{hold_id}/checkout");
        let order = match self
            .call(
                Op::Checkout,
                Priority::InPurchase,
                Method::POST,
                &path,
                Some(&plan.auth),
                None,
            )
            .await
        {
            Ok(a) if a.reply.status == 201 => match serde_json::from_slice::<OrderBody>(&a.reply.body) {
                Ok(o) => o,
                Err(_) => return self.unknown_outcome(sent).await,
            },
            Ok(a) if a.error.as_ref().is_some_and(|e| e.code == "hold_expired") => {
                // Too slow: the tickets go back once the server expires the hold; start over.
                self.await_expiry(plan, hold_id, sent).await;
                self.resolved(quantity);
                return End::Again;
            }
            Ok(_) | Err(_) => return self.unknown_outcome(sent).await,
        };
        self.acks().orders.push(order.id.clone());
        match self.payments {
            PaymentMode::Test => self.pay_test(plan, &order.id, sent).await,
            PaymentMode::Simulated => Box::pin(self.pay_simulated(plan, &order.id, quantity, sent)).await,
        }
    }

    /// The order is paid: its tickets are the buyer's.
    fn bought(&self, order: OrderBody) -> End {
        let codes: Vec<String> = order.tickets.into_iter().map(|t| t.code).collect();
        let n = codes.len() as u32;
        self.acks().paid.push((order.id, codes));
        self.resolved(0);
        End::Bought(n)
    }

    /// `test`: the pay request waits for the saga and answers `200` paid.
    async fn pay_test(&self, plan: &Plan, order_id: &str, sent: Instant) -> End {
        let path = format!("/v1/orders/{order_id}/pay");
        match self
            .call(
                Op::Pay,
                Priority::InPurchase,
                Method::POST,
                &path,
                Some(&plan.auth),
                Some(Bytes::from_static(PAY_TEST)),
            )
            .await
        {
            Ok(a) if a.reply.status == 200 => match serde_json::from_slice::<OrderBody>(&a.reply.body) {
                Ok(o) if o.state == "paid" => self.bought(o),
                // Paid after the order expired and the tickets were gone: refund_required.
                Ok(_) => {
                    self.resolved(0);
                    End::Again
                }
                Err(_) => self.unknown_outcome(sent).await,
            },
            Ok(_) | Err(_) => self.unknown_outcome(sent).await,
        }
    }

    /// `simulated`: pay without waiting (`202`), poll the order until the attempt is over; pay
    /// again after a decline, up to `pay_attempts` attempts, then cancel the order.
    async fn pay_simulated(&self, plan: &Plan, order_id: &str, quantity: u32, sent: Instant) -> End {
        let pay_path = format!("/v1/orders/{order_id}/pay");
        let order_path = format!("/v1/orders/{order_id}");
        for _ in 0..self.pay_attempts {
            let answer = self
                .call_at(
                    None,
                    Op::Pay,
                    Priority::InPurchase,
                    Method::POST,
                    &pay_path,
                    Some(&plan.auth),
                    Some(&PREFER_NO_WAIT),
                    Some(Bytes::from_static(PAY_SIMULATED)),
                )
                .await;
            let first = match answer {
                Ok(a) if matches!(a.reply.status, 200 | 202) => serde_json::from_slice::<OrderBody>(&a.reply.body).ok(),
                // Too late: the order's deadline passed. Its tickets are back once the server
                // shows it expired.
                Ok(a) if a.error.as_ref().is_some_and(|e| e.code == "hold_expired") => None,
                Ok(_) | Err(_) => return self.unknown_outcome(sent).await,
            };
            let order = match first {
                Some(o) if o.standing() != Standing::Pending => Some(o),
                _ => self.poll_order(plan, &order_path).await,
            };
            let Some(order) = order else {
                return self.unknown_outcome(sent).await;
            };
            match order.standing() {
                Standing::Paid => return self.bought(order),
                Standing::PayAgain { declined } => {
                    if declined {
                        self.tally.declines_seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Standing::Lapsed => {
                    self.resolved(quantity);
                    return End::Again;
                }
                Standing::Pending => return self.unknown_outcome(sent).await,
            }
        }
        self.cancel(plan, order_id, quantity, sent).await
    }

    /// Looks at the order after `PAY_POLL_FIRST`, then every `PAY_POLL_EVERY`, until its
    /// payment is over (bounded by the run's deadline). `None` if it never was.
    async fn poll_order(&self, plan: &Plan, path: &str) -> Option<OrderBody> {
        tokio::time::sleep(PAY_POLL_FIRST).await;
        loop {
            let a = self
                .call(
                    Op::OrderStatus,
                    Priority::InPurchase,
                    Method::GET,
                    path,
                    Some(&plan.auth),
                    None,
                )
                .await
                .ok()?;
            if !a.reply.ok() {
                return None;
            }
            let order = serde_json::from_slice::<OrderBody>(&a.reply.body).ok()?;
            if order.standing() != Standing::Pending {
                return Some(order);
            }
            if Instant::now() + PAY_POLL_EVERY >= self.deadline {
                return None;
            }
            tokio::time::sleep(PAY_POLL_EVERY).await;
        }
    }

    /// Every attempt was declined: the buyer cancels the order, and its tickets go back.
    async fn cancel(&self, plan: &Plan, order_id: &str, quantity: u32, sent: Instant) -> End {
        let path = format!("/v1/orders/{order_id}/cancel");
        match self
            .call(
                Op::Cancel,
                Priority::InPurchase,
                Method::POST,
                &path,
                Some(&plan.auth),
                None,
            )
            .await
        {
            Ok(a) if a.reply.ok() => {
                self.acks().cancelled.push(order_id.to_string());
                self.resolved(quantity);
                End::Declined
            }
            Ok(_) | Err(_) => self.unknown_outcome(sent).await,
        }
    }

    /// One more hold that would take this buyer past the limit: the server must refuse it.
    /// Should it accept, the purchase goes through, so the audit sees the excess.
    async fn try_past_limit(&self, plan: &Plan, bought: u32) {
        let quantity = (self.sale.max_per_buyer + 1).saturating_sub(bought).max(1);
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let sent = Instant::now();
        match self.hold(plan, self.sale.general, quantity).await {
            Ok(a) if a.reply.status == 201 => {
                self.tally.greedy_accepted.fetch_add(1, Ordering::Relaxed);
                if let Ok(hold) = serde_json::from_slice::<HoldBody>(&a.reply.body) {
                    self.acks().holds.push(hold.id.clone());
                    if let End::Bought(n) = self.checkout_and_pay(plan, &hold.id, quantity, sent).await {
                        self.tally.tickets_paid.fetch_add(n as u64, Ordering::Relaxed);
                    }
                } else {
                    self.resolved(0);
                }
            }
            Ok(_) => {
                self.tally.greedy_refused.fetch_add(1, Ordering::Relaxed);
                self.resolved(0);
            }
            Err(_) => {
                self.unknown_outcome(sent).await;
            }
        }
    }

    /// Runs until `done` is set: when buyers wait and no hold is outstanding, looks at the
    /// sale once and either wakes as many waiters as tickets are left or declares sold out.
    pub async fn coordinate(&self, done: &AtomicBool) {
        while !done.load(Ordering::Acquire) && Instant::now() < self.deadline {
            tokio::time::sleep(COORDINATOR_TICK).await;
            if self.sold_out.load(Ordering::Acquire)
                || self.waiters.load(Ordering::Acquire) == 0
                || self.outstanding.load(Ordering::Acquire) != 0
            {
                continue;
            }
            let Some(page) = self.read_sale(Priority::InPurchase, None).await else {
                continue;
            };
            let left = page.ticket_types.iter().map(|t| t.available).max().unwrap_or(0);
            if left == 0 && self.outstanding.load(Ordering::Acquire) == 0 {
                self.sold_out.store(true, Ordering::Release);
                self.returned.notify_waiters();
            } else {
                self.returned(left);
            }
        }
        // Whatever is still waiting leaves now.
        self.sold_out.store(true, Ordering::Release);
        self.returned.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(available: u32) -> Bytes {
        Bytes::from(format!(
            r#"{{"id":"evt_1","name":"x","ticket_types":[{{"id":0,"name":"ga","available":{available}}},{{"id":1,"available":0}}]}}"#
        ))
    }

    #[test]
    fn the_page_cache_parses_new_bytes_and_reuses_identical_ones() {
        let cache = PageCache::default();
        let first = cache.parse(&page(5)).unwrap();
        assert_eq!(
            first.ticket_types,
            [
                TypeAvailability { id: 0, available: 5 },
                TypeAvailability { id: 1, available: 0 }
            ]
        );
        // The same bytes (another buffer): the same parse, not a new one.
        let again = cache.parse(&page(5)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // Changed bytes: parsed anew.
        let changed = cache.parse(&page(4)).unwrap();
        assert_eq!(changed.ticket_types[0].available, 4);
        // A body that is not a page: nothing, and the last good page stays cached.
        assert!(cache.parse(&Bytes::from_static(b"{oops")).is_none());
        assert!(Arc::ptr_eq(&changed, &cache.parse(&page(4)).unwrap()));
    }
}
