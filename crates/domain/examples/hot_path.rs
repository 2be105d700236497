//! Prints how fast the domain's hot path runs on one core: `decide` + `evolve` for
//! `PlaceHold`, replay (`evolve` alone) and the codec. A figure, not a test:
//! `cargo run --release -p taquilla-domain --example hot_path`.

use std::time::Instant;

use taquilla_domain::codec::{decode_events_into, encode_events};
use taquilla_domain::{
    BuyerId, Command, CreateSale, Ctx, Currency, Entropy, Event, Item, MoneyMinor, Name, Quantity, SaleState,
    SaleStatus, TicketCode, TicketTypeId, Timestamp, decide, evolve,
};

struct Counter(u128);

impl Entropy for Counter {
    fn ticket_code(&mut self) -> TicketCode {
        self.0 += 1;
        TicketCode(self.0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const HOLDS: usize = 1_000_000;
    let mut entropy = Counter(0);
    let mut state = SaleState::default();
    let mut log: Vec<Event> = Vec::with_capacity(HOLDS + 8);
    let setup = [
        Command::CreateSale(CreateSale {
            name: Name::parse("Bench")?,
            currency: Currency::parse("EUR")?,
            hold_ttl_ms: 900_000,
            max_tickets_per_buyer: Some(4),
            opens_at: None,
            closes_at: None,
            offline_payment_ttl_ms: None,
        }),
        Command::AddTicketType {
            name: Name::parse("General")?,
            price: MoneyMinor::new(1_000)?,
            max_per_order: None,
        },
        Command::AddQuota {
            name: Name::parse("Hall")?,
            capacity: 100_000_000,
            ticket_types: vec![TicketTypeId(0)],
        },
        Command::SetStatus(SaleStatus::Open),
    ];
    for command in setup {
        let mut ctx = Ctx {
            now: Timestamp(0),
            entropy: &mut entropy,
            correlation_id: None,
        };
        let d = decide(&state, command, &mut ctx)?;
        for e in &d.events {
            evolve(&mut state, e);
        }
        log.extend(d.events);
    }
    let buyers: Vec<BuyerId> = (0..HOLDS)
        .map(|i| BuyerId::parse(&format!("buyer-{i}")))
        .collect::<Result<_, _>>()?;
    let item = Item {
        ticket_type: TicketTypeId(0),
        quantity: Quantity::new(2)?,
    };

    let start = Instant::now();
    for (i, buyer) in buyers.into_iter().enumerate() {
        let command = Command::PlaceHold {
            buyer,
            items: [item].into_iter().collect(),
            idempotency_key: None,
        };
        let mut ctx = Ctx {
            now: Timestamp(i as i64),
            entropy: &mut entropy,
            correlation_id: None,
        };
        let d = decide(&state, command, &mut ctx)?;
        for e in &d.events {
            evolve(&mut state, e);
        }
        log.extend(d.events);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decide+evolve PlaceHold: {:.0} holds/s ({HOLDS} holds)",
        HOLDS as f64 / secs
    );

    let start = Instant::now();
    let mut replayed = SaleState::default();
    for e in &log {
        evolve(&mut replayed, e);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("replay (evolve): {:.0} events/s", log.len() as f64 / secs);
    assert!(replayed == state, "replay must rebuild the same state");

    let start = Instant::now();
    let mut bytes = Vec::with_capacity(log.len() * 24);
    for batch in log.chunks(256) {
        encode_events(batch, &mut bytes);
    }
    let encode_secs = start.elapsed().as_secs_f64();
    println!(
        "encode: {:.0} events/s, {:.1} bytes/event",
        log.len() as f64 / encode_secs,
        bytes.len() as f64 / log.len() as f64
    );

    // Decode batch by batch into one reused buffer, as replay does.
    let mut sizes = Vec::new();
    for batch in log.chunks(256) {
        let mut one = Vec::new();
        encode_events(batch, &mut one);
        sizes.push(one);
    }
    let start = Instant::now();
    let mut out = Vec::with_capacity(256);
    let mut decoded = 0;
    for payload in &sizes {
        out.clear();
        decode_events_into(payload, &mut out)?;
        decoded += out.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("decode: {:.0} events/s", decoded as f64 / secs);
    Ok(())
}
