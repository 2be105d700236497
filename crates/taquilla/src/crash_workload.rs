//! `taquilla crash-workload`: the child process of the crash tests.
//!
//! It opens a data directory, makes sure a sale exists (two ticket types over overlapping quotas, a per-buyer
//! limit, holds that expire after a second), prints `READY <sale>`, then runs concurrent
//! workers that place, check out, pay, release, refund and check in at random. Every command
//! the engine acknowledged is printed as one line, flushed, *after* the acknowledgement — so
//! the parent, which SIGKILLs this process at a random moment, knows exactly what was
//! acknowledged and can check that it all survived.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use taquilla_domain::{
    Actor, BuyerId, Command, CreateSale, Currency, HoldId, Item, Items, MoneyMinor, Name, OrderId, OrderState, Outcome,
    PaymentRef, Quantity, SaleId, SaleStatus, TicketTypeId,
};
use taquilla_engine::{Engine, EngineConfig, Envelope, PacedClock};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Stops by itself after this long, in case nobody kills it.
    #[arg(long, default_value_t = 60)]
    max_secs: u64,
    /// Snapshot a sale after this many records (small, so crashes also hit snapshots).
    #[arg(long, default_value_t = 50)]
    snapshot_every: u64,
    /// Write snapshots in parts this small (each synced, then a pause), so a kill often lands
    /// in the middle of one.
    #[arg(long, default_value_t = 256)]
    snapshot_write_chunk_bytes: usize,
}

/// Enough buyers that the per-buyer limit binds sometimes but does not choke the workload.
const BUYERS: u32 = 2_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = EngineConfig {
        snapshot_every_records: args.snapshot_every,
        snapshot_write_chunk_bytes: args.snapshot_write_chunk_bytes,
        batch_max: 64,
        ..EngineConfig::default()
    };
    let engine =
        Arc::new(Engine::open(&args.data_dir, config, Arc::new(PacedClock::system())).context("opening the engine")?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    rt.block_on(async move {
        let sale = match engine.sales().first() {
            Some(s) => *s,
            None => create_sale(&engine).await?,
        };
        say(&format!("READY {}", sale.0));
        let deadline = Instant::now() + Duration::from_secs(args.max_secs);
        let mut tasks = Vec::new();
        for w in 0..args.workers {
            let engine = engine.clone();
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
            tasks.push(tokio::spawn(worker(engine, sale, seed, deadline)));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<(), anyhow::Error>(())
    })
}

async fn create_sale(engine: &Engine) -> anyhow::Result<SaleId> {
    let sale = CreateSale {
        name: Name::parse("crash workload")?,
        currency: Currency::parse("EUR")?,
        hold_ttl_ms: taquilla_domain::limits::HOLD_TTL_MS_MIN,
        max_tickets_per_buyer: Some(6),
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    let setup = vec![
        Command::AddTicketType {
            name: Name::parse("standing")?,
            price: MoneyMinor::new(3000)?,
            max_per_order: Some(4),
        },
        Command::AddTicketType {
            name: Name::parse("seated")?,
            price: MoneyMinor::new(5000)?,
            max_per_order: Some(4),
        },
        Command::AddQuota {
            name: Name::parse("hall")?,
            capacity: 50_000,
            ticket_types: vec![TicketTypeId(0), TicketTypeId(1)],
        },
        Command::AddQuota {
            name: Name::parse("seats")?,
            capacity: 15_000,
            ticket_types: vec![TicketTypeId(1)],
        },
        Command::SetStatus(SaleStatus::Open),
    ];
    Ok(engine.create_sale_with(sale, setup, None).await?)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // If the parent stopped reading there is nobody to tell; the process will be killed.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn worker(engine: Arc<Engine>, sale: SaleId, seed: u64, deadline: Instant) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut holds: Vec<(HoldId, BuyerId)> = Vec::new();
    let mut orders: Vec<(OrderId, BuyerId)> = Vec::new();
    while Instant::now() < deadline {
        let buyer = BuyerId::parse(&format!("buyer-{}", rng.random_range(0..BUYERS)))?;
        let roll = rng.random_range(0..100);
        let (command, describe): (Command, Box<dyn Fn(Outcome) -> Option<String> + Send>) =
            if roll < 45 || holds.is_empty() {
                let mut items = Items::new();
                let first = rng.random_range(0..2u32);
                items.push(Item {
                    ticket_type: TicketTypeId(first),
                    quantity: Quantity::new(rng.random_range(1..=3))?,
                });
                if rng.random_bool(0.3) {
                    items.push(Item {
                        ticket_type: TicketTypeId(1 - first),
                        quantity: Quantity::new(1)?,
                    });
                }
                let qty: u32 = items.iter().map(|i| i.quantity.get()).sum();
                let b = buyer.clone();
                (
                    Command::PlaceHold {
                        buyer,
                        items,
                        idempotency_key: None,
                    },
                    Box::new(move |o| match o {
                        Outcome::Hold(h) => Some(format!("HOLD {} {} {} {qty}", sale.0, h.0, b.as_str())),
                        _ => None,
                    }),
                )
            } else if roll < 70 {
                let (hold, buyer) = holds.swap_remove(rng.random_range(0..holds.len()));
                (
                    Command::Checkout {
                        buyer,
                        hold,
                        idempotency_key: None,
                    },
                    Box::new(move |o| match o {
                        Outcome::Order(ord) => Some(format!("ORDER {} {} {}", sale.0, ord.0, hold.0)),
                        _ => None,
                    }),
                )
            } else if roll < 78 {
                let (hold, buyer) = holds.swap_remove(rng.random_range(0..holds.len()));
                (
                    Command::ReleaseHold { buyer, hold },
                    Box::new(move |_| Some(format!("RELEASED {} {}", sale.0, hold.0))),
                )
            } else if roll < 92 && !orders.is_empty() {
                let (order, _) = orders[rng.random_range(0..orders.len())].clone();
                let payment_ref = PaymentRef::parse(&format!("pay-{}", order.0))?;
                (
                    Command::ConfirmPayment { order, payment_ref },
                    Box::new(move |_| Some(format!("PAID {} {}", sale.0, order.0))),
                )
            } else if roll < 96 && !orders.is_empty() {
                let (order, _) = orders.swap_remove(rng.random_range(0..orders.len()));
                (
                    Command::Refund { order, tickets: None },
                    Box::new(move |_| Some(format!("REFUNDED {} {}", sale.0, order.0))),
                )
            } else if !orders.is_empty() {
                let (order, buyer) = orders.swap_remove(rng.random_range(0..orders.len()));
                (
                    Command::CancelOrder {
                        actor: Actor::Buyer(buyer),
                        order,
                    },
                    Box::new(move |_| Some(format!("CANCELLED {} {}", sale.0, order.0))),
                )
            } else {
                continue;
            };
        let fut = match engine.submit(Envelope {
            sale,
            command: command.clone(),
            correlation_id: None,
        }) {
            Ok(f) => f,
            Err(taquilla_engine::EngineError::Overloaded) => {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match fut.await {
            Ok(outcome) => {
                if let Some(line) = describe(outcome) {
                    say(&line);
                }
                match (command, outcome) {
                    (Command::PlaceHold { buyer, .. }, Outcome::Hold(h)) => holds.push((h, buyer)),
                    (Command::Checkout { buyer, .. }, Outcome::Order(o)) => orders.push((o, buyer)),
                    _ => {}
                }
            }
            Err(taquilla_engine::EngineError::Rejected(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Forget orders that can no longer change, so the workers keep exercising live ones.
        orders.retain(|(o, _)| {
            engine
                .read(sale, |s| s.orders.get(o).map(|o| o.state))
                .flatten()
                .is_some_and(|st| matches!(st, OrderState::AwaitingPayment | OrderState::Paid | OrderState::Expired))
        });
    }
    Ok(())
}
