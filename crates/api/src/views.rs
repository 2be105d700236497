//! The JSON shapes of the API (requests and responses) and their conversion from domain
//! state. snake_case; money as integer minor units plus an ISO 4217 currency; times RFC 3339 UTC.

use serde::{Deserialize, Serialize};
use taquilla_domain::{
    Event, Hold, HoldState, Items, Order, OrderState, SaleId, SaleState, Ticket, TicketCode, Timestamp,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::ids;

/// A time as RFC 3339 UTC with milliseconds when there are any (`2026-11-22T12:00:00Z`,
/// `2026-11-22T12:00:00.25Z`), exactly as `time`'s `Rfc3339` writes it; empty outside years
/// 0–9999, which RFC 3339 cannot express. Hand-written because every hold and order view
/// carries two or three of these, and `time`'s general formatter cost more than the rest
/// of the view.
pub fn rfc3339(t: Timestamp) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339(&mut s, t);
    s
}

/// Appends [`rfc3339`]'s text to `out`.
pub(crate) fn push_rfc3339(s: &mut String, t: Timestamp) {
    const DAY_MS: i64 = 86_400_000;
    let (days, ms_of_day) = (t.0.div_euclid(DAY_MS), t.0.rem_euclid(DAY_MS));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return;
    }
    let secs = ms_of_day / 1000;
    let ms = (ms_of_day % 1000) as u32;
    let mut out = [0u8; 24];
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, (secs / 3600) as u32, 2);
    put(14, (secs / 60 % 60) as u32, 2);
    put(17, (secs % 60) as u32, 2);
    put(20, ms, 3);
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        out[at] = sep;
    }
    // The fraction without trailing zeros, and none at all for a whole second.
    let fraction = match ms {
        0 => 0,
        _ if ms.is_multiple_of(100) => 2,
        _ if ms.is_multiple_of(10) => 3,
        _ => 4,
    };
    s.push_str(std::str::from_utf8(&out[..19]).unwrap_or_default());
    if fraction > 0 {
        s.push('.');
        s.push_str(std::str::from_utf8(&out[20..19 + fraction]).unwrap_or_default());
    }
    s.push('Z');
}

/// Year, month and day of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 time (any offset) into milliseconds since the epoch, within years 1970–9999.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    if s.len() > 64 {
        return None;
    }
    let d = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let ms = d.unix_timestamp_nanos() / 1_000_000;
    (0..=253_402_300_799_999).contains(&ms).then_some(Timestamp(ms as i64))
}

// ---------- requests ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventRequest {
    /// 1–200 bytes.
    pub name: String,
    /// ISO 4217, e.g. "EUR".
    pub currency: String,
    /// How long a hold lasts (and then its order's payment window): 1 s – 24 h; default 900.
    pub hold_ttl_secs: Option<u64>,
    pub max_tickets_per_buyer: Option<u32>,
    /// RFC 3339; holds are refused before it.
    pub opens_at: Option<String>,
    /// RFC 3339; holds are refused from it on.
    pub closes_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketTypeRequest {
    pub name: String,
    /// Price in the event currency's minor unit (cents), 0 – 10^12.
    pub price_minor: i64,
    /// Most tickets of this type in one hold (1–100).
    pub max_per_order: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuotaRequest {
    pub name: String,
    pub capacity: u32,
    /// The ticket types that count against this quota (a type may be in several quotas).
    pub ticket_type_ids: Vec<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerTokenRequest {
    /// The integrator's id of the buyer, 1–64 bytes.
    pub buyer_id: String,
    /// Token lifetime, 60 s – 30 days; default 1 day.
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldItemRequest {
    pub ticket_type_id: u32,
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// 1–16 lines, each a distinct ticket type.
    pub items: Vec<HoldItemRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// Only "test" exists until real payment providers land; enabled by `--demo` or
    /// `--allow-test-payments`.
    pub method: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRequest {
    pub ticket_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Tickets to refund; omitted = every remaining ticket (or settle a `refund_required` order).
    pub ticket_codes: Option<Vec<String>>,
}

// ---------- responses ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketTypeView {
    pub id: u32,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub max_per_order: Option<u32>,
    /// Tickets that could be held right now.
    pub available: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub name: String,
    pub currency: String,
    /// draft | open | paused | closed
    pub status: &'static str,
    pub hold_ttl_secs: u64,
    pub max_tickets_per_buyer: Option<u32>,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
    pub ticket_types: Vec<TicketTypeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub id: u32,
    pub name: String,
    pub capacity: u32,
    pub ticket_type_ids: Vec<u32>,
    pub held: u32,
    pub sold: u32,
    pub available: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub ticket_type_id: u32,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    pub event_id: String,
    /// active | released | expired | converted
    pub state: &'static str,
    pub items: Vec<ItemView>,
    pub total_minor: i64,
    pub currency: String,
    pub expires_at: String,
    /// Set once the hold was checked out.
    pub order_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub code: String,
    pub ticket_type_id: u32,
    /// valid | refunded | checked_in
    pub state: &'static str,
    pub checked_in_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub event_id: String,
    pub hold_id: String,
    /// awaiting_payment | paid | payment_failed | cancelled | expired | refund_required | refunded
    pub state: &'static str,
    pub items: Vec<ItemView>,
    pub total_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
    pub created_at: String,
    /// Payment deadline while awaiting payment.
    pub expires_at: String,
    pub paid_at: Option<String>,
    pub tickets: Vec<TicketView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerTokenView {
    pub token: String,
    pub buyer_id: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinView {
    pub ticket_code: String,
    pub order_id: String,
    pub ticket_type_id: u32,
    pub checked_in_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeStats {
    pub id: u32,
    pub name: String,
    pub held: u32,
    pub sold: u32,
    pub available: u32,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HoldCounts {
    pub active: u64,
    pub released: u64,
    pub expired: u64,
    pub converted: u64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct OrderCounts {
    pub awaiting_payment: u64,
    pub paid: u64,
    pub payment_failed: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub refund_required: u64,
    pub refunded: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub event_id: String,
    pub status: &'static str,
    /// Sum of quota capacities (a ticket in overlapping quotas counts in each).
    pub capacity: u64,
    pub held: u64,
    pub sold: u64,
    pub quotas: Vec<QuotaView>,
    pub ticket_types: Vec<TypeStats>,
    pub holds: HoldCounts,
    pub orders: OrderCounts,
    /// Tickets issued and not refunded, and of those checked in.
    pub tickets_valid: u64,
    pub tickets_checked_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Pass as `after` to continue after this event.
    pub cursor: String,
    pub event_id: String,
    /// Position of the record in its sale (records are whole commands; one record may
    /// carry several events, which then share cursor and seq).
    pub seq: u64,
    pub recorded_at: String,
    pub correlation_id: Option<String>,
    /// snake_case event type, e.g. "hold_placed".
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedView {
    pub events: Vec<FeedEvent>,
    /// Cursor to pass as `after` next time (unchanged when there was nothing new).
    pub next_cursor: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

// ---------- conversions ----------

fn items_view(state: &SaleState, items: &Items) -> Vec<ItemView> {
    items
        .iter()
        .map(|i| ItemView {
            ticket_type_id: i.ticket_type.0,
            quantity: i.quantity.get(),
            unit_price_minor: state
                .ticket_types
                .get(i.ticket_type.0 as usize)
                .map(|t| t.price.get())
                .unwrap_or(0),
        })
        .collect()
}

fn currency(state: &SaleState) -> String {
    state
        .sale
        .as_ref()
        .map(|s| s.currency.as_str().to_string())
        .unwrap_or_default()
}

pub fn event_view(sale: SaleId, state: &SaleState) -> Option<EventView> {
    let s = state.sale.as_ref()?;
    Some(EventView {
        id: ids::event_id(sale),
        name: s.name.as_str().to_string(),
        currency: s.currency.as_str().to_string(),
        status: s.status.as_str(),
        hold_ttl_secs: s.hold_ttl_ms / 1000,
        max_tickets_per_buyer: s.max_tickets_per_buyer,
        opens_at: s.opens_at.map(rfc3339),
        closes_at: s.closes_at.map(rfc3339),
        ticket_types: state
            .ticket_types
            .iter()
            .map(|t| ticket_type_view(state, t.id.0))
            .collect(),
    })
}

pub fn ticket_type_view(state: &SaleState, id: u32) -> TicketTypeView {
    let t = &state.ticket_types[id as usize];
    TicketTypeView {
        id,
        name: t.name.as_str().to_string(),
        price_minor: t.price.get(),
        currency: currency(state),
        max_per_order: t.max_per_order,
        available: state.available(t.id),
    }
}

pub fn quota_view(state: &SaleState, id: u32) -> QuotaView {
    let q = &state.quotas[id as usize];
    QuotaView {
        id,
        name: q.name.as_str().to_string(),
        capacity: q.capacity,
        ticket_type_ids: q.ticket_types.iter().map(|t| t.0).collect(),
        held: q.held,
        sold: q.sold,
        available: q.available(),
    }
}

pub fn hold_state_str(s: HoldState) -> &'static str {
    match s {
        HoldState::Active => "active",
        HoldState::Released => "released",
        HoldState::Expired => "expired",
        HoldState::Converted(_) => "converted",
    }
}

/// The hold as its typed view: the reference [`write_hold_json`] is checked against (the API
/// answers with that writer's bytes).
pub fn hold_view(sale: SaleId, state: &SaleState, h: &Hold) -> HoldView {
    HoldView {
        id: ids::hold_id(sale, h.id),
        event_id: ids::event_id(sale),
        state: hold_state_str(h.state),
        items: items_view(state, &h.items),
        total_minor: h.total.get(),
        currency: currency(state),
        expires_at: rfc3339(h.expires_at),
        order_id: match h.state {
            HoldState::Converted(o) => Some(ids::order_id(sale, o)),
            _ => None,
        },
    }
}

/// The order as its typed view: the reference [`write_order_json`] is checked against (the API
/// answers with that writer's bytes).
pub fn order_view(sale: SaleId, state: &SaleState, o: &Order) -> OrderView {
    OrderView {
        id: ids::order_id(sale, o.id),
        event_id: ids::event_id(sale),
        hold_id: ids::hold_id(sale, o.hold),
        state: o.state.as_str(),
        items: items_view(state, &o.items),
        total_minor: o.total.get(),
        refunded_minor: o.refunded.get(),
        currency: currency(state),
        created_at: rfc3339(o.created_at),
        expires_at: rfc3339(o.expires_at),
        paid_at: o.paid_at.map(rfc3339),
        tickets: o
            .tickets
            .iter()
            .filter_map(|c| state.tickets.get(c))
            .map(|t| TicketView {
                code: t.code.to_text(),
                ticket_type_id: t.ticket_type.0,
                state: ticket_state(t),
                checked_in_at: t.checked_in_at.map(rfc3339),
            })
            .collect(),
    }
}

fn ticket_state(t: &Ticket) -> &'static str {
    if t.refunded {
        "refunded"
    } else if t.checked_in_at.is_some() {
        "checked_in"
    } else {
        "valid"
    }
}

// ---------- hold and order views written straight to JSON ----------
//
// Every command answers with a hold or an order view. Built as `HoldView`/`OrderView` and then
// serialized, one cost ~8 small allocations and a second pass through serde (about a tenth of
// the server's CPU for a command); these write the same bytes directly. The structs remain
// the schema (OpenAPI) and the tests check both forms agree byte for byte.

/// A JSON string: quoted, escaped where needed (ids, states, codes and times never need it).
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a `str` cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// `,"key":` — the separator and key of every field but an object's first.
fn push_key(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
}

fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn push_time(out: &mut String, t: Timestamp) {
    out.push('"');
    push_rfc3339(out, t);
    out.push('"');
}

fn push_opt_time(out: &mut String, t: Option<Timestamp>) {
    match t {
        Some(t) => push_time(out, t),
        None => out.push_str("null"),
    }
}

fn push_items(out: &mut String, state: &SaleState, items: &Items) {
    out.push('[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"ticket_type_id\":");
        push_int(out, it.ticket_type.0);
        out.push_str(",\"quantity\":");
        push_int(out, it.quantity.get());
        out.push_str(",\"unit_price_minor\":");
        let price = state
            .ticket_types
            .get(it.ticket_type.0 as usize)
            .map_or(0, |t| t.price.get());
        push_int(out, price);
        out.push('}');
    }
    out.push(']');
}

fn push_currency(out: &mut String, state: &SaleState) {
    push_json_str(out, state.sale.as_ref().map_or("", |s| s.currency.as_str()));
}

/// [`hold_view`] as JSON text, appended to `out`.
pub fn write_hold_json(out: &mut String, sale: SaleId, state: &SaleState, h: &Hold) {
    out.push_str("{\"id\":\"");
    ids::push_id(out, "hld_", sale.0, Some(h.id.0));
    out.push_str("\",\"event_id\":\"");
    ids::push_id(out, "evt_", sale.0, None);
    out.push_str("\",\"state\":");
    push_json_str(out, hold_state_str(h.state));
    push_key(out, "items");
    push_items(out, state, &h.items);
    push_key(out, "total_minor");
    push_int(out, h.total.get());
    push_key(out, "currency");
    push_currency(out, state);
    push_key(out, "expires_at");
    push_time(out, h.expires_at);
    push_key(out, "order_id");
    match h.state {
        HoldState::Converted(o) => {
            out.push('"');
            ids::push_id(out, "ord_", sale.0, Some(o.0));
            out.push('"');
        }
        _ => out.push_str("null"),
    }
    out.push('}');
}

/// [`order_view`] as JSON text, appended to `out`.
pub fn write_order_json(out: &mut String, sale: SaleId, state: &SaleState, o: &Order) {
    out.push_str("{\"id\":\"");
    ids::push_id(out, "ord_", sale.0, Some(o.id.0));
    out.push_str("\",\"event_id\":\"");
    ids::push_id(out, "evt_", sale.0, None);
    out.push_str("\",\"hold_id\":\"");
    ids::push_id(out, "hld_", sale.0, Some(o.hold.0));
    out.push_str("\",\"state\":");
    push_json_str(out, o.state.as_str());
    push_key(out, "items");
    push_items(out, state, &o.items);
    push_key(out, "total_minor");
    push_int(out, o.total.get());
    push_key(out, "refunded_minor");
    push_int(out, o.refunded.get());
    push_key(out, "currency");
    push_currency(out, state);
    push_key(out, "created_at");
    push_time(out, o.created_at);
    push_key(out, "expires_at");
    push_time(out, o.expires_at);
    push_key(out, "paid_at");
    push_opt_time(out, o.paid_at);
    push_key(out, "tickets");
    out.push('[');
    for (i, t) in o.tickets.iter().filter_map(|c| state.tickets.get(c)).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"code\":");
        push_json_str(out, &t.code.to_text());
        push_key(out, "ticket_type_id");
        push_int(out, t.ticket_type.0);
        push_key(out, "state");
        push_json_str(out, ticket_state(t));
        push_key(out, "checked_in_at");
        push_opt_time(out, t.checked_in_at);
        out.push('}');
    }
    out.push_str("]}");
}

pub fn stats_view(sale: SaleId, state: &SaleState) -> Option<StatsView> {
    let s = state.sale.as_ref()?;
    let mut holds = HoldCounts::default();
    for h in state.holds.values() {
        match h.state {
            HoldState::Active => holds.active += 1,
            HoldState::Released => holds.released += 1,
            HoldState::Expired => holds.expired += 1,
            HoldState::Converted(_) => holds.converted += 1,
        }
    }
    let mut orders = OrderCounts::default();
    for o in state.orders.values() {
        match o.state {
            OrderState::AwaitingPayment => orders.awaiting_payment += 1,
            OrderState::Paid => orders.paid += 1,
            OrderState::PaymentFailed => orders.payment_failed += 1,
            OrderState::Cancelled => orders.cancelled += 1,
            OrderState::Expired => orders.expired += 1,
            OrderState::RefundRequired => orders.refund_required += 1,
            OrderState::Refunded => orders.refunded += 1,
        }
    }
    let valid = state.tickets.values().filter(|t| !t.refunded).count() as u64;
    let checked_in = state
        .tickets
        .values()
        .filter(|t| !t.refunded && t.checked_in_at.is_some())
        .count() as u64;
    Some(StatsView {
        event_id: ids::event_id(sale),
        status: s.status.as_str(),
        capacity: state.quotas.iter().map(|q| q.capacity as u64).sum(),
        held: state.ticket_types.iter().map(|t| t.held as u64).sum(),
        sold: state.ticket_types.iter().map(|t| t.sold as u64).sum(),
        quotas: (0..state.quotas.len() as u32).map(|i| quota_view(state, i)).collect(),
        ticket_types: state
            .ticket_types
            .iter()
            .map(|t| TypeStats {
                id: t.id.0,
                name: t.name.as_str().to_string(),
                held: t.held,
                sold: t.sold,
                available: state.available(t.id),
            })
            .collect(),
        holds,
        orders,
        tickets_valid: valid,
        tickets_checked_in: checked_in,
    })
}

fn code_text(c: &TicketCode) -> String {
    c.to_text()
}

/// An event of the log, as the feed shows it: a snake_case type and its data.
pub fn event_json(sale: SaleId, e: &Event) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    let items = |items: &Items| -> Vec<serde_json::Value> {
        items
            .iter()
            .map(|i| json!({"ticket_type_id": i.ticket_type.0, "quantity": i.quantity.get()}))
            .collect()
    };
    match e {
        Event::SaleCreated {
            name,
            currency,
            hold_ttl_ms,
            max_tickets_per_buyer,
            opens_at,
            closes_at,
        } => (
            "sale_created",
            json!({"name": name.as_str(), "currency": currency.as_str(), "hold_ttl_secs": hold_ttl_ms / 1000,
                   "max_tickets_per_buyer": max_tickets_per_buyer,
                   "opens_at": opens_at.map(rfc3339), "closes_at": closes_at.map(rfc3339)}),
        ),
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        } => (
            "ticket_type_added",
            json!({"ticket_type_id": id.0, "name": name.as_str(), "price_minor": price.get(), "max_per_order": max_per_order}),
        ),
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        } => (
            "quota_added",
            json!({"quota_id": id.0, "name": name.as_str(), "capacity": capacity,
                   "ticket_type_ids": ticket_types.iter().map(|t| t.0).collect::<Vec<_>>()}),
        ),
        Event::SaleStatusChanged { status } => ("sale_status_changed", json!({"status": status.as_str()})),
        Event::HoldPlaced {
            hold,
            buyer,
            items: its,
            expires_at,
            ..
        } => (
            "hold_placed",
            json!({"hold_id": ids::hold_id(sale, *hold), "buyer_id": buyer.as_str(), "items": items(its),
                   "expires_at": rfc3339(*expires_at)}),
        ),
        Event::HoldReleased { hold } => ("hold_released", json!({"hold_id": ids::hold_id(sale, *hold)})),
        Event::HoldExpired { hold } => ("hold_expired", json!({"hold_id": ids::hold_id(sale, *hold)})),
        Event::OrderPlaced {
            order, hold, total, at, ..
        } => (
            "order_placed",
            json!({"order_id": ids::order_id(sale, *order), "hold_id": ids::hold_id(sale, *hold),
                   "total_minor": total.get(), "at": rfc3339(*at)}),
        ),
        Event::OrderPaid {
            order,
            payment_ref,
            tickets,
            reinstated,
            at,
        } => (
            "order_paid",
            json!({"order_id": ids::order_id(sale, *order), "payment_ref": payment_ref.as_str(),
                   "tickets": tickets.iter().map(|t| json!({"code": code_text(&t.code), "ticket_type_id": t.ticket_type.0})).collect::<Vec<_>>(),
                   "reinstated": reinstated, "at": rfc3339(*at)}),
        ),
        Event::OrderPaymentFailed { order, reason } => (
            "order_payment_failed",
            json!({"order_id": ids::order_id(sale, *order), "reason": reason.as_str()}),
        ),
        Event::OrderExpired { order } => ("order_expired", json!({"order_id": ids::order_id(sale, *order)})),
        Event::OrderCancelled { order } => ("order_cancelled", json!({"order_id": ids::order_id(sale, *order)})),
        Event::OrderRefundRequired { order, payment_ref, at } => (
            "order_refund_required",
            json!({"order_id": ids::order_id(sale, *order), "payment_ref": payment_ref.as_str(), "at": rfc3339(*at)}),
        ),
        Event::OrderRefunded {
            order,
            tickets,
            amount,
            at,
        } => (
            "order_refunded",
            json!({"order_id": ids::order_id(sale, *order), "ticket_codes": tickets.iter().map(code_text).collect::<Vec<_>>(),
                   "amount_minor": amount.get(), "at": rfc3339(*at)}),
        ),
        Event::TicketCheckedIn { code, at } => (
            "ticket_checked_in",
            json!({"ticket_code": code_text(code), "at": rfc3339(*at)}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The formatter this module's replaced: `time`'s RFC 3339.
    fn oracle(t: Timestamp) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(t.0 as i128 * 1_000_000)
            .ok()
            .and_then(|d| d.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    #[test]
    fn rfc3339_edges_match_the_time_crate() {
        let year_10000 = 253_402_300_800_000;
        let year_0 = -62_167_219_200_000;
        for ms in [
            0,
            1,
            10,
            100,
            999,
            -1,
            -86_400_000,
            951_782_400_000,   // 2000-02-29
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            year_10000 - 1,
            year_10000,
            year_0,
            year_0 - 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(rfc3339(Timestamp(ms)), oracle(Timestamp(ms)), "{ms} ms");
        }
        assert_eq!(rfc3339(Timestamp(1_700_000_000_120)), "2023-11-14T22:13:20.12Z");
    }

    /// A sale state with `types` ticket types (prices from `prices`), with or without its
    /// sale record (no currency then), and tickets for the given codes.
    fn state_with(has_sale: bool, prices: &[i64], tickets: &[(u128, u32, bool, Option<i64>)]) -> SaleState {
        use taquilla_domain::{Currency, MoneyMinor, Name, Sale, SaleStatus, Ticket, TicketType, TicketTypeId};
        let mut state = SaleState::default();
        if has_sale {
            state.sale = Some(Sale {
                name: Name::parse("Fest \"2026\" ✓").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                status: SaleStatus::Open,
                hold_ttl_ms: 900_000,
                max_tickets_per_buyer: Some(4),
                opens_at: None,
                closes_at: None,
            });
        }
        for (i, p) in prices.iter().enumerate() {
            state.ticket_types.push(TicketType {
                id: TicketTypeId(i as u32),
                name: Name::parse("GA").unwrap(),
                price: MoneyMinor::new(*p).unwrap(),
                max_per_order: None,
                quotas: Default::default(),
                held: 0,
                sold: 0,
            });
        }
        for &(code, ty, refunded, checked_in) in tickets {
            state.tickets.insert(
                TicketCode(code),
                Ticket {
                    code: TicketCode(code),
                    order: taquilla_domain::OrderId(0),
                    ticket_type: TicketTypeId(ty),
                    refunded,
                    checked_in_at: checked_in.map(Timestamp),
                },
            );
        }
        state
    }

    fn items_of(lines: &[(u32, u32)]) -> Items {
        lines
            .iter()
            .map(|&(ty, q)| taquilla_domain::Item {
                ticket_type: taquilla_domain::TicketTypeId(ty),
                quantity: taquilla_domain::Quantity::new(q).unwrap(),
            })
            .collect()
    }

    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            0i64..4_102_444_800_000,
            Just(-1i64),
            Just(253_402_300_800_000i64),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
    }

    fn hold_state() -> impl Strategy<Value = HoldState> {
        prop_oneof![
            Just(HoldState::Active),
            Just(HoldState::Released),
            Just(HoldState::Expired),
            any::<u64>().prop_map(|o| HoldState::Converted(taquilla_domain::OrderId(o))),
        ]
    }

    fn order_state() -> impl Strategy<Value = OrderState> {
        prop::sample::select(OrderState::ALL.to_vec())
    }

    proptest! {
        /// The hold view written directly is, byte for byte, the serialized `HoldView`.
        #[test]
        fn hold_json_is_the_serialized_view(
            sale in any::<u64>(),
            id in any::<u64>(),
            has_sale in any::<bool>(),
            prices in prop::collection::vec(0i64..=1_000_000_000_000, 0..4),
            lines in prop::collection::vec((0u32..6, 1u32..=100), 0..4),
            total in 0i64..=1_000_000_000_000,
            expires_at in any_time(),
            st in hold_state(),
        ) {
            let state = state_with(has_sale, &prices, &[]);
            let h = Hold {
                id: taquilla_domain::HoldId(id),
                buyer: taquilla_domain::BuyerId::parse("ana").unwrap(),
                items: items_of(&lines),
                total: taquilla_domain::MoneyMinor::new(total).unwrap(),
                expires_at: Timestamp(expires_at),
                state: st,
            };
            let mut out = String::new();
            write_hold_json(&mut out, SaleId(sale), &state, &h);
            prop_assert_eq!(out, serde_json::to_string(&hold_view(SaleId(sale), &state, &h)).unwrap());
        }

        /// The order view written directly is, byte for byte, the serialized `OrderView`,
        /// tickets (known or not to the state, in every state) included.
        #[test]
        fn order_json_is_the_serialized_view(
            sale in any::<u64>(),
            id in any::<u64>(),
            hold in any::<u64>(),
            has_sale in any::<bool>(),
            prices in prop::collection::vec(0i64..=1_000_000_000_000, 0..4),
            lines in prop::collection::vec((0u32..6, 1u32..=100), 0..4),
            total in 0i64..=1_000_000_000_000,
            refunded in 0i64..=1_000_000_000_000,
            times in (any_time(), any_time(), prop::option::of(any_time())),
            st in order_state(),
            tickets in prop::collection::vec((any::<u128>(), 0u32..6, any::<bool>(), prop::option::of(any_time()), any::<bool>()), 0..5),
        ) {
            let known: Vec<_> = tickets.iter().filter(|t| t.4).map(|t| (t.0, t.1, t.2, t.3)).collect();
            let state = state_with(has_sale, &prices, &known);
            let o = Order {
                id: taquilla_domain::OrderId(id),
                hold: taquilla_domain::HoldId(hold),
                buyer: taquilla_domain::BuyerId::parse("ana").unwrap(),
                items: items_of(&lines),
                total: taquilla_domain::MoneyMinor::new(total).unwrap(),
                created_at: Timestamp(times.0),
                expires_at: Timestamp(times.1),
                state: st,
                payment_ref: None,
                paid_at: times.2.map(Timestamp),
                tickets: tickets.iter().map(|t| TicketCode(t.0)).collect(),
                refunded: taquilla_domain::MoneyMinor::new(refunded).unwrap(),
            };
            let mut out = String::new();
            write_order_json(&mut out, SaleId(sale), &state, &o);
            prop_assert_eq!(out, serde_json::to_string(&order_view(SaleId(sale), &state, &o)).unwrap());
        }
    }

    #[test]
    fn json_strings_are_escaped_where_needed() {
        for s in ["plain", "quo\"te", "back\\slash", "tab\t", "ñandú ✓", "\u{1}"] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn rfc3339_matches_the_time_crate(ms in -70_000_000_000_000i64..260_000_000_000_000) {
            prop_assert_eq!(rfc3339(Timestamp(ms)), oracle(Timestamp(ms)));
        }

        #[test]
        fn rfc3339_matches_on_whole_and_round_fractions(secs in 0i64..253_402_300_800, frac in prop::sample::select(vec![0i64, 100, 500, 10, 250])) {
            let t = Timestamp(secs * 1000 + frac);
            prop_assert_eq!(rfc3339(t), oracle(t));
        }
    }
}
