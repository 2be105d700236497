//! `taquilla bench snapshot-stall`: how long holds wait while a big sale is snapshotted.
//!
//! The engine alone, in process, on the real file log (every reply waits for its fsync). A
//! sale is filled with `holds` active holds (batched, as fast as the engine takes them); then
//! single holds on the same sale arrive open loop at `rate` per second for `seconds`, each
//! timed from when it was due to be sent (so a stall also counts for the holds queued behind
//! it) to its durable reply. The sale's snapshot interval is set so that its snapshot falls
//! due one second into that phase: whatever the snapshot costs the writer shows in the tail.
//! It uses only what every engine version offers, so the same bench runs on old and new code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use taquilla_domain::{
    BuyerId, Command, CreateSale, Currency, Item, Items, MoneyMinor, Name, Quantity, SaleId, SaleStatus, TicketTypeId,
};
use taquilla_engine::{Engine, EngineConfig, Envelope, SystemClock};

#[derive(Debug, Clone)]
pub struct Args {
    /// Active holds in the sale before the timed phase.
    pub holds: u64,
    /// Holds per second in the timed phase (open loop).
    pub rate: u64,
    pub seconds: u64,
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub holds_in_sale: u64,
    pub rate: u64,
    pub timed_holds: u64,
    pub fill_ms: f64,
    /// When the snapshot file appeared, in ms since the timed phase started (None: never).
    pub snapshot_written_at_ms: Option<f64>,
    pub snapshot_bytes: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Holds refused because the shard's queue was full (`Overloaded`, a 503 over HTTP), and
    /// when the first was, in ms since the timed phase started; not in the latencies.
    pub refused: u64,
    pub first_refused_at_ms: Option<f64>,
    /// Spells of slow holds (over `SLOW_MS`), in ms since the timed phase started: when the
    /// writer stalled, to set beside the snapshot's phases.
    pub stalls: Vec<Stall>,
}

/// A slow hold: when it was due, and how long it took in µs.
type Slow = (Instant, u64);

/// A hold slower than this is part of a stall.
const SLOW_MS: f64 = 10.0;
/// Slow holds due less than this apart are one stall.
const STALL_GAP_MS: f64 = 100.0;
/// Stalls reported, at most (the first ones).
const STALLS_MAX: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Stall {
    /// When the first and last slow hold of the spell were due.
    pub from_ms: f64,
    pub to_ms: f64,
    pub holds: u64,
    pub worst_ms: f64,
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    if args.rate == 0 || args.seconds < 2 {
        bail!("--rate must be at least 1 and --seconds at least 2");
    }
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let dir = base.path();
    let timed = args.rate * args.seconds;
    // Records before the timed phase: the sale's 4 setup records and the fill. The snapshot
    // is due one second of holds later.
    let every = 4 + args.holds + args.rate;
    let config = EngineConfig {
        batch_max: 16_384,
        snapshot_every_records: every,
        snapshot_on_shutdown: false,
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::open(dir, config, Arc::new(SystemClock))?);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let capacity = u32::try_from(args.holds + timed + 1).context("too many holds for one quota")?;
    let sale = rt.block_on(setup_sale(&engine, capacity))?;

    let started = Instant::now();
    fill(&rt, &engine, sale, args.holds)?;
    let fill_ms = ms(started.elapsed());

    type Reply = std::pin::Pin<Box<dyn Future<Output = taquilla_engine::CommandResult> + Send>>;
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Reply)>();
    let collector = std::thread::spawn(move || -> anyhow::Result<(Histogram<u64>, Vec<Slow>)> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut slow = Vec::new();
        for (due, reply) in rx {
            rt.block_on(reply).context("a timed hold failed")?;
            let us = due_to_now_us(due);
            hist.record(us.max(1))?;
            if us as f64 > SLOW_MS * 1000.0 {
                slow.push((due, us));
            }
        }
        Ok((hist, slow))
    });
    let snapshot_path = dir.join("snapshots").join(format!("p-{}.snap", sale.0));
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let phase = Instant::now();
    let mut snapshot_at = None;
    let (mut refused, mut first_refused_at_ms) = (0u64, None);
    for i in 0..timed {
        let due = phase + interval.mul_f64(i as f64);
        wait_until(due);
        let env = hold(sale, args.holds + i)?;
        match engine.submit(env) {
            Ok(reply) => tx
                .send((due, Box::pin(reply)))
                .map_err(|_| anyhow::anyhow!("the collector stopped"))?,
            // The queue is full: the writer is that far behind. A client would hear 503.
            Err(taquilla_engine::EngineError::Overloaded) => {
                refused += 1;
                first_refused_at_ms.get_or_insert_with(|| ms(phase.elapsed()));
            }
            Err(e) => return Err(e.into()),
        }
        if snapshot_at.is_none() && i % 64 == 0 && snapshot_path.exists() {
            snapshot_at = Some(ms(phase.elapsed()));
        }
    }
    drop(tx);
    let (hist, slow) = collector
        .join()
        .map_err(|_| anyhow::anyhow!("the collector panicked"))??;
    let stalls = stalls(phase, &slow);
    let snapshot_bytes = std::fs::metadata(&snapshot_path).map(|m| m.len()).unwrap_or(0);
    drop(engine);
    let q = |f: f64| hist.value_at_quantile(f) as f64 / 1000.0;
    Ok(Report {
        holds_in_sale: args.holds,
        rate: args.rate,
        timed_holds: timed,
        fill_ms,
        snapshot_written_at_ms: snapshot_at,
        snapshot_bytes,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: hist.max() as f64 / 1000.0,
        refused,
        first_refused_at_ms,
        stalls,
    })
}

/// Groups slow holds (when due, latency in µs; in due order) into spells.
fn stalls(phase: Instant, slow: &[Slow]) -> Vec<Stall> {
    let mut out: Vec<Stall> = Vec::new();
    for &(due, us) in slow {
        let at_ms = ms(due.saturating_duration_since(phase));
        let took_ms = us as f64 / 1000.0;
        let full = out.len() == STALLS_MAX;
        match out.last_mut() {
            Some(last) if at_ms - last.to_ms < STALL_GAP_MS => {
                last.to_ms = at_ms;
                last.holds += 1;
                last.worst_ms = last.worst_ms.max(took_ms);
            }
            _ if full => break,
            _ => out.push(Stall {
                from_ms: at_ms,
                to_ms: at_ms,
                holds: 1,
                worst_ms: took_ms,
            }),
        }
    }
    out
}

fn due_to_now_us(due: Instant) -> u64 {
    Instant::now().saturating_duration_since(due).as_micros() as u64
}

/// Sleeps until `due`, never spins: on a 2-core machine a spinning sender takes a core from
/// the writer it measures. A late wake-up (the timer's slack, ~50–100 µs) is charged to the
/// holds sent after it, since each is timed from when it was due.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if now < due {
        std::thread::sleep(due - now);
    }
}

fn hold(sale: SaleId, n: u64) -> anyhow::Result<Envelope> {
    let mut items = Items::new();
    items.push(Item {
        ticket_type: TicketTypeId(0),
        quantity: Quantity::new(1)?,
    });
    Ok(Envelope {
        sale,
        command: Command::PlaceHold {
            buyer: BuyerId::parse(&format!("b{n}"))?,
            items,
            idempotency_key: None,
        },
        correlation_id: None,
    })
}

fn fill(rt: &tokio::runtime::Runtime, engine: &Engine, sale: SaleId, holds: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 4096;
    rt.block_on(async {
        let mut pending = std::collections::VecDeque::new();
        let mut n = 0;
        while n < holds {
            let batch = (n..(n + BATCH).min(holds))
                .map(|i| hold(sale, i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            n += batch.len() as u64;
            pending.push_back(engine.submit_batch(batch)?);
            if pending.len() >= 4
                && let Some(f) = pending.pop_front()
            {
                check_all(f.await?)?;
            }
        }
        for f in pending {
            check_all(f.await?)?;
        }
        Ok(())
    })
}

fn check_all(results: Vec<taquilla_engine::CommandResult>) -> anyhow::Result<()> {
    for r in results {
        r.context("a fill hold failed")?;
    }
    Ok(())
}

async fn setup_sale(engine: &Engine, capacity: u32) -> anyhow::Result<SaleId> {
    let sale = CreateSale {
        name: Name::parse("snapshot stall")?,
        currency: Currency::parse("EUR")?,
        hold_ttl_ms: taquilla_domain::limits::HOLD_TTL_MS_MAX,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    let setup = vec![
        Command::AddTicketType {
            name: Name::parse("general")?,
            price: MoneyMinor::new(2500)?,
            max_per_order: None,
        },
        Command::AddQuota {
            name: Name::parse("hall")?,
            capacity,
            ticket_types: vec![TicketTypeId(0)],
        },
        Command::SetStatus(SaleStatus::Open),
    ];
    Ok(engine.create_sale_with(sale, setup, None).await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
