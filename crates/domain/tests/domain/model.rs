//! Random command sequences against a reference model (`proptest-state-machine`).
//!
//! The model is deliberately naive: plain lists of holds, orders and tickets, with every
//! counter recomputed by scanning them. After each step the real `SaleState` must agree with
//! it on accept/reject (by rejection code) and outcome, and on every counter; the invariants
//! must hold; and replaying all events so far — through the codec — must rebuild a state equal
//! to the live one.
//!
//! The sale: types T0 (in Q0), T1 (in Q0 and Q1, at most 2 per order), T2 (in Q1, free) and
//! T3 (in no quota: never sellable); small random capacities so that sold-out happens; three
//! buyers; a one-second hold TTL with time advancing so that expiry happens; offline payments
//! kept for five seconds. Payments are requested by buyers (test or offline) and reported on
//! by a random provider: created, authorised, captured, voided, declined or failed, in any
//! order and any number of times, as webhooks arrive.

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use taquilla_domain::codec::{decode_events, encode_events};
use taquilla_domain::{
    Actor, Command, CreateSale, Ctx, Event, HoldId, HoldState, Item, Items, OrderId, OrderState, Outcome,
    PaymentMethod, PaymentState, PaymentUpdate, Quantity, QuotaId, SaleState, SaleStatus, TicketCode, TicketTypeId,
    Timestamp, decide, evolve, invariants,
};

use super::support::*;

const TYPES: usize = 4;
const PRICES: [i64; TYPES] = [100, 250, 0, 10];
const MAX_PER_ORDER: [Option<u32>; TYPES] = [None, Some(2), None, None];
/// Quotas each type counts against.
const TYPE_QUOTAS: [&[usize]; TYPES] = [&[0], &[0, 1], &[1], &[]];
const MODEL_TTL_MS: i64 = 1_000;
/// How long the state remembers idempotency keys in this test (the engine's floor is a minute;
/// the state takes any TTL): short enough that sequences outlive keys.
const MODEL_KEY_TTL_MS: i64 = 2_500;
const OFFLINE_TTL_MS: i64 = 5_000;
const ATTEMPTS_MAX: usize = taquilla_domain::limits::PAYMENT_ATTEMPTS_MAX as usize;
const START_MS: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldS {
    Active,
    Released,
    Expired,
    Converted,
}

#[derive(Debug, Clone)]
struct MHold {
    buyer: u8,
    lines: Vec<(u32, u32)>,
    expires_at: i64,
    state: HoldS,
}

#[derive(Debug, Clone)]
struct MOrder {
    buyer: u8,
    lines: Vec<(u32, u32)>,
    expires_at: i64,
    state: OrderState,
    payment_ref: Option<u8>,
    /// Indices into `Model::tickets`.
    tickets: Vec<usize>,
    payments: Vec<MPayment>,
}

#[derive(Debug, Clone)]
struct MPayment {
    offline: bool,
    state: PaymentState,
    intent: Option<u8>,
}

#[derive(Debug, Clone)]
struct MTicket {
    order: usize,
    ticket_type: usize,
    refunded: bool,
    checked_in_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Request {
    Place(Vec<(u32, u32)>),
    Checkout(u64),
}

#[derive(Debug, Clone)]
pub struct Model {
    now: i64,
    status: SaleStatus,
    limit: Option<u32>,
    capacity: [u32; 2],
    /// Hold id = index + 1; likewise orders; ticket code = index + 1.
    holds: Vec<MHold>,
    orders: Vec<MOrder>,
    tickets: Vec<MTicket>,
    /// (buyer, key, request, outcome, when), newest last.
    remembered: Vec<(u8, u8, Request, Outcome, i64)>,
    /// What the last step answered: an outcome or a rejection code.
    last: Result<Outcome, &'static str>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Advance(i64),
    Place {
        buyer: u8,
        lines: Vec<(u32, u32)>,
        key: Option<u8>,
    },
    Release {
        buyer: u8,
        hold: u64,
    },
    Expire,
    Checkout {
        buyer: u8,
        hold: u64,
        key: Option<u8>,
    },
    Pay {
        order: u64,
        reference: u8,
    },
    Cancel {
        buyer: Option<u8>,
        order: u64,
    },
    Refund {
        order: u64,
        codes: Option<Vec<u128>>,
    },
    CheckIn {
        code: u128,
    },
    SetStatus(SaleStatus),
    /// The organiser sets quota `quota`'s capacity (interleaved with holds: never an oversell).
    SetCapacity {
        quota: usize,
        capacity: u32,
    },
    RequestPayment {
        buyer: u8,
        order: u64,
        offline: bool,
    },
    /// The provider reports on attempt `attempt`: 0 created, 1 authorised, 2 captured,
    /// 3 voided, 4 declined, 5 failed; `intent` names its payment at the provider.
    Report {
        order: u64,
        attempt: u32,
        what: u8,
        intent: u8,
    },
}

/// Waiting for its payment: the order holds its tickets.
fn pending(o: &MOrder) -> bool {
    matches!(o.state, OrderState::AwaitingPayment | OrderState::PaymentPending)
}

/// Its payment is being captured: no deadline may take its tickets away.
fn capturing(o: &MOrder) -> bool {
    o.state == OrderState::PaymentPending && o.payments.last().is_some_and(|p| p.state == PaymentState::Authorised)
}

fn is_final(s: PaymentState) -> bool {
    matches!(
        s,
        PaymentState::Captured | PaymentState::Voided | PaymentState::Declined | PaymentState::Failed
    )
}

impl Model {
    fn held(&self) -> [u32; TYPES] {
        let mut held = [0; TYPES];
        let active = self.holds.iter().filter(|h| h.state == HoldS::Active).map(|h| &h.lines);
        let unpaid = self.orders.iter().filter(|o| pending(o)).map(|o| &o.lines);
        for lines in active.chain(unpaid) {
            for &(tt, q) in lines {
                held[tt as usize] += q;
            }
        }
        held
    }

    fn sold(&self) -> [u32; TYPES] {
        let mut sold = [0; TYPES];
        for t in self.tickets.iter().filter(|t| !t.refunded) {
            sold[t.ticket_type] += 1;
        }
        sold
    }

    /// (held, sold) per quota.
    fn quota_use(&self) -> [(u32, u32); 2] {
        let (held, sold) = (self.held(), self.sold());
        let mut used = [(0, 0); 2];
        for tt in 0..TYPES {
            for &q in TYPE_QUOTAS[tt] {
                used[q].0 += held[tt];
                used[q].1 += sold[tt];
            }
        }
        used
    }

    fn quota_available(&self) -> [u32; 2] {
        let used = self.quota_use();
        [0, 1].map(|q| self.capacity[q].saturating_sub(used[q].0 + used[q].1))
    }

    fn buyer_count(&self, buyer: u8) -> u32 {
        let holds: u32 = self
            .holds
            .iter()
            .filter(|h| h.buyer == buyer && h.state == HoldS::Active)
            .flat_map(|h| h.lines.iter().map(|l| l.1))
            .sum();
        let unpaid: u32 = self
            .orders
            .iter()
            .filter(|o| o.buyer == buyer && pending(o))
            .flat_map(|o| o.lines.iter().map(|l| l.1))
            .sum();
        let tickets = self
            .tickets
            .iter()
            .filter(|t| !t.refunded && self.orders[t.order].buyer == buyer)
            .count();
        holds + unpaid + tickets as u32
    }

    /// Whether `lines` fit the inventory, and if not, the rejection code.
    fn inventory(&self, lines: &[(u32, u32)]) -> Result<(), &'static str> {
        let available = self.quota_available();
        for &(tt, _) in lines {
            let type_available = TYPE_QUOTAS[tt as usize]
                .iter()
                .map(|&q| available[q])
                .min()
                .unwrap_or(0);
            if type_available == 0 {
                return Err("sold_out");
            }
        }
        let mut need = [0u32; 2];
        for &(tt, q) in lines {
            for &quota in TYPE_QUOTAS[tt as usize] {
                need[quota] += q;
            }
        }
        if (0..2).any(|q| need[q] > available[q]) {
            return Err("insufficient_inventory");
        }
        Ok(())
    }

    fn within_limit(&self, buyer: u8, lines: &[(u32, u32)]) -> bool {
        let quantity: u32 = lines.iter().map(|l| l.1).sum();
        self.limit
            .is_none_or(|limit| self.buyer_count(buyer) + quantity <= limit)
    }

    fn recall(&self, buyer: u8, key: Option<u8>, request: &Request) -> Option<Result<Outcome, &'static str>> {
        let key = key?;
        let (_, _, remembered, outcome, _) = self
            .remembered
            .iter()
            .rev()
            .find(|(b, k, _, _, _)| *b == buyer && *k == key)
            .filter(|(.., at)| self.now < at + MODEL_KEY_TTL_MS)?;
        Some(if remembered == request {
            Ok(*outcome)
        } else {
            Err("idempotency_conflict")
        })
    }

    /// The buyer's active hold. One that ended is `hold_ended` whoever names it: ended holds
    /// are not kept, so their owner is unknown.
    fn hold_of(&mut self, buyer: u8, hold: u64) -> Result<&mut MHold, &'static str> {
        let h = (hold as usize)
            .checked_sub(1)
            .and_then(|i| self.holds.get_mut(i))
            .ok_or("not_found")?;
        if h.state != HoldS::Active {
            return Err("hold_ended");
        }
        if h.buyer != buyer {
            return Err("not_found");
        }
        Ok(h)
    }

    fn step(&mut self, step: &Step) -> Result<Outcome, &'static str> {
        let now = self.now;
        match step {
            Step::Advance(ms) => {
                self.now += ms;
                Ok(Outcome::Done)
            }
            Step::Place { buyer, lines, key } => {
                let request = Request::Place(lines.clone());
                if let Some(answer) = self.recall(*buyer, *key, &request) {
                    return answer;
                }
                if self.status != SaleStatus::Open {
                    return Err("sale_not_open");
                }
                for (i, &(tt, q)) in lines.iter().enumerate() {
                    if lines[..i].iter().any(|l| l.0 == tt) {
                        return Err("invalid");
                    }
                    if tt as usize >= TYPES {
                        return Err("not_found");
                    }
                    if MAX_PER_ORDER[tt as usize].is_some_and(|max| q > max) {
                        return Err("invalid");
                    }
                }
                self.inventory(lines)?;
                if !self.within_limit(*buyer, lines) {
                    return Err("limit_exceeded");
                }
                self.holds.push(MHold {
                    buyer: *buyer,
                    lines: lines.clone(),
                    expires_at: now + MODEL_TTL_MS,
                    state: HoldS::Active,
                });
                let outcome = Outcome::Hold(HoldId(self.holds.len() as u64));
                if let Some(key) = key {
                    self.remembered.push((*buyer, *key, request, outcome, now));
                }
                Ok(outcome)
            }
            Step::Release { buyer, hold } => {
                let h = self.hold_of(*buyer, *hold)?;
                h.state = HoldS::Released;
                Ok(Outcome::Done)
            }
            Step::Expire => {
                for h in self
                    .holds
                    .iter_mut()
                    .filter(|h| h.state == HoldS::Active && h.expires_at <= now)
                {
                    h.state = HoldS::Expired;
                }
                for o in self
                    .orders
                    .iter_mut()
                    .filter(|o| pending(o) && !capturing(o) && o.expires_at <= now)
                {
                    o.state = OrderState::Expired;
                    end_open_payment(o);
                }
                Ok(Outcome::Done)
            }
            Step::Checkout { buyer, hold, key } => {
                let request = Request::Checkout(*hold);
                if let Some(answer) = self.recall(*buyer, *key, &request) {
                    return answer;
                }
                if matches!(self.status, SaleStatus::Closed | SaleStatus::Archived) {
                    return Err("sale_not_open");
                }
                let h = self.hold_of(*buyer, *hold)?;
                if now >= h.expires_at {
                    return Err("hold_expired");
                }
                h.state = HoldS::Converted;
                let order = MOrder {
                    buyer: *buyer,
                    lines: h.lines.clone(),
                    expires_at: h.expires_at,
                    state: OrderState::AwaitingPayment,
                    payment_ref: None,
                    tickets: vec![],
                    payments: vec![],
                };
                let free = order.lines.iter().all(|&(tt, _)| PRICES[tt as usize] == 0);
                self.orders.push(order);
                if free {
                    // Nothing to pay: tickets at checkout.
                    self.issue(self.orders.len() - 1);
                }
                let outcome = Outcome::Order(OrderId(self.orders.len() as u64));
                if let Some(key) = key {
                    self.remembered.push((*buyer, *key, request, outcome, now));
                }
                Ok(outcome)
            }
            Step::Pay { order, reference } => {
                let i = (*order as usize)
                    .checked_sub(1)
                    .filter(|i| *i < self.orders.len())
                    .ok_or("not_found")?;
                let o = &self.orders[i];
                match o.state {
                    OrderState::AwaitingPayment => {}
                    OrderState::PaymentPending => return Err("conflict"),
                    OrderState::Expired => {
                        if self.inventory(&o.lines).is_err() || !self.within_limit(o.buyer, &o.lines) {
                            let o = &mut self.orders[i];
                            o.state = OrderState::RefundRequired;
                            o.payment_ref = Some(*reference);
                            return Ok(Outcome::Done);
                        }
                    }
                    OrderState::Paid | OrderState::RefundRequired | OrderState::Refunded
                        if o.payment_ref == Some(*reference) =>
                    {
                        return Ok(Outcome::Done);
                    }
                    _ => return Err("conflict"),
                }
                self.issue(i);
                let o = &mut self.orders[i];
                o.payment_ref = Some(*reference);
                if let Some(p) = o
                    .payments
                    .last_mut()
                    .filter(|p| p.state == PaymentState::AwaitingOffline)
                {
                    p.state = PaymentState::Captured;
                }
                Ok(Outcome::Done)
            }
            Step::Cancel { order, buyer } => {
                let o = self.order_mut(*order)?;
                if buyer.is_some_and(|b| b != o.buyer) {
                    return Err("not_found");
                }
                if !pending(o) || capturing(o) {
                    return Err("conflict");
                }
                o.state = OrderState::Cancelled;
                end_open_payment(o);
                Ok(Outcome::Done)
            }
            Step::RequestPayment { buyer, order, offline } => self.request_payment(*buyer, *order, *offline),
            Step::Report {
                order,
                attempt,
                what,
                intent,
            } => self.report(*order, *attempt, *what, *intent),
            Step::Refund { order, codes } => {
                let i = (*order as usize)
                    .checked_sub(1)
                    .filter(|i| *i < self.orders.len())
                    .ok_or("not_found")?;
                match self.orders[i].state {
                    OrderState::Paid => {}
                    OrderState::RefundRequired => {
                        if codes.is_some() {
                            return Err("invalid");
                        }
                        self.orders[i].state = OrderState::Refunded;
                        return Ok(Outcome::Done);
                    }
                    _ => return Err("conflict"),
                }
                let chosen: Vec<usize> = match codes {
                    None => self.orders[i]
                        .tickets
                        .iter()
                        .copied()
                        .filter(|&t| !self.tickets[t].refunded)
                        .collect(),
                    Some(codes) => {
                        if codes.is_empty() {
                            return Err("invalid");
                        }
                        if codes.iter().enumerate().any(|(j, c)| codes[..j].contains(c)) {
                            return Err("invalid");
                        }
                        let mut chosen = vec![];
                        for &code in codes {
                            let t = (code as usize).checked_sub(1).filter(|t| *t < self.tickets.len());
                            match t {
                                Some(t) if self.tickets[t].order == i => {
                                    if self.tickets[t].refunded {
                                        return Err("conflict");
                                    }
                                    if self.tickets[t].checked_in_at.is_some() {
                                        return Err("already_checked_in");
                                    }
                                    chosen.push(t)
                                }
                                _ => return Err("not_found"),
                            }
                        }
                        chosen
                    }
                };
                for &t in &chosen {
                    if self.tickets[t].refunded {
                        return Err("conflict");
                    }
                    if self.tickets[t].checked_in_at.is_some() {
                        return Err("already_checked_in");
                    }
                }
                for &t in &chosen {
                    self.tickets[t].refunded = true;
                }
                if self.orders[i].tickets.iter().all(|&t| self.tickets[t].refunded) {
                    self.orders[i].state = OrderState::Refunded;
                }
                Ok(Outcome::Done)
            }
            Step::CheckIn { code } => {
                let t = (*code as usize)
                    .checked_sub(1)
                    .and_then(|t| self.tickets.get_mut(t))
                    .ok_or("not_found")?;
                if t.refunded {
                    return Err("conflict");
                }
                if t.checked_in_at.is_some() {
                    return Err("already_checked_in");
                }
                t.checked_in_at = Some(now);
                Ok(Outcome::CheckedIn {
                    code: TicketCode(*code),
                    at: Timestamp(now),
                })
            }
            Step::SetStatus(to) => {
                use SaleStatus::*;
                match (self.status, *to) {
                    (a, b) if a == b => Ok(Outcome::Done),
                    (Draft, Open)
                    | (Open, Paused)
                    | (Paused, Open)
                    | (Draft | Open | Paused, Closed)
                    | (Draft | Paused | Closed, Archived) => {
                        self.status = *to;
                        Ok(Outcome::Done)
                    }
                    _ => Err("conflict"),
                }
            }
            Step::SetCapacity { quota, capacity } => {
                if matches!(self.status, SaleStatus::Closed | SaleStatus::Archived) {
                    return Err("conflict");
                }
                let (held, sold) = self.quota_use()[*quota];
                if *capacity != self.capacity[*quota] && *capacity < held + sold {
                    return Err("conflict");
                }
                self.capacity[*quota] = *capacity;
                Ok(Outcome::Done)
            }
        }
    }

    /// Issues the order's tickets: held becomes sold.
    fn issue(&mut self, i: usize) {
        for &(tt, q) in &self.orders[i].lines.clone() {
            for _ in 0..q {
                self.orders[i].tickets.push(self.tickets.len());
                self.tickets.push(MTicket {
                    order: i,
                    ticket_type: tt as usize,
                    refunded: false,
                    checked_in_at: None,
                });
            }
        }
        self.orders[i].state = OrderState::Paid;
    }

    fn request_payment(&mut self, buyer: u8, order: u64, offline: bool) -> Result<Outcome, &'static str> {
        let now = self.now;
        let o = self.order_mut(order)?;
        if o.buyer != buyer {
            return Err("not_found");
        }
        let outcome = |attempt: usize| Outcome::Payment {
            order: OrderId(order),
            attempt: attempt as u32,
        };
        let current = o.payments.last();
        match o.state {
            OrderState::PaymentPending => {
                return match current {
                    Some(p) if p.offline == offline && !is_final(p.state) => Ok(outcome(o.payments.len())),
                    _ => Err("conflict"),
                };
            }
            OrderState::AwaitingPayment => {
                if current.is_some_and(|p| p.state == PaymentState::AwaitingOffline && offline) {
                    return Ok(outcome(o.payments.len()));
                }
            }
            OrderState::Expired => return Err("hold_expired"),
            _ => return Err("conflict"),
        }
        if now >= o.expires_at {
            return Err("hold_expired");
        }
        if o.payments.len() >= ATTEMPTS_MAX {
            return Err("conflict");
        }
        if let Some(p) = o
            .payments
            .last_mut()
            .filter(|p| p.state == PaymentState::AwaitingOffline)
        {
            p.state = PaymentState::Voided;
        }
        let state = if offline {
            o.expires_at = o.expires_at.max(now + OFFLINE_TTL_MS);
            PaymentState::AwaitingOffline
        } else {
            o.state = OrderState::PaymentPending;
            PaymentState::Requested
        };
        o.payments.push(MPayment {
            offline,
            state,
            intent: None,
        });
        Ok(outcome(o.payments.len()))
    }

    fn report(&mut self, order: u64, attempt: u32, what: u8, intent: u8) -> Result<Outcome, &'static str> {
        let i = (order as usize)
            .checked_sub(1)
            .filter(|i| *i < self.orders.len())
            .ok_or("not_found")?;
        let a = (attempt as usize)
            .checked_sub(1)
            .filter(|a| *a < self.orders[i].payments.len())
            .ok_or("not_found")?;
        let o = &self.orders[i];
        let p = &o.payments[a];
        if p.offline {
            return Err("not_found");
        }
        if what <= 2 && p.intent.is_some_and(|known| known != intent) {
            return Err("conflict");
        }
        let current = a + 1 == o.payments.len();
        let state = p.state;
        let set_intent = |m: &mut Model| {
            let p = &mut m.orders[i].payments[a];
            p.intent = p.intent.or(Some(intent));
        };
        match what {
            0 if self.orders[i].payments[a].intent.is_none() => {
                set_intent(self);
                if state == PaymentState::Requested {
                    self.orders[i].payments[a].state = PaymentState::AwaitingBuyer;
                }
            }
            1 => self.authorised(i, a, current, intent),
            2 if state != PaymentState::Captured => {
                let pays = o.state == OrderState::PaymentPending
                    && current
                    && matches!(
                        state,
                        PaymentState::Authorised | PaymentState::Requested | PaymentState::AwaitingBuyer
                    );
                set_intent(self);
                self.orders[i].payments[a].state = PaymentState::Captured;
                if pays {
                    self.issue(i);
                }
            }
            3 if !is_final(state) => self.end_attempt(i, a, PaymentState::Voided),
            4 if matches!(state, PaymentState::Requested | PaymentState::AwaitingBuyer) => {
                self.end_attempt(i, a, PaymentState::Declined)
            }
            5 if matches!(
                state,
                PaymentState::Requested | PaymentState::AwaitingBuyer | PaymentState::VoidRequired
            ) =>
            {
                self.end_attempt(i, a, PaymentState::Failed)
            }
            5 if state == PaymentState::Authorised => self.end_attempt(i, a, PaymentState::VoidRequired),
            _ => {}
        }
        Ok(Outcome::Payment {
            order: OrderId(order),
            attempt,
        })
    }

    fn authorised(&mut self, i: usize, a: usize, current: bool, intent: u8) {
        let o = &self.orders[i];
        let state = o.payments[a].state;
        let quantity = o.lines.clone();
        let free = self.inventory(&quantity).is_ok() && self.within_limit(o.buyer, &quantity);
        if state == PaymentState::Voided {
            // Older than the void the provider confirmed: nothing, not even the intent.
            return;
        }
        let p = &mut self.orders[i].payments[a];
        p.intent = p.intent.or(Some(intent));
        let o_state = self.orders[i].state;
        match state {
            PaymentState::Requested | PaymentState::AwaitingBuyer if o_state == OrderState::PaymentPending => {
                self.orders[i].payments[a].state = PaymentState::Authorised;
            }
            PaymentState::VoidRequired if o_state == OrderState::Expired && current && free => {
                self.orders[i].state = OrderState::PaymentPending;
                self.orders[i].payments[a].state = PaymentState::Authorised;
            }
            PaymentState::Authorised | PaymentState::Captured | PaymentState::VoidRequired => {}
            _ => self.end_attempt(i, a, PaymentState::VoidRequired),
        }
    }

    /// Attempt `a` of order `i` ends (or needs a void): an order pending on it awaits payment again.
    fn end_attempt(&mut self, i: usize, a: usize, to: PaymentState) {
        let o = &mut self.orders[i];
        o.payments[a].state = to;
        if a + 1 == o.payments.len() && o.state == OrderState::PaymentPending {
            o.state = OrderState::AwaitingPayment;
        }
    }

    fn order_mut(&mut self, order: u64) -> Result<&mut MOrder, &'static str> {
        (order as usize)
            .checked_sub(1)
            .and_then(|i| self.orders.get_mut(i))
            .ok_or("not_found")
    }
}

/// The payment under way of an order that lets its tickets go: voided at the provider, or
/// simply over when offline.
fn end_open_payment(o: &mut MOrder) {
    if let Some(p) = o.payments.last_mut() {
        p.state = match p.state {
            PaymentState::Requested | PaymentState::AwaitingBuyer => PaymentState::VoidRequired,
            PaymentState::AwaitingOffline => PaymentState::Voided,
            other => other,
        };
    }
}

/// Picks one of `existing` three times in four, else anything from `any`.
fn mostly<T: Clone + std::fmt::Debug + 'static>(
    existing: Vec<T>,
    any: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if existing.is_empty() {
        any.boxed()
    } else {
        prop_oneof![3 => prop::sample::select(existing), 1 => any].boxed()
    }
}

pub struct SaleMachine;

impl ReferenceStateMachine for SaleMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        (0u32..=8, 0u32..=8, prop::option::of(1u32..=8))
            .prop_map(|(q0, q1, limit)| Model {
                now: START_MS,
                status: SaleStatus::Open,
                limit,
                capacity: [q0, q1],
                holds: vec![],
                orders: vec![],
                tickets: vec![],
                remembered: vec![],
                last: Ok(Outcome::Done),
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let buyer = 0u8..3;
        let key = prop::option::of(0u8..2);
        // Mostly existing holds, orders and tickets with their own buyer; sometimes anything,
        // so that "not found" and "someone else's" are exercised too.
        let holds: Vec<(u8, u64)> = state.holds.iter().zip(1..).map(|(h, id)| (h.buyer, id)).collect();
        let hold = mostly(holds, (buyer.clone(), 1..=state.holds.len() as u64 + 1));
        let orders: Vec<(u8, u64)> = state.orders.iter().zip(1..).map(|(o, id)| (o.buyer, id)).collect();
        let order = mostly(orders, (buyer.clone(), 1..=state.orders.len() as u64 + 1));
        // Reports mostly name an attempt that exists (the last one most of all).
        let attempts: Vec<(u64, u32)> = state
            .orders
            .iter()
            .zip(1..)
            .flat_map(|(o, id)| {
                let n = o.payments.len() as u32;
                (1..=n)
                    .chain(std::iter::repeat_n(n, 2 * n.min(1) as usize))
                    .map(move |a| (id, a))
            })
            .collect();
        let attempt = mostly(attempts, (1..=state.orders.len() as u64 + 1, 1u32..=3));
        let codes: Vec<u128> = (1..=state.tickets.len() as u128).collect();
        let code = mostly(codes, 1..=state.tickets.len() as u128 + 1);
        let ticket_type = prop_oneof![8 => 0u32..3, 1 => Just(3u32), 1 => Just(TYPES as u32)];
        let lines = prop::collection::vec((ticket_type, 1u32..=3), 1..=2);
        let status = prop_oneof![
            4 => Just(SaleStatus::Open),
            2 => Just(SaleStatus::Paused),
            1 => Just(SaleStatus::Closed),
            1 => Just(SaleStatus::Draft),
            1 => Just(SaleStatus::Archived),
        ];
        let refund_codes = prop::option::of(prop::collection::vec(code.clone(), 0..=3));
        prop_oneof![
            3 => prop_oneof![0i64..=300, 900i64..=1_100].prop_map(Step::Advance),
            8 => (buyer.clone(), lines, key.clone()).prop_map(|(buyer, lines, key)| Step::Place { buyer, lines, key }),
            1 => hold.clone().prop_map(|(buyer, hold)| Step::Release { buyer, hold }),
            2 => Just(Step::Expire),
            5 => (hold, key).prop_map(|((buyer, hold), key)| Step::Checkout { buyer, hold, key }),
            2 => (order.clone(), 0u8..2).prop_map(|((_, order), reference)| Step::Pay { order, reference }),
            4 => (order.clone(), prop_oneof![4 => Just(false), 1 => Just(true)])
                .prop_map(|((buyer, order), offline)| Step::RequestPayment { buyer, order, offline }),
            8 => (attempt, 0u8..6, prop_oneof![9 => Just(0u8), 1 => Just(1u8)])
                .prop_map(|((order, attempt), what, intent)| Step::Report { order, attempt, what, intent }),
            1 => (any::<bool>(), order.clone())
                .prop_map(|(admin, (buyer, order))| Step::Cancel { buyer: (!admin).then_some(buyer), order }),
            2 => (order, refund_codes).prop_map(|((_, order), codes)| Step::Refund { order, codes }),
            2 => code.prop_map(|code| Step::CheckIn { code }),
            1 => status.prop_map(Step::SetStatus),
            3 => (0usize..2, 0u32..=12).prop_map(|(quota, capacity)| Step::SetCapacity { quota, capacity }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.last = state.step(step);
        state
    }
}

/// The system under test: the live state, every event so far, and the clock.
pub struct Sut {
    state: SaleState,
    log: Vec<Event>,
    entropy: CounterEntropy,
    now: i64,
}

impl Sut {
    fn run(&mut self, command: Command) -> Result<Outcome, taquilla_domain::Rejection> {
        let mut ctx = Ctx {
            now: Timestamp(self.now),
            entropy: &mut self.entropy,
            correlation_id: Some("model"),
        };
        let decision = decide(&self.state, command, &mut ctx)?;
        for e in &decision.events {
            evolve(&mut self.state, e);
        }
        self.log.extend(decision.events);
        Ok(decision.outcome)
    }
}

/// The provider's report `what` about its payment `intent` (see `Step::Report`).
fn update(what: u8, intent: u8) -> PaymentUpdate {
    let intent = pay_ref(&format!("pi_{intent}"));
    match what {
        0 => PaymentUpdate::Created {
            intent,
            client_secret: None,
        },
        1 => PaymentUpdate::Authorised { intent },
        2 => PaymentUpdate::Captured { intent },
        3 => PaymentUpdate::Voided,
        4 => PaymentUpdate::Declined {
            reason: reason("card declined"),
        },
        _ => PaymentUpdate::Failed {
            reason: reason("refused"),
        },
    }
}

fn buyer_name(b: u8) -> taquilla_domain::BuyerId {
    buyer(&format!("b{b}"))
}

fn key_name(k: Option<u8>) -> Option<taquilla_domain::IdempotencyKey> {
    k.map(|k| key(&format!("k{k}")))
}

fn to_items(lines: &[(u32, u32)]) -> Items {
    lines
        .iter()
        .map(|&(tt, q)| Item {
            ticket_type: TicketTypeId(tt),
            quantity: Quantity::new(q).expect("1..=3"),
        })
        .collect()
}

impl StateMachineTest for SaleMachine {
    type SystemUnderTest = Sut;
    type Reference = SaleMachine;

    fn init_test(model: &Model) -> Sut {
        let mut state = SaleState::default();
        state.idempotency.ttl_ms = MODEL_KEY_TTL_MS as u64;
        let mut sut = Sut {
            state,
            log: vec![],
            entropy: CounterEntropy(0),
            now: START_MS,
        };
        let mut setup = vec![Command::CreateSale(CreateSale {
            name: name("Model sale"),
            currency: eur(),
            hold_ttl_ms: MODEL_TTL_MS as u64,
            max_tickets_per_buyer: model.limit,
            opens_at: None,
            closes_at: None,
            offline_payment_ttl_ms: Some(OFFLINE_TTL_MS as u64),
        })];
        for tt in 0..TYPES {
            setup.push(Command::AddTicketType {
                name: name(&format!("T{tt}")),
                price: money(PRICES[tt]),
                max_per_order: MAX_PER_ORDER[tt],
            });
        }
        for q in 0..2 {
            let ticket_types = (0..TYPES)
                .filter(|tt| TYPE_QUOTAS[*tt].contains(&q))
                .map(|tt| TicketTypeId(tt as u32))
                .collect();
            setup.push(Command::AddQuota {
                name: name(&format!("Q{q}")),
                capacity: model.capacity[q],
                ticket_types,
            });
        }
        setup.push(Command::SetStatus(SaleStatus::Open));
        for command in setup {
            sut.run(command).expect("setup is accepted");
        }
        sut
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let command = match step {
            Step::Advance(ms) => {
                sut.now += ms;
                return sut;
            }
            Step::Place { buyer, lines, key } => Command::PlaceHold {
                buyer: buyer_name(buyer),
                items: to_items(&lines),
                idempotency_key: key_name(key),
            },
            Step::Release { buyer, hold } => Command::ReleaseHold {
                buyer: buyer_name(buyer),
                hold: HoldId(hold),
            },
            Step::Expire => Command::ExpireDue,
            Step::Checkout { buyer, hold, key } => Command::Checkout {
                buyer: buyer_name(buyer),
                hold: HoldId(hold),
                idempotency_key: key_name(key),
            },
            Step::Pay { order, reference } => Command::ConfirmPayment {
                order: OrderId(order),
                payment_ref: pay_ref(&format!("r{reference}")),
            },
            Step::RequestPayment { buyer, order, offline } => Command::RequestPayment {
                buyer: buyer_name(buyer),
                order: OrderId(order),
                method: if offline {
                    PaymentMethod::Offline
                } else {
                    PaymentMethod::Test
                },
            },
            Step::Report {
                order,
                attempt,
                what,
                intent,
            } => Command::RecordPayment {
                order: OrderId(order),
                attempt,
                update: update(what, intent),
            },
            Step::Cancel { buyer, order } => Command::CancelOrder {
                actor: buyer.map_or(Actor::Admin, |b| Actor::Buyer(buyer_name(b))),
                order: OrderId(order),
            },
            Step::Refund { order, codes } => Command::Refund {
                order: OrderId(order),
                tickets: codes.map(|c| c.into_iter().map(TicketCode).collect()),
            },
            Step::CheckIn { code } => Command::CheckIn { code: TicketCode(code) },
            Step::SetStatus(status) => Command::SetStatus(status),
            Step::SetCapacity { quota, capacity } => Command::SetQuotaCapacity {
                quota: QuotaId(quota as u32),
                capacity,
            },
        };
        let answer = sut.run(command).map_err(|r| r.code());
        assert_eq!(answer, model.last, "real answer vs model");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let s = &sut.state;
        if let Err(e) = invariants::check(s) {
            panic!("invariant broken: {e}");
        }
        let (held, sold) = (model.held(), model.sold());
        for tt in 0..TYPES {
            assert_eq!(
                (s.ticket_types[tt].held, s.ticket_types[tt].sold),
                (held[tt], sold[tt]),
                "type {tt}"
            );
        }
        let used = model.quota_use();
        for (q, used) in used.iter().enumerate() {
            let quota = &s.quotas[q];
            assert_eq!((quota.held, quota.sold), *used, "quota {q}");
            assert_eq!(quota.id, QuotaId(q as u32));
        }
        for b in 0..3 {
            let real = s.buyer_tickets.get(&buyer_name(b)).copied().unwrap_or(0);
            assert_eq!(real, model.buyer_count(b), "buyer {b}");
        }
        // Only active holds are kept; the counts remember the rest.
        assert_eq!(s.holds.placed(), model.holds.len() as u64);
        let mut by_kind = [0u64; HoldState::KINDS];
        for (i, h) in model.holds.iter().enumerate() {
            let id = HoldId(i as u64 + 1);
            let kind = match h.state {
                HoldS::Active => HoldState::Active,
                HoldS::Released => HoldState::Released,
                HoldS::Expired => HoldState::Expired,
                HoldS::Converted => HoldState::Converted(OrderId(0)),
            };
            by_kind[kind.kind()] += 1;
            let kept = s.holds.get(&id).map(|h| h.state);
            let expected = (h.state == HoldS::Active).then_some(HoldState::Active);
            assert_eq!(
                kept, expected,
                "hold {id:?}: kept as {kept:?}, model says {:?}",
                h.state
            );
        }
        assert_eq!(s.counts.holds, by_kind, "holds by state");
        let mut orders_by_state = [0u64; OrderState::ALL.len()];
        model.orders.iter().for_each(|o| orders_by_state[o.state as usize] += 1);
        assert_eq!(s.counts.orders, orders_by_state, "orders by state");
        let valid = model.tickets.iter().filter(|t| !t.refunded);
        let checked_in = valid.clone().filter(|t| t.checked_in_at.is_some()).count();
        assert_eq!(
            (s.counts.tickets_valid, s.counts.tickets_checked_in),
            (valid.count() as u64, checked_in as u64),
            "tickets valid, checked in"
        );
        assert_eq!(s.orders.len(), model.orders.len());
        for (i, o) in model.orders.iter().enumerate() {
            let real = &s.orders[&OrderId(i as u64 + 1)];
            assert_eq!(real.state, o.state, "order {}", i + 1);
            let real_payments: Vec<_> = real.payments.iter().map(|p| p.state).collect();
            let model_payments: Vec<_> = o.payments.iter().map(|p| p.state).collect();
            assert_eq!(real_payments, model_payments, "order {}'s payments", i + 1);
        }
        assert_eq!(s.tickets.len(), model.tickets.len());
        for (i, t) in model.tickets.iter().enumerate() {
            let real = &s.tickets[&TicketCode(i as u128 + 1)];
            assert_eq!(
                (real.refunded, real.checked_in_at),
                (t.refunded, t.checked_in_at.map(Timestamp))
            );
        }

        // Replay through the codec rebuilds the same state.
        let mut bytes = Vec::new();
        encode_events(&sut.log, &mut bytes);
        let decoded = decode_events(&bytes).expect("own payload decodes");
        assert_eq!(decoded, sut.log);
        let mut replayed = SaleState::default();
        replayed.idempotency.ttl_ms = MODEL_KEY_TTL_MS as u64;
        for e in &decoded {
            evolve(&mut replayed, e);
        }
        assert_eq!(&replayed, s, "replay differs from the live state");
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_agree_with_the_model(sequential 1..80 => SaleMachine);
}
