//! The state of one sale: the fold of its events. Owned by exactly one writer (the engine's
//! shard); readers see it through the engine's read path.

use std::collections::VecDeque;
use std::marker::PhantomData;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::command::{Items, SaleStatus};
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::limits;
use crate::payment::{Payment, PaymentState, Refund};
use crate::values::{BuyerId, Currency, IdempotencyKey, MoneyMinor, Name, PaymentRef, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub name: Name,
    pub currency: Currency,
    pub status: SaleStatus,
    pub hold_ttl_ms: u64,
    pub max_tickets_per_buyer: Option<u32>,
    pub opens_at: Option<Timestamp>,
    pub closes_at: Option<Timestamp>,
    /// How long an order may wait for an offline payment (bank transfer, box office) from the
    /// moment its buyer chooses it; `None`: the sale takes no offline payments.
    pub offline_payment_ttl_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketType {
    pub id: TicketTypeId,
    pub name: Name,
    pub price: MoneyMinor,
    pub max_per_order: Option<u32>,
    /// The prices before the current one, oldest first: `(until, price)` is the price of the
    /// holds numbered below `until` (and after the entry before it). Holds and orders keep the
    /// price they were placed at, and a refund gives back what was paid. At most
    /// [`limits::PRICE_CHANGES_MAX`] entries.
    pub earlier_prices: Vec<(HoldId, MoneyMinor)>,
    /// Every quota this type counts against (N:M). Empty = not sellable.
    pub quotas: SmallVec<[QuotaId; 4]>,
    /// Tickets of this type in active holds and unpaid orders.
    pub held: u32,
    /// Tickets of this type paid and not refunded.
    pub sold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub id: QuotaId,
    pub name: Name,
    pub capacity: u32,
    pub ticket_types: Vec<TicketTypeId>,
    /// Invariant: `held + sold <= capacity`, and each equals the sum over its ticket types.
    pub held: u32,
    pub sold: u32,
}

impl TicketType {
    /// The unit price of this type in the hold `hold` (and its order): the price in force
    /// when that hold was placed.
    #[inline]
    pub fn price_for(&self, hold: HoldId) -> MoneyMinor {
        self.earlier_prices
            .iter()
            .find(|(until, _)| hold < *until)
            .map_or(self.price, |(_, price)| *price)
    }
}

impl Quota {
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.held + self.sold)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HoldState {
    Active,
    Released,
    Expired,
    /// Checked out into this order.
    Converted(OrderId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub buyer: BuyerId,
    pub items: Items,
    pub total: MoneyMinor,
    pub expires_at: Timestamp,
    pub state: HoldState,
}

impl HoldState {
    /// How many kinds of state a hold can be in ([`HoldState::kind`] indexes them).
    pub const KINDS: usize = 4;

    /// Active 0, released 1, expired 2, converted 3: an index into per-state counters.
    pub const fn kind(self) -> usize {
        match self {
            HoldState::Active => 0,
            HoldState::Released => 1,
            HoldState::Expired => 2,
            HoldState::Converted(_) => 3,
        }
    }
}

impl Hold {
    pub fn quantity(&self) -> u32 {
        self.items.iter().map(|i| i.quantity.get()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    AwaitingPayment,
    /// A provider payment is under way; the tickets stay held.
    PaymentPending,
    Paid,
    PaymentFailed,
    Cancelled,
    Expired,
    RefundRequired,
    /// Every ticket refunded, or a `refund_required` order settled.
    Refunded,
}

impl OrderState {
    /// Every state, in declaration order (`state as usize` indexes it).
    pub const ALL: [OrderState; 8] = [
        OrderState::AwaitingPayment,
        OrderState::PaymentPending,
        OrderState::Paid,
        OrderState::PaymentFailed,
        OrderState::Cancelled,
        OrderState::Expired,
        OrderState::RefundRequired,
        OrderState::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::AwaitingPayment => "awaiting_payment",
            OrderState::PaymentPending => "payment_pending",
            OrderState::Paid => "paid",
            OrderState::PaymentFailed => "payment_failed",
            OrderState::Cancelled => "cancelled",
            OrderState::Expired => "expired",
            OrderState::RefundRequired => "refund_required",
            OrderState::Refunded => "refunded",
        }
    }
}

// Checked when compiling: `OrderState::ALL[i] as usize == i` for every state.
const _: () = {
    let mut i = 0;
    while i < OrderState::ALL.len() {
        assert!(OrderState::ALL[i] as usize == i);
        i += 1;
    }
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub hold: HoldId,
    pub buyer: BuyerId,
    pub items: Items,
    pub total: MoneyMinor,
    pub created_at: Timestamp,
    /// Payment deadline: the hold's, or later once an offline payment was chosen. After it
    /// the order expires and inventory returns (unless its payment is being captured).
    pub expires_at: Timestamp,
    pub state: OrderState,
    pub payment_ref: Option<PaymentRef>,
    pub paid_at: Option<Timestamp>,
    /// Codes of the tickets issued on payment, in issue order.
    pub tickets: Vec<TicketCode>,
    pub refunded: MoneyMinor,
    /// Payment attempts, oldest first; only the last may be open.
    pub payments: Vec<Payment>,
    /// Refunds, oldest first.
    pub refunds: Vec<Refund>,
}

impl Order {
    /// The current payment attempt, if any.
    pub fn payment(&self) -> Option<&Payment> {
        self.payments.last()
    }

    /// Whether the order holds its tickets for a payment being captured, which no deadline
    /// may take away.
    pub fn is_capturing(&self) -> bool {
        self.state == OrderState::PaymentPending && self.payment().is_some_and(|p| p.state == PaymentState::Authorised)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub code: TicketCode,
    pub order: OrderId,
    pub ticket_type: TicketTypeId,
    pub refunded: bool,
    pub checked_in_at: Option<Timestamp>,
}

/// What a command produced, so that an idempotent retry can answer the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    SaleCreated,
    TicketTypeAdded(TicketTypeId),
    QuotaAdded(QuotaId),
    Hold(HoldId),
    Order(OrderId),
    CheckedIn {
        code: TicketCode,
        at: Timestamp,
    },
    /// A payment attempt of an order (requested, or the one already under way).
    Payment {
        order: OrderId,
        attempt: u32,
    },
    /// Nothing to report beyond success (status change, release, payment, refund, expiry).
    Done,
}

/// A remembered idempotent command: a fingerprint of the request, what it produced, and when
/// (on the engine's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyEntry {
    pub fingerprint: u64,
    pub outcome: Outcome,
    pub at: Timestamp,
}

/// A buyer's idempotency key, scoped to the buyer.
pub type ScopedKey = (BuyerId, IdempotencyKey);

/// Remembered idempotent commands, each for `ttl_ms` after it was decided. A retry within the
/// TTL answers the original outcome; after it the key is unknown and the command is new.
/// Forgetting is incremental: each key remembered forgets up to
/// [`limits::IDEMPOTENCY_PRUNE_PER_KEY`] expired ones from the front of `queue` (keys in the
/// order they were remembered), so no command scans the table, and the table holds about the
/// keys of the last TTL. (A key whose entry was replaced leaves a stale `queue` entry, skipped
/// when it reaches the front.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// Configuration, not history: the engine sets it before it replays or decides anything;
    /// snapshots do not carry it.
    #[serde(skip, default = "default_idempotency_ttl_ms")]
    pub ttl_ms: u64,
    entries: FxHashMap<ScopedKey, IdempotencyEntry>,
    queue: VecDeque<(Timestamp, ScopedKey)>,
}

fn default_idempotency_ttl_ms() -> u64 {
    limits::IDEMPOTENCY_TTL_MS_DEFAULT
}

impl Default for Idempotency {
    fn default() -> Self {
        Idempotency {
            ttl_ms: default_idempotency_ttl_ms(),
            entries: FxHashMap::default(),
            queue: VecDeque::new(),
        }
    }
}

impl Idempotency {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Keys remembered, including expired ones not forgotten yet.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// The entry of `key` if it was remembered less than the TTL before `now`.
    pub fn get(&self, key: &ScopedKey, now: Timestamp) -> Option<&IdempotencyEntry> {
        self.entries.get(key).filter(|e| now < self.expiry(e.at))
    }
    fn expiry(&self, at: Timestamp) -> Timestamp {
        at.plus_ms(self.ttl_ms)
    }
    /// Remembers `entry` under `key` (replacing an expired one), after forgetting a few keys
    /// that expired by `entry.at`.
    pub(crate) fn remember(&mut self, buyer: &BuyerId, key: &IdempotencyKey, entry: IdempotencyEntry) {
        self.forget_expired(entry.at);
        let scoped = (buyer.clone(), key.clone());
        self.queue.push_back((entry.at, scoped.clone()));
        self.entries.insert(scoped, entry);
    }
    fn forget_expired(&mut self, now: Timestamp) {
        for _ in 0..limits::IDEMPOTENCY_PRUNE_PER_KEY {
            let Some((at, _)) = self.queue.front() else { return };
            if now < self.expiry(*at) {
                return;
            }
            let Some((at, key)) = self.queue.pop_front() else {
                return;
            };
            // Only the entry this queue slot recorded; a newer one under the same key stays.
            if self.entries.get(&key).is_some_and(|e| e.at == at) {
                self.entries.remove(&key);
            }
        }
    }
    /// Every remembered entry (tests and checks).
    pub fn iter(&self) -> impl Iterator<Item = (&ScopedKey, &IdempotencyEntry)> {
        self.entries.iter()
    }
    /// Entries in the queue, stale ones included (checks).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

/// Holds and orders by state, and valid and checked-in tickets, counted by `evolve` as events
/// apply, so that stats and metrics read them in O(1) instead of scanning the sale under its
/// lock. Ended holds have left the hold table, so their counts exist only here.
/// `invariants::check` recomputes what the tables still show; the model test all of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Holds by [`HoldState::kind`]: active now, and ever released, expired and converted.
    pub holds: [u64; HoldState::KINDS],
    /// Orders by state (`OrderState as usize`).
    pub orders: [u64; OrderState::ALL.len()],
    /// Tickets issued and not refunded, and of those checked in.
    pub tickets_valid: u64,
    pub tickets_checked_in: u64,
}

/// What a deadline entry expires when it falls due: the hold while it is active, or the
/// order it was checked out into while that order awaits payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Deadline {
    Hold(HoldId),
    Order(OrderId),
}

/// Ids numbered 1, 2, 3… inside a sale, usable as indexes into a [`Dense`] table.
pub trait DenseId: Copy {
    fn from_index(i: usize) -> Self;
    fn index(self) -> Option<usize>;
}

impl DenseId for HoldId {
    fn from_index(i: usize) -> Self {
        HoldId(i as u64 + 1)
    }
    fn index(self) -> Option<usize> {
        self.0.checked_sub(1).and_then(|i| usize::try_from(i).ok())
    }
}

impl DenseId for OrderId {
    fn from_index(i: usize) -> Self {
        OrderId(i as u64 + 1)
    }
    fn index(self) -> Option<usize> {
        self.0.checked_sub(1).and_then(|i| usize::try_from(i).ok())
    }
}

/// A table of values keyed by a dense id: a `Vec` (orders are numbered in order and never
/// deleted), with the lookup surface of a map. Faster than hashing on the hot path and
/// on replay, and growth is a `memcpy` rather than a rehash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Dense<K, V> {
    values: Vec<V>,
    #[serde(skip)]
    _key: PhantomData<K>,
}

impl<K, V> Default for Dense<K, V> {
    fn default() -> Self {
        Dense {
            values: Vec::new(),
            _key: PhantomData,
        }
    }
}

impl<K: DenseId, V> Dense<K, V> {
    pub fn get(&self, id: &K) -> Option<&V> {
        self.values.get(id.index()?)
    }
    pub fn get_mut(&mut self, id: &K) -> Option<&mut V> {
        let i = id.index()?;
        self.values.get_mut(i)
    }
    pub fn contains_key(&self, id: &K) -> bool {
        self.get(id).is_some()
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// The id the next pushed value gets.
    pub fn next_id(&self) -> K {
        K::from_index(self.values.len())
    }
    /// Capacity for `total` values in all.
    pub(crate) fn reserve_total(&mut self, total: usize) {
        self.values.reserve(total.saturating_sub(self.values.len()));
    }
    /// Appends the value of `id`, which must be `next_id()`.
    #[inline]
    pub(crate) fn push(&mut self, id: K, value: V) {
        // A plain message: formatting the ids here would keep this from being inlined.
        assert!(id.index() == Some(self.values.len()), "dense ids are contiguous");
        self.values.push(value);
    }
    pub fn values(&self) -> std::slice::Iter<'_, V> {
        self.values.iter()
    }
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.values.iter().enumerate().map(|(i, v)| (K::from_index(i), v))
    }
}

impl<K: DenseId, V> std::ops::Index<&K> for Dense<K, V> {
    type Output = V;
    fn index(&self, id: &K) -> &V {
        match self.get(id) {
            Some(v) => v,
            None => panic!("no entry for this id"),
        }
    }
}

/// The holds that hold tickets now (active ones), by id. A hold leaves the table when it ends
/// — released, expired, or checked out (its order carries its items and deadline on) — so the
/// table follows the tickets held, never the sale's history; the log keeps every hold. Ids go
/// on counting, so [`Holds::ended`] tells a hold that ended from one that never existed.
/// (A hash map: holds end in any order; Fx hashing of a `u64` is a multiply.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holds {
    live: hashbrown::HashMap<HoldId, Hold, rustc_hash::FxBuildHasher>,
    /// Holds ever placed: the next id is this plus one.
    placed: u64,
}

impl Holds {
    #[inline]
    pub fn get(&self, id: &HoldId) -> Option<&Hold> {
        self.live.get(id)
    }
    pub fn contains_key(&self, id: &HoldId) -> bool {
        self.live.contains_key(id)
    }
    /// Whether `id` was placed and has ended since (released, expired or checked out).
    pub fn ended(&self, id: &HoldId) -> bool {
        (1..=self.placed).contains(&id.0) && !self.live.contains_key(id)
    }
    /// Live holds.
    pub fn len(&self) -> usize {
        self.live.len()
    }
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
    /// Holds ever placed.
    pub fn placed(&self) -> u64 {
        self.placed
    }
    /// The id the next placed hold gets.
    #[inline]
    pub fn next_id(&self) -> HoldId {
        HoldId(self.placed + 1)
    }
    fn reserve_total(&mut self, total: usize) {
        self.live.reserve(total.saturating_sub(self.live.len()));
    }
    /// Adds the hold `id`, which must be `next_id()`.
    #[inline]
    pub(crate) fn push(&mut self, id: HoldId, hold: Hold) {
        assert!(id == self.next_id(), "hold ids are contiguous");
        self.placed += 1;
        self.live.insert(id, hold);
    }
    pub(crate) fn remove(&mut self, id: &HoldId) -> Option<Hold> {
        self.live.remove(id)
    }
    /// Live holds, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Hold> {
        self.live.values()
    }
    pub fn iter(&self) -> impl Iterator<Item = (HoldId, &Hold)> {
        self.live.iter().map(|(id, h)| (*id, h))
    }
}

impl std::ops::Index<&HoldId> for Holds {
    type Output = Hold;
    fn index(&self, id: &HoldId) -> &Hold {
        match self.get(id) {
            Some(h) => h,
            None => panic!("no live hold with this id"),
        }
    }
}

/// The whole state of one sale. `Default` is the state of a sale before `SaleCreated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleState {
    pub sale: Option<Sale>,
    /// Indexed by `TicketTypeId`.
    pub ticket_types: Vec<TicketType>,
    /// Indexed by `QuotaId`.
    pub quotas: Vec<Quota>,
    pub holds: Holds,
    pub orders: Dense<OrderId, Order>,
    pub tickets: FxHashMap<TicketCode, Ticket>,
    /// Tickets counted against each buyer's limit: active holds, unpaid and paid orders.
    /// (hashbrown for `entry_ref`: one probe per update, and a key clone only for a new buyer.)
    pub buyer_tickets: hashbrown::HashMap<BuyerId, u32, rustc_hash::FxBuildHasher>,
    pub idempotency: Idempotency,
    /// One entry per active hold or waiting order, sorted by time: the hold's deadline, which
    /// its order takes over on checkout. Holds are placed in time order with one TTL per
    /// sale, so entries are almost always appended at the back and expired from the front
    /// (O(1) each). An entry whose hold was released or whose order was paid is left in place
    /// ("stale") and dropped when it reaches the front, so the front entry is always live and
    /// is the next deadline; when stale entries outnumber live ones by
    /// [`limits::DEADLINES_SLACK`], the index is compacted (amortized O(1) per entry).
    pub deadlines: VecDeque<(Timestamp, Deadline)>,
    pub counts: Counts,
    /// The waiting room, when the organiser configured one.
    pub room: Option<Box<crate::room::Room>>,
}

impl SaleState {
    /// Sets table capacity aside for a sale of this size, so that the opening rush does not
    /// grow (copy, rehash, fault in) the tables while the writer holds the sale's lock.
    /// Only address space until used; bounded by [`limits::RESERVE_ENTRIES_MAX`]. Capacity is not
    /// state: replay and snapshots give equal states whatever was reserved.
    pub fn reserve_for_capacity(&mut self) {
        let tickets: u64 = self.quotas.iter().map(|q| u64::from(q.capacity)).sum();
        let n = usize::try_from(tickets)
            .unwrap_or(usize::MAX)
            .min(limits::RESERVE_ENTRIES_MAX);
        self.holds.reserve_total(n);
        self.orders.reserve_total(n / 2);
        self.tickets.reserve(n.saturating_sub(self.tickets.len()));
        self.buyer_tickets
            .reserve((n / 2).saturating_sub(self.buyer_tickets.len()));
        self.deadlines.reserve(n.saturating_sub(self.deadlines.len()));
    }

    /// A sale before `SaleCreated` whose idempotency keys are remembered for `ttl_ms`.
    pub fn with_idempotency_ttl_ms(ttl_ms: u64) -> SaleState {
        let mut state = SaleState::default();
        state.idempotency.ttl_ms = ttl_ms;
        state
    }

    /// When the engine must next act on this sale: `ExpireDue` or `RoomTick`.
    pub fn next_timer(&self) -> Option<Timestamp> {
        [self.next_deadline(), crate::room::next_tick(self)]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the engine must next send `ExpireDue`, if anything is pending.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.front().map(|(t, _)| *t)
    }

    /// Whether the deadline entry `what` at `at` is live (would expire something), or stale.
    pub fn live_deadline(&self, at: Timestamp, what: Deadline) -> Option<Deadline> {
        let live = match what {
            Deadline::Hold(hold) => self
                .holds
                .get(&hold)
                .is_some_and(|h| h.state == HoldState::Active && h.expires_at == at),
            // The order's deadline may have moved since checkout (offline payment).
            Deadline::Order(order) => self.orders.get(&order).is_some_and(|o| {
                let waiting = o.state == OrderState::AwaitingPayment
                    || (o.state == OrderState::PaymentPending && !o.is_capturing());
                waiting && o.expires_at == at
            }),
        };
        live.then_some(what)
    }

    /// Active holds and orders waiting for payment: what the deadline index may have live
    /// entries for (an upper bound: an order being captured has none).
    pub fn pending(&self) -> usize {
        let waiting = self.counts.orders[OrderState::AwaitingPayment as usize]
            + self.counts.orders[OrderState::PaymentPending as usize];
        self.holds.len() + usize::try_from(waiting).unwrap_or(usize::MAX)
    }

    /// Tickets of this type that could be held now: the minimum over its quotas; 0 when the
    /// type belongs to no quota.
    pub fn available(&self, ticket_type: TicketTypeId) -> u32 {
        let Some(tt) = self.ticket_types.get(ticket_type.0 as usize) else {
            return 0;
        };
        tt.quotas
            .iter()
            .map(|q| self.quotas[q.0 as usize].available())
            .min()
            .unwrap_or(0)
    }
}
