//! The binary encoding of events, as the log stores them. Hand-written (no serde) so that we
//! control versioning byte by byte.
//!
//! A payload is `[varint count]` then, per event, `[u8 tag][u8 version][varint body_len][body]`.
//! Body fields come in a fixed order: integers as LEB128 varints (zigzag for signed), strings
//! as varint length + UTF-8, options as a 0/1 byte then the value, ticket codes as 16 bytes
//! little-endian (they are random: a varint would only grow them).
//!
//! **Versioning.** A new field is only ever appended at the end of a body, with the event's
//! version bumped. A decoder reads the fields the payload's version has and defaults the rest;
//! for a version newer than it knows it reads what it knows and skips the remaining bytes of
//! the body, which `body_len` delimits. Example: `HoldPlaced` v1 had no idempotency key; v2
//! appended it.
//!
//! Decoding never panics and never trusts a length: every string is re-parsed through its
//! newtype, and every count is bounded by the bytes left, so garbage is a [`DecodeError`].

use crate::command::{Item, Items, SaleStatus};
use crate::event::{Event, IssuedTicket};
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::state::Outcome;
use crate::values::{
    BuyerId, Currency, IdempotencyKey, InvalidValue, MoneyMinor, Name, PaymentRef, Quantity, Reason, Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload ends in the middle of a value")]
    Truncated,
    #[error("varint too long or out of range")]
    BadVarint,
    #[error("unknown event tag {0}")]
    UnknownTag(u8),
    #[error("event tag {tag}: unknown version {version}")]
    UnknownVersion { tag: u8, version: u8 },
    #[error("byte {0} where a 0/1 flag was expected")]
    BadFlag(u8),
    #[error("unknown enum value {0}")]
    BadEnum(u64),
    #[error("string is not UTF-8")]
    BadUtf8,
    #[error("invalid value: {0}")]
    Invalid(InvalidValue),
    #[error("{0} unread bytes at the end of an event body")]
    TrailingBody(usize),
    #[error("{0} unread bytes after the last event")]
    TrailingPayload(usize),
}

impl From<InvalidValue> for DecodeError {
    fn from(v: InvalidValue) -> Self {
        DecodeError::Invalid(v)
    }
}

/// Event tags. Stable forever: a tag is never reused.
mod tag {
    pub const SALE_CREATED: u8 = 1;
    pub const TICKET_TYPE_ADDED: u8 = 2;
    pub const QUOTA_ADDED: u8 = 3;
    pub const SALE_STATUS_CHANGED: u8 = 4;
    pub const HOLD_PLACED: u8 = 5;
    pub const HOLD_RELEASED: u8 = 6;
    pub const HOLD_EXPIRED: u8 = 7;
    pub const ORDER_PLACED: u8 = 8;
    pub const ORDER_PAID: u8 = 9;
    pub const ORDER_PAYMENT_FAILED: u8 = 10;
    pub const ORDER_EXPIRED: u8 = 11;
    pub const ORDER_CANCELLED: u8 = 12;
    pub const ORDER_REFUND_REQUIRED: u8 = 13;
    pub const ORDER_REFUNDED: u8 = 14;
    pub const TICKET_CHECKED_IN: u8 = 15;
    pub const PAYMENT_REQUESTED: u8 = 16;
    pub const PAYMENT_CREATED: u8 = 17;
    pub const PAYMENT_AUTHORISED: u8 = 18;
    pub const PAYMENT_CAPTURED: u8 = 19;
    pub const PAYMENT_VOID_REQUIRED: u8 = 20;
    pub const PAYMENT_VOIDED: u8 = 21;
    pub const PAYMENT_DECLINED: u8 = 22;
    pub const PAYMENT_FAILED: u8 = 23;
    pub const REFUND_REQUESTED: u8 = 24;
    pub const REFUND_ISSUED: u8 = 25;
    pub const REFUND_FAILED: u8 = 26;
    // 32–47: the waiting room.
    pub const ROOM_CONFIGURED: u8 = 32;
    pub const BUYER_JOINED: u8 = 33;
    pub const BUYER_LEFT: u8 = 34;
    pub const PREQUEUE_SHUFFLED: u8 = 35;
    pub const BUYERS_ADMITTED: u8 = 36;
    pub const ADMISSIONS_EXPIRED: u8 = 37;
    pub const ADMISSION_USED: u8 = 38;
    // 48–63: catalog edits (the box office).
    pub const TICKET_TYPE_EDITED: u8 = 48;
    pub const QUOTA_CAPACITY_SET: u8 = 49;
    pub const ORGANISER_KEY_USED: u8 = 50;
}

/// Current version written for each tag (index = tag). Version 2 of `HoldPlaced` appended
/// `idempotency_key`; version 2 of `SaleCreated` appended `offline_payment_ttl_ms`, and of
/// `OrderExpired` and `OrderCancelled` their `at`.
const VERSIONS: [u8; 64] = versions();

/// 1 for every tag in use, but the versions named.
const fn versions() -> [u8; 64] {
    let mut v = [0u8; 64];
    let mut tag = 1;
    while tag <= 26 {
        v[tag] = 1;
        tag += 1;
    }
    let mut tag = tag::ROOM_CONFIGURED as usize;
    while tag <= tag::ADMISSION_USED as usize {
        v[tag] = 1;
        tag += 1;
    }
    v[tag::SALE_CREATED as usize] = 2;
    v[tag::HOLD_PLACED as usize] = 2;
    v[tag::ORDER_EXPIRED as usize] = 2;
    v[tag::ORDER_CANCELLED as usize] = 2;
    v[tag::TICKET_TYPE_EDITED as usize] = 1;
    v[tag::QUOTA_CAPACITY_SET as usize] = 1;
    v[tag::ORGANISER_KEY_USED as usize] = 1;
    v
}

mod payment;
mod room;

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends `events` as one payload to `out`.
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    put_u64(out, events.len() as u64);
    for e in events {
        encode_event(e, out);
    }
}

/// Appends one event (tag, version, length, body) to `out`; the unit `encode_events` repeats.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) {
    let tag = tag_of(event);
    out.push(tag);
    out.push(VERSIONS[tag as usize]);
    // Most bodies are under 128 bytes: reserve one length byte and widen only if needed.
    let len_at = out.len();
    out.push(0);
    encode_body(event, out);
    let body_len = out.len() - len_at - 1;
    if body_len < 0x80 {
        out[len_at] = body_len as u8;
    } else {
        let mut len = [0u8; 10];
        let mut n = 0;
        let mut v = body_len as u64;
        while v >= 0x80 {
            len[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        len[n] = v as u8;
        out.splice(len_at..len_at + 1, len[..=n].iter().copied());
    }
}

fn tag_of(event: &Event) -> u8 {
    if let Some(tag) = room::tag_of(event) {
        return tag;
    }
    match event {
        Event::SaleCreated { .. } => tag::SALE_CREATED,
        Event::TicketTypeAdded { .. } => tag::TICKET_TYPE_ADDED,
        Event::QuotaAdded { .. } => tag::QUOTA_ADDED,
        Event::SaleStatusChanged { .. } => tag::SALE_STATUS_CHANGED,
        Event::TicketTypeEdited { .. } => tag::TICKET_TYPE_EDITED,
        Event::QuotaCapacitySet { .. } => tag::QUOTA_CAPACITY_SET,
        Event::OrganiserKeyUsed { .. } => tag::ORGANISER_KEY_USED,
        Event::HoldPlaced { .. } => tag::HOLD_PLACED,
        Event::HoldReleased { .. } => tag::HOLD_RELEASED,
        Event::HoldExpired { .. } => tag::HOLD_EXPIRED,
        Event::OrderPlaced { .. } => tag::ORDER_PLACED,
        Event::OrderPaid { .. } => tag::ORDER_PAID,
        Event::OrderPaymentFailed { .. } => tag::ORDER_PAYMENT_FAILED,
        Event::OrderExpired { .. } => tag::ORDER_EXPIRED,
        Event::OrderCancelled { .. } => tag::ORDER_CANCELLED,
        Event::OrderRefundRequired { .. } => tag::ORDER_REFUND_REQUIRED,
        Event::OrderRefunded { .. } => tag::ORDER_REFUNDED,
        Event::TicketCheckedIn { .. } => tag::TICKET_CHECKED_IN,
        Event::PaymentRequested { .. } => tag::PAYMENT_REQUESTED,
        Event::PaymentCreated { .. } => tag::PAYMENT_CREATED,
        Event::PaymentAuthorised { .. } => tag::PAYMENT_AUTHORISED,
        Event::PaymentCaptured { .. } => tag::PAYMENT_CAPTURED,
        Event::PaymentVoidRequired { .. } => tag::PAYMENT_VOID_REQUIRED,
        Event::PaymentVoided { .. } => tag::PAYMENT_VOIDED,
        Event::PaymentDeclined { .. } => tag::PAYMENT_DECLINED,
        Event::PaymentFailed { .. } => tag::PAYMENT_FAILED,
        Event::RefundRequested { .. } => tag::REFUND_REQUESTED,
        Event::RefundIssued { .. } => tag::REFUND_ISSUED,
        Event::RefundFailed { .. } => tag::REFUND_FAILED,
        _ => unreachable!("room events have their tags above"),
    }
}

fn encode_body(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::SaleCreated {
            name,
            currency,
            hold_ttl_ms,
            max_tickets_per_buyer,
            opens_at,
            closes_at,
            offline_payment_ttl_ms,
        } => {
            put_str(out, name.as_str());
            out.extend_from_slice(&currency.bytes());
            put_u64(out, *hold_ttl_ms);
            put_opt(out, *max_tickets_per_buyer, |o, v| put_u64(o, v.into()));
            put_opt(out, *opens_at, put_time);
            put_opt(out, *closes_at, put_time);
            // v2
            put_opt(out, *offline_payment_ttl_ms, put_u64);
        }
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        }
        | Event::TicketTypeEdited {
            id,
            name,
            price,
            max_per_order,
        } => {
            put_u64(out, id.0.into());
            put_str(out, name.as_str());
            put_money(out, *price);
            put_opt(out, *max_per_order, |o, v| put_u64(o, v.into()));
        }
        Event::QuotaCapacitySet { id, capacity } => {
            put_u64(out, id.0.into());
            put_u64(out, (*capacity).into());
        }
        Event::OrganiserKeyUsed {
            key,
            fingerprint,
            outcome,
            at,
        } => {
            put_str(out, key.as_str());
            out.extend_from_slice(&fingerprint.to_le_bytes());
            // Keyed commands are catalog commands: these are the outcomes they produce.
            let (kind, id) = match outcome {
                Outcome::TicketTypeAdded(t) => (1, t.0),
                Outcome::QuotaAdded(q) => (2, q.0),
                _ => (0, 0),
            };
            out.push(kind);
            put_u64(out, id.into());
            put_time(out, *at);
        }
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        } => {
            put_u64(out, id.0.into());
            put_str(out, name.as_str());
            put_u64(out, (*capacity).into());
            put_u64(out, ticket_types.len() as u64);
            for tt in ticket_types {
                put_u64(out, tt.0.into());
            }
        }
        Event::SaleStatusChanged { status } => out.push(status_byte(*status)),
        Event::HoldPlaced {
            hold,
            buyer,
            items,
            expires_at,
            idempotency_key,
        } => {
            put_u64(out, hold.0);
            put_str(out, buyer.as_str());
            put_u64(out, items.len() as u64);
            for item in items {
                put_u64(out, item.ticket_type.0.into());
                put_u64(out, item.quantity.get().into());
            }
            put_time(out, *expires_at);
            // v2
            put_opt(out, idempotency_key.as_ref(), |o, k| put_str(o, k.as_str()));
        }
        Event::HoldReleased { hold } | Event::HoldExpired { hold } => put_u64(out, hold.0),
        Event::OrderPlaced {
            order,
            hold,
            total,
            at,
            idempotency_key,
        } => {
            put_u64(out, order.0);
            put_u64(out, hold.0);
            put_money(out, *total);
            put_time(out, *at);
            put_opt(out, idempotency_key.as_ref(), |o, k| put_str(o, k.as_str()));
        }
        Event::OrderPaid {
            order,
            payment_ref,
            tickets,
            reinstated,
            at,
        } => {
            put_u64(out, order.0);
            put_str(out, payment_ref.as_str());
            put_u64(out, tickets.len() as u64);
            for t in tickets {
                put_code(out, t.code);
                put_u64(out, t.ticket_type.0.into());
            }
            out.push(u8::from(*reinstated));
            put_time(out, *at);
        }
        Event::OrderPaymentFailed { order, reason } => {
            put_u64(out, order.0);
            put_str(out, reason.as_str());
        }
        Event::OrderExpired { order, at } | Event::OrderCancelled { order, at } => {
            put_u64(out, order.0);
            // v2
            put_time(out, *at);
        }
        Event::OrderRefundRequired { order, payment_ref, at } => {
            put_u64(out, order.0);
            put_str(out, payment_ref.as_str());
            put_time(out, *at);
        }
        Event::OrderRefunded {
            order,
            tickets,
            amount,
            at,
        } => {
            put_u64(out, order.0);
            put_u64(out, tickets.len() as u64);
            for code in tickets {
                put_code(out, *code);
            }
            put_money(out, *amount);
            put_time(out, *at);
        }
        Event::TicketCheckedIn { code, at } => {
            put_code(out, *code);
            put_time(out, *at);
        }
        _ => {
            if !room::encode_body(event, out) {
                payment::encode_body(event, out)
            }
        }
    }
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_time(out: &mut Vec<u8>, t: Timestamp) {
    put_i64(out, t.0);
}

fn put_money(out: &mut Vec<u8>, m: MoneyMinor) {
    put_i64(out, m.get());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_code(out: &mut Vec<u8>, code: TicketCode) {
    out.extend_from_slice(&code.0.to_le_bytes());
}

fn put_opt<T>(out: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

fn status_byte(s: SaleStatus) -> u8 {
    match s {
        SaleStatus::Draft => 0,
        SaleStatus::Open => 1,
        SaleStatus::Paused => 2,
        SaleStatus::Closed => 3,
        SaleStatus::Archived => 4,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes one payload written by [`encode_events`].
pub fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let mut events = Vec::new();
    decode_events_into(bytes, &mut events)?;
    Ok(events)
}

/// Decodes one payload, appending its events to `out` so that replay can reuse one buffer.
/// On error `out` is left as it was.
pub fn decode_events_into(bytes: &[u8], out: &mut Vec<Event>) -> Result<(), DecodeError> {
    let start = out.len();
    let result = decode_append(bytes, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn decode_append(bytes: &[u8], out: &mut Vec<Event>) -> Result<(), DecodeError> {
    let mut r = Reader { buf: bytes };
    let count = r.u64()?;
    // An event takes at least three bytes: never reserve more than the payload could hold.
    out.reserve(count.min(r.buf.len() as u64 / 3) as usize);
    for _ in 0..count {
        out.push(decode_event(&mut r)?);
    }
    if !r.buf.is_empty() {
        return Err(DecodeError::TrailingPayload(r.buf.len()));
    }
    Ok(())
}

fn decode_event(r: &mut Reader) -> Result<Event, DecodeError> {
    let tag = r.u8()?;
    let version = r.u8()?;
    let len = r.len()?;
    let known = *VERSIONS
        .get(tag as usize)
        .filter(|v| **v != 0)
        .ok_or(DecodeError::UnknownTag(tag))?;
    if version == 0 {
        return Err(DecodeError::UnknownVersion { tag, version });
    }
    let mut body = Reader { buf: r.take(len)? };
    let event = decode_body(tag, version, &mut body)?;
    // A newer version appended fields this decoder does not know: skip them. For a version we
    // know, leftover bytes mean a corrupt body.
    if version <= known && !body.buf.is_empty() {
        return Err(DecodeError::TrailingBody(body.buf.len()));
    }
    Ok(event)
}

fn decode_body(tag: u8, version: u8, r: &mut Reader) -> Result<Event, DecodeError> {
    Ok(match tag {
        tag::SALE_CREATED => Event::SaleCreated {
            name: Name::parse(r.str()?)?,
            currency: Currency::parse(std::str::from_utf8(r.take(3)?).map_err(|_| DecodeError::BadUtf8)?)?,
            hold_ttl_ms: r.u64()?,
            max_tickets_per_buyer: r.opt(Reader::u32)?,
            opens_at: r.opt(Reader::time)?,
            closes_at: r.opt(Reader::time)?,
            offline_payment_ttl_ms: if version >= 2 { r.opt(Reader::u64)? } else { None },
        },
        tag::TICKET_TYPE_ADDED => Event::TicketTypeAdded {
            id: TicketTypeId(r.u32()?),
            name: Name::parse(r.str()?)?,
            price: r.money()?,
            max_per_order: r.opt(Reader::u32)?,
        },
        tag::TICKET_TYPE_EDITED => Event::TicketTypeEdited {
            id: TicketTypeId(r.u32()?),
            name: Name::parse(r.str()?)?,
            price: r.money()?,
            max_per_order: r.opt(Reader::u32)?,
        },
        tag::QUOTA_CAPACITY_SET => Event::QuotaCapacitySet {
            id: QuotaId(r.u32()?),
            capacity: r.u32()?,
        },
        tag::ORGANISER_KEY_USED => {
            let key = IdempotencyKey::parse(r.str()?)?;
            let fingerprint = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?);
            let kind = r.u8()?;
            let id = r.u32()?;
            let outcome = match kind {
                0 => Outcome::Done,
                1 => Outcome::TicketTypeAdded(TicketTypeId(id)),
                2 => Outcome::QuotaAdded(QuotaId(id)),
                k => return Err(DecodeError::BadEnum(k.into())),
            };
            Event::OrganiserKeyUsed {
                key,
                fingerprint,
                outcome,
                at: r.time()?,
            }
        }
        tag::QUOTA_ADDED => {
            let id = QuotaId(r.u32()?);
            let name = Name::parse(r.str()?)?;
            let capacity = r.u32()?;
            let n = r.count(1)?;
            let mut ticket_types = Vec::with_capacity(n);
            for _ in 0..n {
                ticket_types.push(TicketTypeId(r.u32()?));
            }
            Event::QuotaAdded {
                id,
                name,
                capacity,
                ticket_types,
            }
        }
        tag::SALE_STATUS_CHANGED => Event::SaleStatusChanged {
            status: match r.u8()? {
                0 => SaleStatus::Draft,
                1 => SaleStatus::Open,
                2 => SaleStatus::Paused,
                3 => SaleStatus::Closed,
                4 => SaleStatus::Archived,
                b => return Err(DecodeError::BadEnum(b.into())),
            },
        },
        tag::HOLD_PLACED => {
            let hold = HoldId(r.u64()?);
            let buyer = BuyerId::parse(r.str()?)?;
            let n = r.count(2)?;
            let mut items = Items::with_capacity(n);
            for _ in 0..n {
                items.push(Item {
                    ticket_type: TicketTypeId(r.u32()?),
                    quantity: Quantity::new(r.u32()?)?,
                });
            }
            let expires_at = r.time()?;
            let idempotency_key = if version >= 2 {
                r.opt(|r| Ok(IdempotencyKey::parse(r.str()?)?))?
            } else {
                None
            };
            Event::HoldPlaced {
                hold,
                buyer,
                items,
                expires_at,
                idempotency_key,
            }
        }
        tag::HOLD_RELEASED => Event::HoldReleased { hold: HoldId(r.u64()?) },
        tag::HOLD_EXPIRED => Event::HoldExpired { hold: HoldId(r.u64()?) },
        tag::ORDER_PLACED => Event::OrderPlaced {
            order: OrderId(r.u64()?),
            hold: HoldId(r.u64()?),
            total: r.money()?,
            at: r.time()?,
            idempotency_key: r.opt(|r| Ok(IdempotencyKey::parse(r.str()?)?))?,
        },
        tag::ORDER_PAID => {
            let order = OrderId(r.u64()?);
            let payment_ref = PaymentRef::parse(r.str()?)?;
            let n = r.count(17)?;
            let mut tickets = Vec::with_capacity(n);
            for _ in 0..n {
                tickets.push(IssuedTicket {
                    code: r.code()?,
                    ticket_type: TicketTypeId(r.u32()?),
                });
            }
            Event::OrderPaid {
                order,
                payment_ref,
                tickets,
                reinstated: r.flag()?,
                at: r.time()?,
            }
        }
        tag::ORDER_PAYMENT_FAILED => Event::OrderPaymentFailed {
            order: OrderId(r.u64()?),
            reason: Reason::parse(r.str()?)?,
        },
        tag::ORDER_EXPIRED => Event::OrderExpired {
            order: OrderId(r.u64()?),
            at: if version >= 2 { r.time()? } else { Timestamp(0) },
        },
        tag::ORDER_CANCELLED => Event::OrderCancelled {
            order: OrderId(r.u64()?),
            at: if version >= 2 { r.time()? } else { Timestamp(0) },
        },
        tag::ORDER_REFUND_REQUIRED => Event::OrderRefundRequired {
            order: OrderId(r.u64()?),
            payment_ref: PaymentRef::parse(r.str()?)?,
            at: r.time()?,
        },
        tag::ORDER_REFUNDED => {
            let order = OrderId(r.u64()?);
            let n = r.count(16)?;
            let mut tickets = Vec::with_capacity(n);
            for _ in 0..n {
                tickets.push(r.code()?);
            }
            Event::OrderRefunded {
                order,
                tickets,
                amount: r.money()?,
                at: r.time()?,
            }
        }
        tag::TICKET_CHECKED_IN => Event::TicketCheckedIn {
            code: r.code()?,
            at: r.time()?,
        },
        tag::ROOM_CONFIGURED..=tag::ADMISSION_USED => return room::decode_body(tag, r),
        _ => return payment::decode_body(tag, version, r),
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, tail) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            // The tenth byte may carry only the top bit.
            if shift == 63 && b > 1 {
                return Err(DecodeError::BadVarint);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.u64()?).map_err(|_| DecodeError::BadVarint)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()?).map_err(|_| DecodeError::BadVarint)
    }

    /// An element count, checked against the bytes left (each element takes at least
    /// `min_bytes`) so that garbage never makes us reserve gigabytes.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n.saturating_mul(min_bytes) > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn time(&mut self) -> Result<Timestamp, DecodeError> {
        Ok(Timestamp(self.i64()?))
    }

    fn money(&mut self) -> Result<MoneyMinor, DecodeError> {
        Ok(MoneyMinor::new(self.i64()?)?)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::BadUtf8)
    }

    fn code(&mut self) -> Result<TicketCode, DecodeError> {
        let bytes: [u8; 16] = self.take(16)?.try_into().map_err(|_| DecodeError::Truncated)?;
        Ok(TicketCode(u128::from_le_bytes(bytes)))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::BadFlag(b)),
        }
    }

    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, DecodeError>) -> Result<Option<T>, DecodeError> {
        if self.flag()? { read(self).map(Some) } else { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(Reader { buf: &out }.u64(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_i64(&mut out, v);
            assert_eq!(Reader { buf: &out }.i64(), Ok(v));
        }
        // Eleven continuation bytes, and a tenth byte with more than the top bit.
        assert_eq!(Reader { buf: &[0xff; 11] }.u64(), Err(DecodeError::BadVarint));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(Reader { buf: &over }.u64(), Err(DecodeError::BadVarint));
    }

    #[test]
    fn a_long_body_gets_a_multi_byte_length() {
        let name = Name::parse(&"x".repeat(150)).unwrap();
        let event = Event::TicketTypeAdded {
            id: TicketTypeId(3),
            name,
            price: MoneyMinor::ZERO,
            max_per_order: None,
        };
        let mut out = Vec::new();
        encode_events(std::slice::from_ref(&event), &mut out);
        assert_eq!(decode_events(&out), Ok(vec![event]));
    }
}
