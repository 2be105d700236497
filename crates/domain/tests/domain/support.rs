//! Test helpers: a given/when/then harness in the style of cqrs-es's test framework,
//! a counter `Entropy`, and short constructors for values and events.

use taquilla_domain::{
    BuyerId, Command, Ctx, Currency, Decision, Entropy, Event, HoldId, IdempotencyKey, Item, Items, MoneyMinor, Name,
    OrderId, Outcome, PaymentRef, Quantity, QuotaId, Reason, Rejection, SaleState, TicketCode, TicketTypeId, Timestamp,
    decide, evolve, invariants,
};

/// Deterministic ticket codes: 1, 2, 3, ... after the starting value.
#[derive(Debug, Clone, Default)]
pub struct CounterEntropy(pub u128);

impl Entropy for CounterEntropy {
    fn ticket_code(&mut self) -> TicketCode {
        self.0 += 1;
        TicketCode(self.0)
    }
}

/// The state after folding `events`, checked against the invariants.
pub fn fold(events: &[Event]) -> SaleState {
    let mut state = SaleState::default();
    for e in events {
        evolve(&mut state, e);
    }
    if let Err(e) = invariants::check(&state) {
        panic!("given events break an invariant: {e}");
    }
    state
}

pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let events: Vec<Event> = events.into_iter().collect();
    Given { state: fold(&events) }
}

pub struct Given {
    state: SaleState,
}

impl Given {
    /// Decides `command` at `now_ms`. Ticket codes drawn are `CODE_BASE + 1`, `+ 2`, ...
    pub fn when(self, command: Command, now_ms: i64) -> Then {
        let mut entropy = CounterEntropy(CODE_BASE);
        let mut ctx = Ctx {
            now: Timestamp(now_ms),
            entropy: &mut entropy,
            correlation_id: None,
        };
        let result = decide(&self.state, command, &mut ctx);
        Then {
            state: self.state,
            result,
        }
    }
}

/// Ticket codes drawn in `when` start at `CODE_BASE + 1`.
pub const CODE_BASE: u128 = 1000;

pub struct Then {
    state: SaleState,
    result: Result<Decision, Rejection>,
}

impl Then {
    fn decision(&self) -> &Decision {
        match &self.result {
            Ok(d) => d,
            Err(r) => panic!("expected success, got rejection {r:?}"),
        }
    }

    /// Asserts the events and applies them, checking invariants afterwards.
    #[track_caller]
    pub fn then(mut self, expected: Vec<Event>) -> Self {
        assert_eq!(self.decision().events, expected);
        for e in &expected {
            evolve(&mut self.state, e);
        }
        if let Err(e) = invariants::check(&self.state) {
            panic!("events break an invariant: {e}");
        }
        self
    }

    #[track_caller]
    pub fn then_outcome(self, expected: Outcome) -> Self {
        assert_eq!(self.decision().outcome, expected);
        self
    }

    #[track_caller]
    pub fn then_reject(self, code: &str) -> Rejection {
        match self.result {
            Ok(d) => panic!("expected rejection {code}, got {d:?}"),
            Err(r) => {
                assert_eq!(r.code(), code, "rejection {r:?}");
                r
            }
        }
    }

    #[track_caller]
    pub fn then_rejection(self, expected: Rejection) {
        assert_eq!(self.result, Err(expected));
    }

    /// The events decided (not applied).
    pub fn events(&self) -> &[Event] {
        &self.decision().events
    }

    /// The state after the asserted events.
    pub fn state(&self) -> &SaleState {
        &self.state
    }
}

pub fn name(s: &str) -> Name {
    Name::parse(s).expect("test name")
}

pub fn buyer(s: &str) -> BuyerId {
    BuyerId::parse(s).expect("test buyer")
}

pub fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("test key")
}

pub fn pay_ref(s: &str) -> PaymentRef {
    PaymentRef::parse(s).expect("test payment ref")
}

pub fn reason(s: &str) -> Reason {
    Reason::parse(s).expect("test reason")
}

pub fn money(v: i64) -> MoneyMinor {
    MoneyMinor::new(v).expect("test money")
}

pub fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

pub fn items(lines: &[(u32, u32)]) -> Items {
    lines
        .iter()
        .map(|&(tt, q)| Item {
            ticket_type: TicketTypeId(tt),
            quantity: Quantity::new(q).expect("test quantity"),
        })
        .collect()
}

pub const GENERAL: TicketTypeId = TicketTypeId(0);
pub const VIP: TicketTypeId = TicketTypeId(1);
/// A ticket type in no quota: never sellable.
pub const ORPHAN: TicketTypeId = TicketTypeId(2);
pub const GENERAL_PRICE: i64 = 1_000;
pub const VIP_PRICE: i64 = 5_000;
pub const TTL_MS: u64 = 60_000;
pub const LIMIT: u32 = 6;

pub fn sale_created() -> Event {
    Event::SaleCreated {
        name: name("Concert"),
        currency: eur(),
        hold_ttl_ms: TTL_MS,
        max_tickets_per_buyer: Some(LIMIT),
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    }
}

/// A sale with General and VIP in a hall of 10 (N:M: VIP also in a VIP area of 3), an orphan
/// type in no quota, and the given status events appended.
pub fn catalog() -> Vec<Event> {
    vec![
        sale_created(),
        Event::TicketTypeAdded {
            id: GENERAL,
            name: name("General"),
            price: money(GENERAL_PRICE),
            max_per_order: None,
        },
        Event::TicketTypeAdded {
            id: VIP,
            name: name("VIP"),
            price: money(VIP_PRICE),
            max_per_order: Some(2),
        },
        Event::TicketTypeAdded {
            id: ORPHAN,
            name: name("Orphan"),
            price: money(1),
            max_per_order: None,
        },
        Event::QuotaAdded {
            id: QuotaId(0),
            name: name("Hall"),
            capacity: 10,
            ticket_types: vec![GENERAL, VIP],
        },
        Event::QuotaAdded {
            id: QuotaId(1),
            name: name("VIP area"),
            capacity: 3,
            ticket_types: vec![VIP],
        },
    ]
}

pub fn open_sale() -> Vec<Event> {
    let mut events = catalog();
    events.push(Event::SaleStatusChanged {
        status: taquilla_domain::SaleStatus::Open,
    });
    events
}

pub fn with(mut base: Vec<Event>, more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    base.extend(more);
    base
}

/// Hold `id` by `who` placed at time 0 (expires at `TTL_MS`).
pub fn hold_placed(id: u64, who: &str, lines: &[(u32, u32)]) -> Event {
    Event::HoldPlaced {
        hold: HoldId(id),
        buyer: buyer(who),
        items: items(lines),
        expires_at: Timestamp(TTL_MS as i64),
        idempotency_key: None,
    }
}

pub fn order_placed(order: u64, hold: u64, total: i64) -> Event {
    Event::OrderPlaced {
        order: OrderId(order),
        hold: HoldId(hold),
        total: money(total),
        at: Timestamp(10),
        idempotency_key: None,
    }
}

/// Order paid with tickets coded `first_code..` of the given types, in order.
pub fn order_paid(order: u64, reference: &str, first_code: u128, types: &[TicketTypeId]) -> Event {
    Event::OrderPaid {
        order: OrderId(order),
        payment_ref: pay_ref(reference),
        tickets: types
            .iter()
            .enumerate()
            .map(|(i, tt)| taquilla_domain::IssuedTicket {
                code: TicketCode(first_code + i as u128),
                ticket_type: *tt,
            })
            .collect(),
        reinstated: false,
        at: Timestamp(20),
    }
}
