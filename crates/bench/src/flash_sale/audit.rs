//! The audit after the run. It trusts the server's log, not the client's counters: it reads
//! the sale's stats and the whole event feed through the admin API, folds the feed into
//! holds, orders and tickets, and checks the invariants of a flash sale:
//!
//! - sold = min(capacity, demand), where demand is what the paying buyers wanted;
//! - nothing oversold: per quota, held + sold ≤ capacity, in the stats and in the feed;
//! - the feed and the stats agree (sold and held per ticket type);
//! - every buyer within the per-buyer limit;
//! - every 2xx the client saw is in the log (hold placed, order placed, order paid with the
//!   same ticket codes, hold released): lost acknowledgements are counted;
//! - every ticket code unique; nothing still held at the end;
//! - payments (whichever provider): every paid order has exactly one captured attempt, no
//!   attempt or order captured twice, every order and attempt at an end (none left pending),
//!   money captured for an unpaid order refunded, and the declines and paid orders the buyers
//!   saw are the log's. Before all this, [`await_saga`] waits (bounded) until the payment
//!   saga has nothing left to do; the admin order timelines of a sample of paid orders, and
//!   of every order that fails a check, are read too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use serde::{Deserialize, Serialize};

use super::scenario::{Acks, Admin, Sale};

/// Pages of 1000 events read at most (a backstop: 100 M events).
const FEED_PAGES_MAX: usize = 100_000;
const FEED_PAGE: usize = 1000;
/// How long the feed may trail the stats at the end: 50 × 100 ms.
const FEED_CATCH_UP_TRIES: usize = 50;
const FEED_CATCH_UP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long the payment saga may take to finish after the buyers are done: far longer than
/// any payment of the bench takes (two provider calls of at most 300 ms by default).
pub const SAGA_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
const SAGA_DRAIN_POLL: Duration = Duration::from_millis(100);
/// Paid orders whose admin timeline is read and checked as well as the feed.
const TIMELINES_SAMPLE: usize = 20;
/// Orders failing a payment check whose timeline goes into the failure message.
const TIMELINES_IN_FAILURE: usize = 3;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Audit {
    /// Tickets sold, from the server's stats.
    pub sold: u64,
    /// Tickets sold, from the feed.
    pub sold_in_feed: u64,
    pub capacity: u64,
    /// What the paying buyers wanted.
    pub demand: u64,
    pub expected_sold: u64,
    /// Tickets beyond a quota's capacity, summed over quotas (worst of stats and feed).
    pub oversold: u64,
    /// 2xx answers the client saw that the log does not show.
    pub lost_acknowledged: u64,
    pub duplicate_ticket_codes: u64,
    pub buyers_over_limit: u64,
    /// Tickets still held at the end (holds or unpaid orders).
    pub held_at_end: u64,
    pub feed_events: u64,
    pub holds_placed: u64,
    pub holds_released: u64,
    pub holds_expired: u64,
    pub orders_placed: u64,
    pub orders_paid: u64,
    pub orders_expired: u64,
    pub buyers_with_tickets: u64,
    pub payments: Payments,
    /// How long the payment saga took to finish its work after the buyers were done.
    pub saga_drain_secs: f64,
    /// Every failed check, in words; empty means the audit passed.
    pub failures: Vec<String>,
}

/// Payment attempts as the log tells them, whichever the provider.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Payments {
    /// Attempts captured (money moved).
    pub captured: u64,
    /// Attempts voided (authorised or maybe, then released: no money moved).
    pub voided: u64,
    /// Refunds issued through the provider.
    pub refunded: u64,
    /// Attempts the provider declined.
    pub declined: u64,
    /// Orders with more than one capture (of one attempt or of several): must be 0.
    pub double_captured: u64,
    /// Orders not at an end (awaiting payment, payment pending, refund required) or with an
    /// attempt not at an end: must be 0.
    pub non_terminal: u64,
}

/// What the buyers saw of payments, to hold against the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// Attempts the buyers saw declined.
    pub declines: u64,
    /// Tickets the buyers who cancelled after their last decline had wanted: demand that
    /// left the sale.
    pub demand_withdrawn: u64,
}

#[derive(Deserialize)]
struct Stats {
    sold: u64,
    held: u64,
    quotas: Vec<QuotaStats>,
    ticket_types: Vec<TypeStats>,
    orders: OrderCounts,
}

#[derive(Deserialize)]
struct OrderCounts {
    awaiting_payment: u64,
    payment_pending: u64,
}

#[derive(Deserialize)]
struct QuotaStats {
    id: u32,
    capacity: u64,
    held: u64,
    sold: u64,
}

#[derive(Deserialize)]
struct TypeStats {
    id: u32,
    held: u64,
    sold: u64,
}

#[derive(Deserialize)]
struct FeedPage {
    events: Vec<FeedEvent>,
    next_cursor: String,
}

#[derive(Deserialize)]
struct FeedEvent {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldEnd {
    Active,
    Released,
    Expired,
    Converted,
}

struct FeedHold {
    buyer: String,
    items: Vec<(u32, u64)>,
    end: HoldEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderEnd {
    /// Awaiting payment or a payment under way: holds its tickets.
    Awaiting,
    Paid,
    Cancelled,
    /// Money arrived for tickets that were gone; it must go back.
    RefundRequired,
    /// Expired, failed, or refunded after `RefundRequired`.
    Other,
}

impl OrderEnd {
    fn is_terminal(self) -> bool {
        !matches!(self, OrderEnd::Awaiting | OrderEnd::RefundRequired)
    }
}

/// A payment attempt's last state in the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    Requested,
    Created,
    Authorised,
    Captured,
    VoidRequired,
    Voided,
    Declined,
    Failed,
}

impl AttemptState {
    fn is_final(self) -> bool {
        matches!(
            self,
            AttemptState::Captured | AttemptState::Voided | AttemptState::Declined | AttemptState::Failed
        )
    }

    fn of_event(kind: &str) -> Option<AttemptState> {
        Some(match kind {
            "payment_requested" => AttemptState::Requested,
            "payment_created" => AttemptState::Created,
            "payment_authorised" => AttemptState::Authorised,
            "payment_captured" => AttemptState::Captured,
            "payment_void_required" => AttemptState::VoidRequired,
            "payment_voided" => AttemptState::Voided,
            "payment_declined" => AttemptState::Declined,
            "payment_failed" => AttemptState::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    state: AttemptState,
    /// `payment_captured` events for this attempt (more than one is a double capture).
    captures: u32,
}

struct FeedOrder {
    hold: String,
    end: OrderEnd,
}

/// What the feed says, folded.
#[derive(Default)]
struct Folded {
    /// Where the next feed page starts.
    cursor: String,
    quotas: HashMap<u32, (u64, Vec<u32>)>,
    max_per_buyer: Option<u64>,
    holds: HashMap<String, FeedHold>,
    orders: HashMap<String, FeedOrder>,
    /// Ticket code → ticket type, for tickets issued and not refunded.
    tickets: HashMap<String, u32>,
    /// Order id → codes issued when it was paid.
    paid_codes: HashMap<String, Vec<String>>,
    duplicates: u64,
    events: u64,
    released: u64,
    expired: u64,
    orders_expired: u64,
    /// Order id → its payment attempts by number.
    attempts: HashMap<String, BTreeMap<u64, Attempt>>,
    refunds_issued: u64,
}

fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(|x| x.as_str())
        .with_context(|| format!("feed event without {key}"))
}

fn u64_field(v: &serde_json::Value, key: &str) -> anyhow::Result<u64> {
    v.get(key)
        .and_then(|x| x.as_u64())
        .with_context(|| format!("feed event without {key}"))
}

impl Folded {
    fn apply(&mut self, e: &FeedEvent) -> anyhow::Result<()> {
        self.events += 1;
        let d = &e.data;
        match e.kind.as_str() {
            "sale_created" => self.max_per_buyer = d.get("max_tickets_per_buyer").and_then(|v| v.as_u64()),
            "quota_added" => {
                let types = d
                    .get("ticket_type_ids")
                    .and_then(|v| v.as_array())
                    .context("quota without ticket types")?
                    .iter()
                    .filter_map(|t| t.as_u64().map(|t| t as u32))
                    .collect();
                self.quotas
                    .insert(u64_field(d, "quota_id")? as u32, (u64_field(d, "capacity")?, types));
            }
            "hold_placed" => {
                let items = d
                    .get("items")
                    .and_then(|v| v.as_array())
                    .context("hold without items")?
                    .iter()
                    .map(|i| Ok((u64_field(i, "ticket_type_id")? as u32, u64_field(i, "quantity")?)))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                self.holds.insert(
                    str_field(d, "hold_id")?.to_string(),
                    FeedHold {
                        buyer: str_field(d, "buyer_id")?.to_string(),
                        items,
                        end: HoldEnd::Active,
                    },
                );
            }
            "hold_released" | "hold_expired" => {
                let released = e.kind == "hold_released";
                if released {
                    self.released += 1;
                } else {
                    self.expired += 1;
                }
                if let Some(h) = self.holds.get_mut(str_field(d, "hold_id")?) {
                    h.end = if released { HoldEnd::Released } else { HoldEnd::Expired };
                }
            }
            "order_placed" => {
                let hold = str_field(d, "hold_id")?.to_string();
                if let Some(h) = self.holds.get_mut(&hold) {
                    h.end = HoldEnd::Converted;
                }
                self.orders.insert(
                    str_field(d, "order_id")?.to_string(),
                    FeedOrder {
                        hold,
                        end: OrderEnd::Awaiting,
                    },
                );
            }
            "order_paid" => {
                let order = str_field(d, "order_id")?.to_string();
                let mut codes = Vec::new();
                for t in d.get("tickets").and_then(|v| v.as_array()).into_iter().flatten() {
                    let code = str_field(t, "code")?.to_string();
                    let ticket_type = u64_field(t, "ticket_type_id")? as u32;
                    if self.tickets.insert(code.clone(), ticket_type).is_some() {
                        self.duplicates += 1;
                    }
                    codes.push(code);
                }
                if let Some(o) = self.orders.get_mut(&order) {
                    o.end = OrderEnd::Paid;
                }
                self.paid_codes.insert(order, codes);
            }
            "order_expired" | "order_cancelled" | "order_payment_failed" | "order_refund_required" => {
                if e.kind == "order_expired" {
                    self.orders_expired += 1;
                }
                if let Some(o) = self.orders.get_mut(str_field(d, "order_id")?) {
                    o.end = match e.kind.as_str() {
                        "order_cancelled" => OrderEnd::Cancelled,
                        "order_refund_required" => OrderEnd::RefundRequired,
                        _ => OrderEnd::Other,
                    };
                }
            }
            "order_refunded" => {
                for c in d.get("ticket_codes").and_then(|v| v.as_array()).into_iter().flatten() {
                    if let Some(c) = c.as_str() {
                        self.tickets.remove(c);
                    }
                }
                if let Some(o) = self.orders.get_mut(str_field(d, "order_id")?)
                    && o.end == OrderEnd::RefundRequired
                {
                    o.end = OrderEnd::Other;
                }
            }
            "refund_issued" => self.refunds_issued += 1,
            kind => {
                if let Some(state) = AttemptState::of_event(kind) {
                    self.attempt(d, state)?;
                }
            }
        }
        Ok(())
    }

    /// A payment event: the attempt's new state (and a late authorisation that took an
    /// expired order's tickets back makes it hold them again).
    fn attempt(&mut self, d: &serde_json::Value, state: AttemptState) -> anyhow::Result<()> {
        let order = str_field(d, "order_id")?;
        let number = u64_field(d, "attempt")?;
        let attempt = self
            .attempts
            .entry(order.to_string())
            .or_default()
            .entry(number)
            .or_insert(Attempt { state, captures: 0 });
        attempt.state = state;
        if state == AttemptState::Captured {
            attempt.captures += 1;
        }
        let reinstated = d.get("reinstated").and_then(|v| v.as_bool()) == Some(true);
        if state == AttemptState::Authorised
            && reinstated
            && let Some(o) = self.orders.get_mut(order)
        {
            o.end = OrderEnd::Awaiting;
        }
        Ok(())
    }

    /// The payments block, and the orders that break a payment rule: (double captured, not at
    /// an end, paid without exactly one captured attempt, captured but neither paid nor
    /// refunded is counted apart as `captured_unpaid`).
    fn payments(&self) -> (Payments, PaymentFindings) {
        let mut p = Payments {
            refunded: self.refunds_issued,
            ..Payments::default()
        };
        let mut f = PaymentFindings::default();
        for (id, order) in &self.orders {
            let attempts = self.attempts.get(id);
            let all = attempts.into_iter().flat_map(|a| a.values());
            let (mut captured, mut captures, mut open) = (0u64, 0u64, false);
            for a in all {
                match a.state {
                    AttemptState::Captured => p.captured += 1,
                    AttemptState::Voided => p.voided += 1,
                    AttemptState::Declined => p.declined += 1,
                    _ => {}
                }
                captured += u64::from(a.state == AttemptState::Captured);
                captures += u64::from(a.captures);
                open |= !a.state.is_final();
            }
            if captures > 1 {
                f.double_captured.push(id.clone());
            }
            if open || !order.end.is_terminal() {
                f.non_terminal.push(id.clone());
            }
            if order.end == OrderEnd::Paid && captured != 1 {
                f.paid_without_one_capture.push(id.clone());
            }
            if order.end != OrderEnd::Paid && captured > 0 {
                f.captured_unpaid += captured;
            }
        }
        p.double_captured = f.double_captured.len() as u64;
        p.non_terminal = f.non_terminal.len() as u64;
        (p, f)
    }
}

/// Orders that break a payment rule (see [`Folded::payments`]).
#[derive(Default)]
struct PaymentFindings {
    double_captured: Vec<String>,
    non_terminal: Vec<String>,
    paid_without_one_capture: Vec<String>,
    /// Captured attempts of orders that are not paid: each must have been refunded.
    captured_unpaid: u64,
}

/// Reads the feed from `folded.cursor` to its current end.
async fn read_feed(admin: &mut Admin, event_id: &str, folded: &mut Folded) -> anyhow::Result<()> {
    for _ in 0..FEED_PAGES_MAX {
        let path = format!("/v1/admin/feed?after={}&limit={FEED_PAGE}", folded.cursor);
        let body = admin.expect(Method::GET, &path, None, 200).await?;
        let page: FeedPage = serde_json::from_slice(&body).context("parsing a feed page")?;
        if page.events.is_empty() || page.next_cursor == folded.cursor {
            return Ok(());
        }
        for e in page.events.iter().filter(|e| e.event_id == event_id) {
            folded.apply(e)?;
        }
        folded.cursor = page.next_cursor;
    }
    bail!("the feed did not end within {FEED_PAGES_MAX} pages")
}

/// Sold and held per ticket type, as the feed tells it.
fn feed_counts(feed: &Folded) -> (HashMap<u32, u64>, HashMap<u32, u64>) {
    let mut sold_by_type: HashMap<u32, u64> = HashMap::new();
    for t in feed.tickets.values() {
        *sold_by_type.entry(*t).or_insert(0) += 1;
    }
    let mut held_by_type: HashMap<u32, u64> = HashMap::new();
    let mut hold_items = |h: &FeedHold| {
        for &(t, q) in &h.items {
            *held_by_type.entry(t).or_insert(0) += q;
        }
    };
    for h in feed.holds.values().filter(|h| h.end == HoldEnd::Active) {
        hold_items(h);
    }
    for o in feed.orders.values().filter(|o| o.end == OrderEnd::Awaiting) {
        if let Some(h) = feed.holds.get(&o.hold) {
            hold_items(h);
        }
    }
    (sold_by_type, held_by_type)
}

/// Where the stats and the feed disagree, per ticket type.
fn disagreements(stats: &Stats, sold: &HashMap<u32, u64>, held: &HashMap<u32, u64>) -> Vec<String> {
    stats
        .ticket_types
        .iter()
        .filter_map(|t| {
            let (fs, fh) = (
                sold.get(&t.id).copied().unwrap_or(0),
                held.get(&t.id).copied().unwrap_or(0),
            );
            ((fs, fh) != (t.sold, t.held)).then(|| {
                format!(
                    "ticket type {}: stats say sold {} held {}, the feed says sold {fs} held {fh}",
                    t.id, t.sold, t.held
                )
            })
        })
        .collect()
}

/// Waits until the payment saga has nothing left to do for the sale: no order awaiting
/// payment or with a payment under way (the stats), and the saga's backlog empty (its
/// `taquilla_saga_pending` gauge, when the server exposes it). Bounded by `timeout`: `Err`
/// says what was still pending. `Ok` is how long it took.
pub async fn await_saga(admin: &mut Admin, sale: &Sale, timeout: Duration) -> anyhow::Result<Result<Duration, String>> {
    let started = Instant::now();
    let path = format!("/v1/admin/events/{}/stats", sale.event_id);
    loop {
        let body = admin.expect(Method::GET, &path, None, 200).await?;
        let stats: Stats = serde_json::from_slice(&body).context("parsing the stats")?;
        let backlog = match admin.call(Method::GET, "/metrics", None).await? {
            (200, text) => gauge(&String::from_utf8_lossy(&text), "taquilla_saga_pending"),
            _ => None,
        };
        let o = &stats.orders;
        if o.awaiting_payment == 0 && o.payment_pending == 0 && backlog.unwrap_or(0) == 0 {
            return Ok(Ok(started.elapsed()));
        }
        if started.elapsed() >= timeout {
            return Ok(Err(format!(
                "the payment saga had not finished {timeout:?} after the buyers: {} orders awaiting payment, {} with a payment pending, saga backlog {}",
                o.awaiting_payment,
                o.payment_pending,
                backlog.map_or("unknown".into(), |b| b.to_string())
            )));
        }
        tokio::time::sleep(SAGA_DRAIN_POLL).await;
    }
}

/// A gauge's value from Prometheus text.
pub fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Reads the stats and the feed and checks everything; `demand` is the tickets the paying
/// buyers wanted, `seen` what they saw of payments.
pub async fn run(admin: &mut Admin, sale: &Sale, acks: &Acks, demand: u64, seen: Seen) -> anyhow::Result<Audit> {
    // The sale is over: close it. Besides being what an organiser does, closing is a command
    // with a reply, so the log is flushed past every expiry the engine applied on its own
    // (an expiry-only batch has nobody waiting, and is flushed with the next batch).
    let close = format!("/v1/admin/events/{}/close", sale.event_id);
    admin.expect(Method::POST, &close, None, 200).await?;
    let path = format!("/v1/admin/events/{}/stats", sale.event_id);
    let mut feed = Folded {
        cursor: "0".into(),
        ..Folded::default()
    };
    // Effects nobody waits for (expiries) reach the in-memory state at once and the log with
    // a later flush, so the feed may trail the stats briefly: read on until they agree
    // (bounded), and report a disagreement only if it lasts.
    let mut tries = 0;
    let (stats, sold_by_type, held_by_type, disagree) = loop {
        let body = admin.expect(Method::GET, &path, None, 200).await?;
        let stats: Stats = serde_json::from_slice(&body).context("parsing the stats")?;
        read_feed(admin, &sale.event_id, &mut feed).await?;
        let (sold, held) = feed_counts(&feed);
        let disagree = disagreements(&stats, &sold, &held);
        tries += 1;
        if disagree.is_empty() || tries >= FEED_CATCH_UP_TRIES {
            break (stats, sold, held, disagree);
        }
        tokio::time::sleep(FEED_CATCH_UP_INTERVAL).await;
    };

    let mut a = Audit {
        sold: stats.sold,
        capacity: sale.capacity as u64,
        demand,
        expected_sold: demand.saturating_sub(seen.demand_withdrawn).min(sale.capacity as u64),
        held_at_end: stats.held,
        feed_events: feed.events,
        holds_placed: feed.holds.len() as u64,
        holds_released: feed.released,
        holds_expired: feed.expired,
        orders_placed: feed.orders.len() as u64,
        orders_paid: feed.orders.values().filter(|o| o.end == OrderEnd::Paid).count() as u64,
        orders_expired: feed.orders_expired,
        duplicate_ticket_codes: feed.duplicates,
        failures: disagree,
        ..Audit::default()
    };
    a.sold_in_feed = sold_by_type.values().sum();

    // Oversold, per quota, from both views.
    for q in &stats.quotas {
        let mut over = (q.held + q.sold).saturating_sub(q.capacity);
        if let Some((capacity, types)) = feed.quotas.get(&q.id) {
            let in_feed: u64 = types
                .iter()
                .map(|t| sold_by_type.get(t).copied().unwrap_or(0) + held_by_type.get(t).copied().unwrap_or(0))
                .sum();
            over = over.max(in_feed.saturating_sub(*capacity));
        }
        if over > 0 {
            a.failures.push(format!("quota {} oversold by {over}", q.id));
        }
        a.oversold += over;
    }

    // Per buyer: tickets of paid orders.
    let mut per_buyer: HashMap<&str, u64> = HashMap::new();
    for (order, codes) in &feed.paid_codes {
        let live = codes.iter().filter(|c| feed.tickets.contains_key(*c)).count() as u64;
        if let Some(h) = feed.orders.get(order).and_then(|o| feed.holds.get(&o.hold)) {
            *per_buyer.entry(h.buyer.as_str()).or_insert(0) += live;
        }
    }
    a.buyers_with_tickets = per_buyer.len() as u64;
    if let Some(limit) = feed.max_per_buyer.or(Some(sale.max_per_buyer as u64)) {
        a.buyers_over_limit = per_buyer.values().filter(|&&n| n > limit).count() as u64;
    }

    // Every acknowledgement the client saw is in the log.
    let mut lost = 0u64;
    lost += acks.holds.iter().filter(|h| !feed.holds.contains_key(*h)).count() as u64;
    lost += acks.orders.iter().filter(|o| !feed.orders.contains_key(*o)).count() as u64;
    lost += acks
        .released
        .iter()
        .filter(|h| feed.holds.get(*h).is_none_or(|h| h.end != HoldEnd::Released))
        .count() as u64;
    for (order, codes) in &acks.paid {
        let same = feed.paid_codes.get(order).is_some_and(|logged| {
            logged.len() == codes.len() && {
                let logged: HashSet<&String> = logged.iter().collect();
                codes.iter().all(|c| logged.contains(c))
            }
        });
        if !same {
            lost += 1;
        }
    }
    lost += acks
        .cancelled
        .iter()
        .filter(|o| feed.orders.get(*o).is_none_or(|o| o.end != OrderEnd::Cancelled))
        .count() as u64;
    a.lost_acknowledged = lost;

    check_payments(admin, &feed, acks, seen, &mut a).await?;

    if a.sold != a.sold_in_feed {
        a.failures
            .push(format!("stats say {} sold, the feed {}", a.sold, a.sold_in_feed));
    }
    if a.sold != a.expected_sold {
        a.failures.push(format!(
            "sold {} but min(capacity {}, demand {} less {} withdrawn after declines) is {}",
            a.sold, a.capacity, a.demand, seen.demand_withdrawn, a.expected_sold
        ));
    }
    if a.lost_acknowledged > 0 {
        a.failures.push(format!(
            "{} acknowledged answers missing from the log",
            a.lost_acknowledged
        ));
    }
    if a.duplicate_ticket_codes > 0 {
        a.failures
            .push(format!("{} duplicate ticket codes", a.duplicate_ticket_codes));
    }
    if a.buyers_over_limit > 0 {
        a.failures
            .push(format!("{} buyers over the per-buyer limit", a.buyers_over_limit));
    }
    if a.held_at_end > 0 {
        a.failures
            .push(format!("{} tickets still held at the end", a.held_at_end));
    }
    Ok(a)
}

/// The payment checks (see the module docs), from the feed and the admin order timelines.
async fn check_payments(
    admin: &mut Admin,
    feed: &Folded,
    acks: &Acks,
    seen: Seen,
    a: &mut Audit,
) -> anyhow::Result<()> {
    let (payments, findings) = feed.payments();
    a.payments = payments;
    let mut failures = Vec::new();
    for (orders, what) in [
        (&findings.double_captured, "orders captured more than once"),
        (&findings.non_terminal, "orders or payments left pending at the end"),
        (
            &findings.paid_without_one_capture,
            "paid orders without exactly one captured payment",
        ),
    ] {
        if !orders.is_empty() {
            let mut sample = orders.clone();
            sample.sort();
            sample.truncate(TIMELINES_IN_FAILURE);
            let mut timelines = Vec::new();
            for id in &sample {
                timelines.push(timeline(admin, id).await?.describe(id));
            }
            failures.push(format!("{} {what}, e.g. {}", orders.len(), timelines.join("; ")));
        }
    }
    if findings.captured_unpaid > payments.refunded {
        failures.push(format!(
            "{} payments captured for orders that are not paid, {} refunds issued",
            findings.captured_unpaid, payments.refunded
        ));
    }
    let paid = a.orders_paid;
    if paid != acks.paid.len() as u64 {
        failures.push(format!(
            "the log has {paid} orders paid, the buyers saw {} paid",
            acks.paid.len()
        ));
    }
    if payments.declined != seen.declines {
        failures.push(format!(
            "the log has {} payments declined, the buyers saw {}",
            payments.declined, seen.declines
        ));
    }
    // The organiser's view of a sample of paid orders agrees with the feed.
    let mut sample: Vec<&String> = feed
        .orders
        .iter()
        .filter(|(_, o)| o.end == OrderEnd::Paid)
        .map(|(id, _)| id)
        .collect();
    sample.sort();
    let step = (sample.len() / TIMELINES_SAMPLE).max(1);
    for id in sample.into_iter().step_by(step).take(TIMELINES_SAMPLE) {
        let t = timeline(admin, id).await?;
        if t.state != "paid" || t.captured() != 1 || t.attempts.iter().any(|p| !p.is_final()) {
            failures.push(format!(
                "the organiser's timeline disagrees with the feed (paid, one capture): {}",
                t.describe(id)
            ));
        }
    }
    a.failures.extend(failures);
    Ok(())
}

/// An order as `GET /v1/admin/orders/{id}` shows it: its state and every attempt's.
struct Timeline {
    state: String,
    attempts: Vec<TimelineAttempt>,
}

#[derive(Deserialize)]
struct TimelineAttempt {
    attempt: u32,
    state: String,
    steps: Vec<TimelineStep>,
}

#[derive(Deserialize)]
struct TimelineStep {
    state: String,
}

impl TimelineAttempt {
    fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "captured" | "voided" | "declined" | "failed")
    }
}

impl Timeline {
    /// Attempts captured, by their steps (a capture shows as a step).
    fn captured(&self) -> usize {
        self.attempts
            .iter()
            .map(|p| p.steps.iter().filter(|s| s.state == "captured").count())
            .sum()
    }

    fn describe(&self, id: &str) -> String {
        let attempts: Vec<String> = self
            .attempts
            .iter()
            .map(|p| {
                let steps: Vec<&str> = p.steps.iter().map(|s| s.state.as_str()).collect();
                format!("attempt {} {} ({})", p.attempt, p.state, steps.join(" → "))
            })
            .collect();
        format!("{id} {} [{}]", self.state, attempts.join(", "))
    }
}

#[derive(Deserialize)]
struct AdminOrder {
    order: AdminOrderState,
    payments: Vec<TimelineAttempt>,
}

#[derive(Deserialize)]
struct AdminOrderState {
    state: String,
}

async fn timeline(admin: &mut Admin, order: &str) -> anyhow::Result<Timeline> {
    let body = admin
        .expect(Method::GET, &format!("/v1/admin/orders/{order}"), None, 200)
        .await?;
    let o: AdminOrder = serde_json::from_slice(&body).with_context(|| format!("parsing the timeline of {order}"))?;
    Ok(Timeline {
        state: o.order.state,
        attempts: o.payments,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fold(events: &[(&str, serde_json::Value)]) -> Folded {
        let mut f = Folded::default();
        for (kind, data) in events {
            f.apply(&FeedEvent {
                event_id: "evt_1".into(),
                kind: (*kind).into(),
                data: data.clone(),
            })
            .unwrap();
        }
        f
    }

    /// A hold of two tickets by `buyer`, checked out as order `order`.
    fn ordered(hold: &str, order: &str) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            (
                "hold_placed",
                json!({"hold_id": hold, "buyer_id": "b", "items": [{"ticket_type_id": 0, "quantity": 2}]}),
            ),
            ("order_placed", json!({"order_id": order, "hold_id": hold})),
        ]
    }

    fn step(kind: &'static str, order: &str, attempt: u64) -> (&'static str, serde_json::Value) {
        (kind, json!({"order_id": order, "attempt": attempt}))
    }

    fn paid(order: &str, code: &str) -> (&'static str, serde_json::Value) {
        (
            "order_paid",
            json!({"order_id": order, "tickets": [{"code": code, "ticket_type_id": 0}]}),
        )
    }

    #[test]
    fn a_paid_order_after_a_decline_has_one_capture_and_ends() {
        let mut events = ordered("h1", "o1");
        events.extend([
            step("payment_requested", "o1", 1),
            step("payment_declined", "o1", 1),
            step("payment_requested", "o1", 2),
            step("payment_authorised", "o1", 2),
            step("payment_captured", "o1", 2),
            paid("o1", "c1"),
        ]);
        let (p, f) = fold(&events).payments();
        assert_eq!(
            p,
            Payments {
                captured: 1,
                declined: 1,
                ..Payments::default()
            }
        );
        assert!(f.non_terminal.is_empty() && f.paid_without_one_capture.is_empty());
    }

    #[test]
    fn two_captures_of_one_order_are_a_double_capture() {
        // Two attempts captured…
        let mut events = ordered("h1", "o1");
        events.extend([
            step("payment_requested", "o1", 1),
            step("payment_captured", "o1", 1),
            step("payment_requested", "o1", 2),
            step("payment_captured", "o1", 2),
            paid("o1", "c1"),
        ]);
        // …or one attempt captured twice.
        events.extend(ordered("h2", "o2"));
        events.extend([
            step("payment_requested", "o2", 1),
            step("payment_captured", "o2", 1),
            step("payment_captured", "o2", 1),
            paid("o2", "c2"),
        ]);
        let (p, f) = fold(&events).payments();
        assert_eq!(p.double_captured, 2);
        assert_eq!(f.double_captured.len(), 2);
        assert_eq!(f.paid_without_one_capture, ["o1"], "two captured attempts");
    }

    #[test]
    fn an_order_or_an_attempt_not_at_an_end_is_non_terminal() {
        // o1 pending; o2 expired but its attempt still to void; o3 expired and voided.
        let mut events = ordered("h1", "o1");
        events.push(step("payment_requested", "o1", 1));
        events.extend(ordered("h2", "o2"));
        events.extend([
            step("payment_requested", "o2", 1),
            ("order_expired", json!({"order_id": "o2"})),
            step("payment_void_required", "o2", 1),
        ]);
        events.extend(ordered("h3", "o3"));
        events.extend([
            step("payment_requested", "o3", 1),
            ("order_expired", json!({"order_id": "o3"})),
            step("payment_void_required", "o3", 1),
            step("payment_voided", "o3", 1),
        ]);
        let (p, f) = fold(&events).payments();
        let mut open = f.non_terminal.clone();
        open.sort();
        assert_eq!(open, ["o1", "o2"]);
        assert_eq!((p.non_terminal, p.voided), (2, 1));
    }

    #[test]
    fn a_late_authorisation_that_reinstates_an_expired_order_holds_its_tickets_again() {
        let mut events = ordered("h1", "o1");
        events.extend([
            step("payment_requested", "o1", 1),
            ("order_expired", json!({"order_id": "o1"})),
            (
                "payment_authorised",
                json!({"order_id": "o1", "attempt": 1, "reinstated": true}),
            ),
        ]);
        let f = fold(&events);
        let (_, held) = feed_counts(&f);
        assert_eq!(held.get(&0), Some(&2), "reinstated: held again");
        assert_eq!(f.payments().1.non_terminal, ["o1"], "until it is captured");
        events.extend([step("payment_captured", "o1", 1), paid("o1", "c1")]);
        let f = fold(&events);
        assert_eq!(f.payments().0.non_terminal, 0);
        assert_eq!(feed_counts(&f).0.get(&0), Some(&1));
    }

    #[test]
    fn money_captured_for_an_unpaid_order_counts_until_refunded() {
        let mut events = ordered("h1", "o1");
        events.extend([
            step("payment_requested", "o1", 1),
            ("order_cancelled", json!({"order_id": "o1"})),
            step("payment_captured", "o1", 1),
        ]);
        let (p, f) = fold(&events).payments();
        assert_eq!((p.captured, p.refunded, f.captured_unpaid), (1, 0, 1));
        events.push(("refund_issued", json!({"order_id": "o1", "refund": 1})));
        let (p, _) = fold(&events).payments();
        assert_eq!(p.refunded, 1);
    }
}
