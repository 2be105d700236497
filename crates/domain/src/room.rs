//! The waiting room of a sale: who queues, in which order, who is admitted to shop and when,
//! all as state of the sale (its events are in the sale's log like any other, so a restart
//! resumes the queue exactly and replay gives the same order).
//!
//! - Buyers who join between `prequeue_opens_at` and `opens_at` form the **pre-queue**. At
//!   `opens_at` it is ordered by a keyed pseudo-random permutation ([`shuffle`]): Fisher–Yates
//!   over join order, driven by SHA-256 of the room's seed and a counter. The seed comes from
//!   the engine's entropy when the room is configured and is recorded in `RoomConfigured`;
//!   its SHA-256 is public from then on, the seed itself only once the sale has ended, so
//!   anyone can then replay the draw. Buyers who join after `opens_at` queue behind, FIFO.
//! - **Admission** pops buyers from the front, a batch per tick, at most
//!   `min(rate cap × elapsed, what the remaining stock can still serve)` ([`admit_budget`]).
//!   Stock is counted from available tickets, the mean quantity admitted buyers took per hold,
//!   and the observed no-show rate of admitted buyers (capped by [`limits::ROOM_NO_SHOW_MAX_PER_MILLE`]).
//!   Holds that may still expire are not sold yet: they re-open admission when they return,
//!   and while any exists the sale is not sold out.
//! - An admission lasts `session_ms`; checkout uses it; one not used by then expires (a no-show
//!   if its buyer never placed a hold).
//!
//! Memory: a buyer is a `BuyerId → u32` map entry plus a 16-byte [`Slot`] and a `u32` in the
//! queue; joining is O(1) (amortized). `ahead` counts buyers who left in blocks of
//! [`BLOCK`] queue positions, so a status read costs O(queue / BLOCK + BLOCK), never a scan.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::command::SaleStatus;
use crate::limits;
use crate::state::SaleState;
use crate::values::{BuyerId, Timestamp};

/// How the organiser configured the room of a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomConfig {
    pub prequeue_opens_at: Timestamp,
    /// When the pre-queue is shuffled and admission starts.
    pub opens_at: Timestamp,
    /// Most buyers admitted per second.
    pub admit_per_sec: u32,
    /// How long an admission lasts.
    pub session_ms: u64,
    /// Most buyers queued (pre-queue included) at once.
    pub queue_max: u32,
}

/// Where one buyer stands. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// In the queue at position `seq` (absolute: the front has `Room::head_seq`).
    Queued {
        seq: u32,
    },
    /// Admitted (the room's `number`-th admission) until `expires_at`; `held` once they
    /// placed a hold under it.
    Admitted {
        number: u32,
        expires_at: Timestamp,
        held: bool,
    },
    /// Checked out under their admission.
    Used,
    /// Their admission ran out unused.
    Expired,
    Left,
}

/// Counters of the room, kept by `evolve`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCounts {
    pub joined: u64,
    pub left: u64,
    pub admitted: u64,
    pub used: u64,
    pub expired: u64,
    /// Expired without ever placing a hold.
    pub no_shows: u64,
    /// Buyers queued now (pre-queue included).
    pub queued: u64,
    /// Live admissions, and of those the buyers who have not placed a hold yet.
    pub shopping: u64,
    pub shopping_without_hold: u64,
    /// Holds placed, and tickets in them, by admitted buyers.
    pub holds_by_admitted: u64,
    pub tickets_by_admitted: u64,
}

/// Queue positions per counting block of buyers who left.
pub const BLOCK: u32 = 1024;

/// The waiting room of a sale (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub config: RoomConfig,
    /// Secret until the sale ends (see [`Room::revealed_seed`]).
    seed: [u8; 32],
    pub seed_sha256: [u8; 32],
    index: hashbrown::HashMap<BuyerId, u32, rustc_hash::FxBuildHasher>,
    /// By buyer index (the order buyers first joined).
    slots: Vec<Slot>,
    /// Buyer indexes; before the shuffle in join order, then in admission order. Entries of
    /// buyers who left stay until they reach the front.
    queue: VecDeque<u32>,
    /// `seq` of `queue.front()`.
    head_seq: u32,
    /// Buyers who left, by `seq / BLOCK`, for entries still in `queue`.
    left_blocks: Vec<u32>,
    pub shuffled: bool,
    /// Buyer indexes of admissions in expiry order; an entry is live while its slot is
    /// `Admitted` with that number.
    admissions: VecDeque<(u32, u32)>,
    /// Admission by rate: credit accrues from here (at most a second's worth).
    rate_basis: Timestamp,
    pub last_admit_at: Option<Timestamp>,
    pub counts: RoomCounts,
}

impl Room {
    pub fn new(config: RoomConfig, seed: [u8; 32]) -> Room {
        Room {
            config,
            seed,
            seed_sha256: Sha256::digest(seed).into(),
            index: Default::default(),
            slots: Vec::new(),
            queue: VecDeque::new(),
            head_seq: 0,
            left_blocks: Vec::new(),
            shuffled: false,
            admissions: VecDeque::new(),
            rate_basis: config.opens_at,
            last_admit_at: None,
            counts: RoomCounts::default(),
        }
    }

    pub fn slot(&self, buyer: &BuyerId) -> Option<Slot> {
        self.index.get(buyer).map(|i| self.slots[*i as usize])
    }

    /// Distinct buyers who ever joined.
    pub fn buyers(&self) -> usize {
        self.slots.len()
    }

    /// The seed, once the sale has ended (closed, or past `closes_at`); before, only its hash.
    pub fn revealed_seed(&self, state: &SaleState, now: Timestamp) -> Option<[u8; 32]> {
        let sale = state.sale.as_ref()?;
        let ended = sale.status == SaleStatus::Closed || sale.closes_at.is_some_and(|c| now >= c);
        ended.then_some(self.seed)
    }

    /// The live admission of `buyer` at `now`, if any: its number and end.
    pub fn admission(&self, buyer: &BuyerId, now: Timestamp) -> Option<(u32, Timestamp)> {
        match self.slot(buyer)? {
            Slot::Admitted { number, expires_at, .. } if now < expires_at => Some((number, expires_at)),
            _ => None,
        }
    }

    /// Buyers queued ahead of the one at `seq`, counting only those still queued.
    pub fn ahead(&self, seq: u32) -> u64 {
        let raw = u64::from(seq - self.head_seq);
        raw - self.left_between(self.head_seq, seq)
    }

    /// Buyers who left with a `seq` in `from..to`, still in the queue.
    fn left_between(&self, from: u32, to: u32) -> u64 {
        if from >= to {
            return 0;
        }
        let (b0, b1) = (from / BLOCK, to / BLOCK);
        let scan = |lo: u32, hi: u32| -> u64 { (lo..hi).filter(|s| !self.live_at(*s)).count() as u64 };
        if b0 == b1 {
            return scan(from, to);
        }
        let first = scan(from, (b0 + 1) * BLOCK);
        let middle: u64 = (b0 + 1..b1)
            .map(|b| u64::from(self.left_blocks.get(b as usize).copied().unwrap_or(0)))
            .sum();
        first + middle + scan(b1 * BLOCK, to)
    }

    /// When the front admission runs out, if any.
    fn next_expiry(&self) -> Option<Timestamp> {
        let &(i, number) = self.admissions.front()?;
        match self.slots[i as usize] {
            Slot::Admitted {
                number: n, expires_at, ..
            } if n == number => Some(expires_at),
            _ => None,
        }
    }

    /// Admissions run out by `now`, from the front, and how many of them had no hold.
    fn due_expiries(&self, now: Timestamp) -> (u32, u64) {
        let (mut n, mut without_hold) = (0u32, 0u64);
        for &(i, number) in &self.admissions {
            match self.slots[i as usize] {
                Slot::Admitted {
                    number: m,
                    expires_at,
                    held,
                } if m == number => {
                    if expires_at > now || n as usize >= limits::ROOM_BATCH_MAX {
                        break;
                    }
                    n += 1;
                    without_hold += u64::from(!held);
                }
                // Stale entries are popped by evolve; none stays at the front.
                _ => {}
            }
        }
        (n, without_hold)
    }

    /// Buyers the rate cap allows at `now`.
    fn rate_allows(&self, now: Timestamp) -> u64 {
        let basis = self.rate_basis.0.max(now.0 - 1000);
        let elapsed_ms = (now.0 - basis).max(0) as u64;
        elapsed_ms * u64::from(self.config.admit_per_sec) / 1000
    }

    /// When the rate cap next allows one buyer, no sooner than a tick after the last batch.
    fn next_rate_slot(&self) -> Timestamp {
        let one_ms = 1000u64.div_ceil(u64::from(self.config.admit_per_sec.max(1)));
        let by_rate = self.rate_basis.plus_ms(one_ms);
        match self.last_admit_at {
            Some(last) => by_rate.max(last.plus_ms(limits::ROOM_TICK_MS)),
            None => by_rate,
        }
    }

    // --- changes, called by evolve only ---

    pub(crate) fn join(&mut self, buyer: &BuyerId) {
        let seq = self.head_seq + self.queue.len() as u32;
        let i = match self.index.get(buyer) {
            Some(i) => *i,
            None => {
                let i = self.slots.len() as u32;
                self.index.insert(buyer.clone(), i);
                self.slots.push(Slot::Left);
                i
            }
        };
        assert!(
            !matches!(self.slots[i as usize], Slot::Queued { .. } | Slot::Admitted { .. }),
            "BuyerJoined: buyer already queued or admitted"
        );
        self.slots[i as usize] = Slot::Queued { seq };
        self.queue.push_back(i);
        self.counts.joined += 1;
        self.counts.queued += 1;
    }

    pub(crate) fn leave(&mut self, buyer: &BuyerId) {
        let i = *self.index.get(buyer).expect("BuyerLeft: unknown buyer");
        match self.slots[i as usize] {
            Slot::Queued { seq } => {
                let b = (seq / BLOCK) as usize;
                if self.left_blocks.len() <= b {
                    self.left_blocks.resize(b + 1, 0);
                }
                self.left_blocks[b] += 1;
                self.counts.queued -= 1;
            }
            Slot::Admitted { held, .. } => {
                self.counts.shopping -= 1;
                self.counts.shopping_without_hold -= u64::from(!held);
            }
            other => panic!("BuyerLeft: buyer is {other:?}"),
        }
        self.slots[i as usize] = Slot::Left;
        self.counts.left += 1;
        self.pop_stale();
        self.pop_stale_admissions();
    }

    pub(crate) fn shuffle(&mut self) {
        assert!(!self.shuffled, "PrequeueShuffled twice");
        let mut live = self.queue_order();
        shuffle(&mut live, &self.seed);
        self.queue = live.into();
        self.head_seq = 0;
        self.left_blocks.clear();
        for (seq, i) in self.queue.iter().enumerate() {
            self.slots[*i as usize] = Slot::Queued { seq: seq as u32 };
        }
        self.shuffled = true;
    }

    pub(crate) fn admit(&mut self, count: u32, at: Timestamp) {
        let expires_at = at.plus_ms(self.config.session_ms);
        for _ in 0..count {
            self.pop_stale();
            let i = self
                .queue
                .pop_front()
                .expect("BuyersAdmitted: queue shorter than the batch");
            self.head_seq += 1;
            assert!(matches!(self.slots[i as usize], Slot::Queued { .. }));
            let number = u32::try_from(self.counts.admitted).expect("admissions fit u32");
            self.slots[i as usize] = Slot::Admitted {
                number,
                expires_at,
                held: false,
            };
            self.admissions.push_back((i, number));
            self.counts.admitted += 1;
            self.counts.queued -= 1;
            self.counts.shopping += 1;
            self.counts.shopping_without_hold += 1;
        }
        self.pop_stale();
        let per_ms = u64::from(count) * 1000 / u64::from(self.config.admit_per_sec.max(1));
        self.rate_basis = Timestamp(self.rate_basis.0.max(at.0 - 1000)).plus_ms(per_ms).min(at);
        self.last_admit_at = Some(at);
    }

    pub(crate) fn expire(&mut self, count: u32) {
        for _ in 0..count {
            self.pop_stale_admissions();
            let (i, _) = self.admissions.pop_front().expect("AdmissionsExpired: too many");
            let Slot::Admitted { held, .. } = self.slots[i as usize] else {
                unreachable!("a live admission")
            };
            self.slots[i as usize] = Slot::Expired;
            self.counts.expired += 1;
            self.counts.no_shows += u64::from(!held);
            self.counts.shopping -= 1;
            self.counts.shopping_without_hold -= u64::from(!held);
        }
        self.pop_stale_admissions();
    }

    pub(crate) fn used(&mut self, buyer: &BuyerId) {
        let i = *self.index.get(buyer).expect("AdmissionUsed: unknown buyer");
        let Slot::Admitted { held, .. } = self.slots[i as usize] else {
            panic!("AdmissionUsed: buyer not admitted")
        };
        self.slots[i as usize] = Slot::Used;
        self.counts.used += 1;
        self.counts.shopping -= 1;
        self.counts.shopping_without_hold -= u64::from(!held);
        self.pop_stale_admissions();
    }

    /// A hold placed by `buyer` (any buyer: only admitted ones count).
    pub(crate) fn hold_placed(&mut self, buyer: &BuyerId, tickets: u32) {
        let Some(&i) = self.index.get(buyer) else { return };
        if let Slot::Admitted { held, .. } = &mut self.slots[i as usize] {
            if !*held {
                *held = true;
                self.counts.shopping_without_hold -= 1;
            }
            self.counts.holds_by_admitted += 1;
            self.counts.tickets_by_admitted += u64::from(tickets);
        }
    }

    /// Whether the queue entry at `seq` is its buyer's place (not the stale entry of a buyer
    /// who left, and maybe joined again further back).
    fn live_at(&self, seq: u32) -> bool {
        let i = self.queue[(seq - self.head_seq) as usize];
        self.slots[i as usize] == Slot::Queued { seq }
    }

    /// Drops stale entries from the front, so the front is a queued buyer's.
    fn pop_stale(&mut self) {
        while !self.queue.is_empty() && !self.live_at(self.head_seq) {
            let b = (self.head_seq / BLOCK) as usize;
            self.left_blocks[b] -= 1;
            self.queue.pop_front();
            self.head_seq += 1;
        }
    }

    fn pop_stale_admissions(&mut self) {
        while let Some(&(i, number)) = self.admissions.front() {
            match self.slots[i as usize] {
                Slot::Admitted { number: n, .. } if n == number => return,
                _ => {
                    self.admissions.pop_front();
                }
            }
        }
    }

    /// Checks the room's counters and tables against each other (O(buyers)); a message for
    /// the first disagreement.
    pub fn check(&self) -> Result<(), String> {
        let mut queued = 0u64;
        let mut shopping = 0u64;
        let mut without_hold = 0u64;
        for (idx, s) in self.slots.iter().enumerate() {
            match *s {
                Slot::Queued { seq } => {
                    queued += 1;
                    let at = seq.checked_sub(self.head_seq).ok_or("queued behind the head")?;
                    if self.queue.get(at as usize) != Some(&(idx as u32)) {
                        return Err(format!("buyer {idx} queued at {seq} is not there"));
                    }
                }
                Slot::Admitted { number, held, .. } => {
                    shopping += 1;
                    without_hold += u64::from(!held);
                    if !self.admissions.contains(&(idx as u32, number)) {
                        return Err(format!("admission {number} missing from the expiry queue"));
                    }
                }
                _ => {}
            }
        }
        let checks = [
            ("queued", queued, self.counts.queued),
            ("shopping", shopping, self.counts.shopping),
            ("shopping_without_hold", without_hold, self.counts.shopping_without_hold),
        ];
        for (what, real, counted) in checks {
            if real != counted {
                return Err(format!("room {what}: {real} in the table, {counted} counted"));
            }
        }
        let end = self.head_seq + self.queue.len() as u32;
        let lefts = (self.head_seq..end).filter(|s| !self.live_at(*s)).count() as u64;
        let blocks: u64 = self.left_blocks.iter().map(|b| u64::from(*b)).sum();
        if lefts != blocks {
            return Err(format!("{lefts} left buyers in the queue, {blocks} in the blocks"));
        }
        if self.counts.admitted != self.counts.used + self.counts.expired + self.counts.shopping + self.left_admitted()
        {
            return Err("admissions do not add up".into());
        }
        Ok(())
    }

    /// Admitted buyers who left while admitted (admitted − used − expired − shopping).
    fn left_admitted(&self) -> u64 {
        self.counts
            .admitted
            .saturating_sub(self.counts.used + self.counts.expired + self.counts.shopping)
    }

    /// The queue in order (tests and the shuffle's audit): buyer indexes of queued buyers.
    pub fn queue_order(&self) -> Vec<u32> {
        let end = self.head_seq + self.queue.len() as u32;
        (self.head_seq..end)
            .filter(|s| self.live_at(*s))
            .map(|s| self.queue[(s - self.head_seq) as usize])
            .collect()
    }
}

/// Orders `items` by the keyed pseudo-random permutation of `seed`: Fisher–Yates, each draw
/// the next 8 bytes of SHA-256(seed ‖ block counter) reduced modulo the range (the bias of a
/// 64-bit draw over at most a few million items is below 2⁻⁴⁰). Anyone with the seed and the
/// pre-queue's join order (the log's `BuyerJoined` events) can recompute it. Hand-written
/// because its output is a published contract, which a library's generator may change.
pub fn shuffle<T>(items: &mut [T], seed: &[u8; 32]) {
    let mut counter = 0u64;
    let mut block = [0u8; 32];
    let mut used = 32;
    for i in (1..items.len()).rev() {
        if used == 32 {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(counter.to_le_bytes());
            block = h.finalize().into();
            counter += 1;
            used = 0;
        }
        let draw = u64::from_le_bytes(block[used..used + 8].try_into().expect("8 bytes"));
        used += 8;
        let j = (draw % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Tickets that could still be held now: an upper bound, exact when quotas do not overlap or
/// one quota covers every sellable ticket type (a venue's total): the least of the available
/// tickets summed by type, summed by quota, and of any quota covering every sellable type.
pub fn sellable(state: &SaleState) -> u64 {
    let sellable_types = || state.ticket_types.iter().filter(|t| !t.quotas.is_empty());
    let by_type: u64 = sellable_types().map(|t| u64::from(state.available(t.id))).sum();
    let by_quota: u64 = state.quotas.iter().map(|q| u64::from(q.available())).sum();
    let by_cover = state
        .quotas
        .iter()
        .filter(|q| sellable_types().all(|t| t.quotas.contains(&q.id)))
        .map(|q| u64::from(q.available()))
        .min()
        .unwrap_or(u64::MAX);
    by_type.min(by_quota).min(by_cover)
}

/// Tickets in active holds and unpaid orders: they may still come back.
pub fn held_pending(state: &SaleState) -> u64 {
    state.ticket_types.iter().map(|t| u64::from(t.held)).sum()
}

/// Mean tickets per hold of admitted buyers, in thousandths (at least one ticket).
fn mean_quantity_milli(c: &RoomCounts) -> u64 {
    if c.holds_by_admitted == 0 {
        return 1000;
    }
    (c.tickets_by_admitted * 1000).div_ceil(c.holds_by_admitted).max(1000)
}

/// Share of admitted buyers expected to show up, in thousandths: 1 − the observed no-show
/// rate once enough admissions ended, never below 1 − `ROOM_NO_SHOW_MAX_PER_MILLE`.
fn show_rate_milli(c: &RoomCounts) -> u64 {
    let ended = c.used + c.expired;
    let floor = 1000 - limits::ROOM_NO_SHOW_MAX_PER_MILLE;
    if ended < limits::ROOM_NO_SHOW_SAMPLE_MIN {
        return 1000;
    }
    (1000 - c.no_shows * 1000 / ended).max(floor)
}

/// Buyers the remaining stock can still serve beyond those shopping without a hold.
/// `(shopping_without_hold + n) × mean quantity × show rate ≤ sellable`.
pub fn stock_budget(state: &SaleState, shopping_without_hold: u64) -> u64 {
    let Some(room) = &state.room else { return 0 };
    let per_buyer = mean_quantity_milli(&room.counts) * show_rate_milli(&room.counts);
    let servable = u128::from(sellable(state)) * 1_000_000 / u128::from(per_buyer);
    (servable as u64).saturating_sub(shopping_without_hold)
}

/// Whether the sale can sell nothing more: no ticket available and no hold or unpaid order
/// that may still give one back.
pub fn sold_out(state: &SaleState) -> bool {
    sellable(state) == 0 && held_pending(state) == 0
}

/// Buyers a tick at `now` may admit: the rate cap, the stock, the queue and the batch bound.
pub fn admit_budget(state: &SaleState, shopping_without_hold: u64, now: Timestamp) -> u32 {
    let Some(room) = &state.room else { return 0 };
    if !admitting(state, now)
        || room
            .last_admit_at
            .is_some_and(|l| now < l.plus_ms(limits::ROOM_TICK_MS))
    {
        return 0;
    }
    let n = room
        .rate_allows(now)
        .min(stock_budget(state, shopping_without_hold))
        .min(room.counts.queued)
        .min(limits::ROOM_BATCH_MAX as u64);
    n as u32
}

/// Whether the room admits at all now: configured, shuffled, and the sale open.
fn admitting(state: &SaleState, now: Timestamp) -> bool {
    let (Some(room), Some(sale)) = (&state.room, &state.sale) else {
        return false;
    };
    room.shuffled && now >= room.config.opens_at && sale.status == SaleStatus::Open
}

/// When the engine must next send `RoomTick`: the shuffle, the next admission expiry, or the
/// next batch (only while someone queues and the stock can serve one more).
pub fn next_tick(state: &SaleState) -> Option<Timestamp> {
    let room = state.room.as_deref()?;
    if !room.shuffled {
        return Some(room.config.opens_at);
    }
    let admit = (state.sale.as_ref().is_some_and(|s| s.status == SaleStatus::Open)
        && room.counts.queued > 0
        && stock_budget(state, room.counts.shopping_without_hold) > 0)
        .then(|| room.next_rate_slot());
    [room.next_expiry(), admit].into_iter().flatten().min()
}

/// What a tick at `now` decides: whether to shuffle, how many admissions expire, how many
/// buyers to admit. Shared by `decide` and the status read.
pub fn tick_plan(state: &SaleState, now: Timestamp) -> Option<(bool, u32, u32)> {
    let room = state.room.as_deref()?;
    let shuffle = !room.shuffled && now >= room.config.opens_at;
    let (expire, freed_without_hold) = room.due_expiries(now);
    let without_hold = room.counts.shopping_without_hold - freed_without_hold;
    let admit = if shuffle {
        0
    } else {
        admit_budget(state, without_hold, now)
    };
    Some((shuffle, expire, admit))
}

/// A buyer's odds of buying, from stock and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Odds {
    Likely,
    Unlikely,
    SoldOut,
}

impl Odds {
    pub fn as_str(self) -> &'static str {
        match self {
            Odds::Likely => "likely",
            Odds::Unlikely => "unlikely",
            Odds::SoldOut => "sold_out",
        }
    }
}

/// Where a buyer stands in the room, as the status read and the push show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomStanding {
    /// Joined before the shuffle: no position yet.
    Prequeued,
    Queued {
        /// 1 for the front.
        position: u64,
        ahead: u64,
        /// At the rate cap, if the stock lets the queue move at all.
        wait_ms: Option<u64>,
    },
    Admitted {
        number: u32,
        expires_at: Timestamp,
    },
    Used,
    Expired,
    Left,
    NotJoined,
}

/// One buyer's status at `now`: where they stand and their odds. The read the status
/// endpoint and the push hub share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomStatus {
    pub standing: RoomStanding,
    pub odds: Odds,
    pub queued: u64,
}

/// The status of `buyer` in the sale's room at `now`, if the sale has a room.
pub fn status(state: &SaleState, buyer: &BuyerId, now: Timestamp) -> Option<RoomStatus> {
    let room = state.room.as_deref()?;
    let standing = match room.slot(buyer) {
        None => RoomStanding::NotJoined,
        Some(Slot::Queued { .. }) if !room.shuffled => RoomStanding::Prequeued,
        Some(Slot::Queued { seq }) => {
            let ahead = room.ahead(seq);
            let moving = stock_budget(state, room.counts.shopping_without_hold) > 0;
            RoomStanding::Queued {
                position: ahead + 1,
                ahead,
                wait_ms: moving.then(|| ahead * 1000 / u64::from(room.config.admit_per_sec.max(1))),
            }
        }
        Some(Slot::Admitted { number, expires_at, .. }) if now < expires_at => {
            RoomStanding::Admitted { number, expires_at }
        }
        Some(Slot::Admitted { .. } | Slot::Expired) => RoomStanding::Expired,
        Some(Slot::Used) => RoomStanding::Used,
        Some(Slot::Left) => RoomStanding::Left,
    };
    Some(RoomStatus {
        odds: odds(state, &standing),
        standing,
        queued: room.counts.queued,
    })
}

fn odds(state: &SaleState, standing: &RoomStanding) -> Odds {
    if sold_out(state) {
        return Odds::SoldOut;
    }
    let Some(room) = &state.room else { return Odds::SoldOut };
    let ahead = match standing {
        RoomStanding::Queued { ahead, .. } => *ahead,
        RoomStanding::Prequeued => room.counts.queued / 2,
        RoomStanding::Admitted { .. } => return Odds::Likely,
        _ => return Odds::Unlikely,
    };
    if stock_budget(state, room.counts.shopping_without_hold) > ahead {
        Odds::Likely
    } else {
        Odds::Unlikely
    }
}
