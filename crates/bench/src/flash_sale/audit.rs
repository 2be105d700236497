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
//! - every ticket code unique; nothing still held at the end.

use std::collections::{HashMap, HashSet};

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
    /// Every failed check, in words; empty means the audit passed.
    pub failures: Vec<String>,
}

#[derive(Deserialize)]
struct Stats {
    sold: u64,
    held: u64,
    quotas: Vec<QuotaStats>,
    ticket_types: Vec<TypeStats>,
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
    Awaiting,
    Paid,
    Other,
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
                    o.end = OrderEnd::Other;
                }
            }
            "order_refunded" => {
                for c in d.get("ticket_codes").and_then(|v| v.as_array()).into_iter().flatten() {
                    if let Some(c) = c.as_str() {
                        self.tickets.remove(c);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
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

/// Reads the stats and the feed and checks everything; `demand` is the tickets the paying
/// buyers wanted.
pub async fn run(admin: &mut Admin, sale: &Sale, acks: &Acks, demand: u64) -> anyhow::Result<Audit> {
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
        expected_sold: demand.min(sale.capacity as u64),
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
    a.lost_acknowledged = lost;

    if a.sold != a.sold_in_feed {
        a.failures
            .push(format!("stats say {} sold, the feed {}", a.sold, a.sold_in_feed));
    }
    if a.sold != a.expected_sold {
        a.failures.push(format!(
            "sold {} but min(capacity {}, demand {}) is {}",
            a.sold, a.capacity, a.demand, a.expected_sold
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
