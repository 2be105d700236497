//! `taquilla bench engine`: the engine alone, in process, no HTTP, on the real file log with
//! group commit (every reply waits for its fsync).
//!
//! A client thread pre-builds `PlaceHold` commands for distinct buyers, then submits them in
//! batches of `submit_batch` (as an API front end that batches would), keeping `in_flight`
//! batches queued so the shard never idles. Then the engine is reopened twice: without
//! snapshots (replay rate of the whole log) and with them (restart time).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use taquilla_domain::{
    BuyerId, Command, CreateSale, Currency, Item, Items, MoneyMinor, Name, Quantity, SaleId, SaleStatus, TicketTypeId,
};
use taquilla_engine::{Engine, EngineConfig, Envelope, SystemClock};

#[derive(Debug, Clone)]
pub struct Args {
    /// Holds per scenario.
    pub holds: u64,
    /// One scenario per entry: the number of sales the holds are spread over.
    pub sale_counts: Vec<usize>,
    pub submit_batch: usize,
    pub in_flight: usize,
    pub shards: usize,
    /// Distinct buyers the holds cycle through (every hold is a new buyer up to this many).
    pub buyers: u64,
    /// Where the data directories go (a fresh temporary directory inside it per scenario).
    pub dir: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            holds: 2_000_000,
            sale_counts: vec![1, 64],
            submit_batch: 4096,
            in_flight: 4,
            shards: 1,
            buyers: 1_000_000,
            dir: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub sales: usize,
    pub holds: u64,
    pub accepted: u64,
    pub elapsed_ms: f64,
    pub holds_per_sec: f64,
    pub batches: u64,
    pub flushes: u64,
    pub commands_per_flush: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Of the first scenario.
    pub holds_per_sec: f64,
    pub durable: bool,
    /// Of the first scenario.
    pub sales: usize,
    /// Events folded per second of the replay phase (read the log, decode, evolve).
    pub replay_events_per_sec: f64,
    pub replay_events: u64,
    pub replay_ms: f64,
    /// Whole restart without snapshots: open the log (verify every frame), replay, check
    /// every invariant.
    pub restart_without_snapshots_ms: f64,
    pub invariant_check_ms: f64,
    /// Restart of the same data directory after a clean shutdown that wrote snapshots.
    pub restart_with_snapshots_ms: f64,
    pub log_bytes: u64,
    pub scenarios: Vec<Scenario>,
    pub shards: usize,
    pub submit_batch: usize,
    pub buyers: u64,
}

pub fn run(args: &Args, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Report> {
    if args.sale_counts.is_empty() || args.sale_counts.contains(&0) {
        bail!("--sales: each scenario needs at least 1 sale");
    }
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut scenarios = Vec::new();
    let mut replay = None;
    for (i, &sale_count) in args.sale_counts.iter().enumerate() {
        let dir = base.path().join(format!("scenario-{i}"));
        let s = run_scenario(args, sale_count, &dir)?;
        progress(&format!(
            "{} sale(s): {:.0} holds/s ({} accepted in {:.0} ms, {:.0} commands per fsync)",
            s.sales, s.holds_per_sec, s.accepted, s.elapsed_ms, s.commands_per_flush
        ));
        if i == 0 {
            replay = Some(measure_restarts(args, &dir)?);
        }
        scenarios.push(s);
    }
    let r = replay.context("no scenario ran")?;
    let (replay_events, replay_ms, restart_ms, log_bytes) =
        (r.events, r.replay_ms, r.restart_with_snapshots_ms, r.log_bytes);
    let replay_events_per_sec = replay_events as f64 / (replay_ms / 1000.0);
    progress(&format!(
        "replay: {replay_events} events in {replay_ms:.0} ms = {replay_events_per_sec:.0} events/s; restart without snapshots {:.0} ms (invariant check {:.0} ms); with snapshots {restart_ms:.0} ms",
        r.restart_without_snapshots_ms, r.check_ms
    ));
    Ok(Report {
        holds_per_sec: scenarios[0].holds_per_sec,
        durable: true,
        sales: scenarios[0].sales,
        replay_events_per_sec,
        replay_events,
        replay_ms,
        restart_without_snapshots_ms: r.restart_without_snapshots_ms,
        invariant_check_ms: r.check_ms,
        restart_with_snapshots_ms: restart_ms,
        log_bytes,
        scenarios,
        shards: args.shards,
        submit_batch: args.submit_batch,
        buyers: args.buyers,
    })
}

fn config(args: &Args, snapshot_on_shutdown: bool) -> EngineConfig {
    EngineConfig {
        shards: args.shards,
        batch_max: args.submit_batch.max(1) * 2,
        snapshot_on_shutdown,
        // The bench measures replay of the whole log, so no snapshots while it runs.
        snapshot_every_records: u64::MAX,
        ..EngineConfig::default()
    }
}

fn run_scenario(args: &Args, sale_count: usize, dir: &Path) -> anyhow::Result<Scenario> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let engine = Engine::open(dir, config(args, false), Arc::new(SystemClock))?;
    let per_sale = args.holds.div_ceil(sale_count as u64);
    let capacity = u32::try_from(per_sale)
        .ok()
        .filter(|c| *c <= taquilla_domain::limits::CAPACITY_MAX);
    let capacity = capacity.context("too many holds per sale for one quota")?;
    let sales = rt.block_on(setup_sales(&engine, sale_count, capacity))?;

    // Build every command before the clock starts: the bench measures the engine.
    let mut batches: Vec<Vec<Envelope>> = Vec::new();
    let mut current = Vec::with_capacity(args.submit_batch);
    for i in 0..args.holds {
        let sale = sales[(i % sale_count as u64) as usize];
        let buyer = BuyerId::parse(&format!("b{}", i % args.buyers.max(1)))?;
        let mut items = Items::new();
        items.push(Item {
            ticket_type: TicketTypeId(0),
            quantity: Quantity::new(1)?,
        });
        current.push(Envelope {
            sale,
            command: Command::PlaceHold {
                buyer,
                items,
                idempotency_key: None,
            },
            correlation_id: None,
        });
        if current.len() == args.submit_batch {
            batches.push(std::mem::replace(&mut current, Vec::with_capacity(args.submit_batch)));
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }

    let before = snapshot_counters(&engine);
    let started = Instant::now();
    let accepted = rt.block_on(async {
        let mut pending = VecDeque::new();
        let mut accepted = 0u64;
        for batch in batches {
            // At most `in_flight` batches are queued, far below the queue's bound, so
            // `Overloaded` here would be a bug, not backpressure.
            pending.push_back(engine.submit_batch(batch)?);
            if pending.len() >= args.in_flight
                && let Some(f) = pending.pop_front()
            {
                accepted += count_ok(f.await?);
            }
        }
        for f in pending {
            accepted += count_ok(f.await?);
        }
        Ok::<u64, anyhow::Error>(accepted)
    })?;
    let elapsed = started.elapsed();
    let after = snapshot_counters(&engine);
    engine.shutdown();
    if accepted != args.holds {
        bail!("only {accepted} of {} holds were accepted", args.holds);
    }
    let flushes = after.1 - before.1;
    Ok(Scenario {
        sales: sale_count,
        holds: args.holds,
        accepted,
        elapsed_ms: ms(elapsed),
        holds_per_sec: accepted as f64 / elapsed.as_secs_f64(),
        batches: after.0 - before.0,
        flushes,
        commands_per_flush: accepted as f64 / flushes.max(1) as f64,
    })
}

fn count_ok(results: Vec<taquilla_engine::CommandResult>) -> u64 {
    results.iter().filter(|r| r.is_ok()).count() as u64
}

fn snapshot_counters(engine: &Engine) -> (u64, u64) {
    let s = engine.stats();
    (s.batches.load(Ordering::Relaxed), s.flushes.load(Ordering::Relaxed))
}

async fn setup_sales(engine: &Engine, sale_count: usize, capacity: u32) -> anyhow::Result<Vec<SaleId>> {
    let mut sales = Vec::with_capacity(sale_count);
    for i in 0..sale_count {
        let sale = CreateSale {
            name: Name::parse(&format!("bench sale {i}"))?,
            currency: Currency::parse("EUR")?,
            hold_ttl_ms: taquilla_domain::limits::HOLD_TTL_MS_MAX,
            // A limit the bench never reaches, so that every hold still pays for the
            // per-buyer check.
            max_tickets_per_buyer: Some(1_000_000),
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
        sales.push(engine.create_sale_with(sale, setup, None).await?);
    }
    Ok(sales)
}

struct Restarts {
    events: u64,
    replay_ms: f64,
    check_ms: f64,
    restart_without_snapshots_ms: f64,
    restart_with_snapshots_ms: f64,
    log_bytes: u64,
}

/// Reopens the scenario's data directory: once replaying the whole log (no snapshots were
/// written), then after a clean shutdown that wrote snapshots.
fn measure_restarts(args: &Args, dir: &Path) -> anyhow::Result<Restarts> {
    let started = Instant::now();
    let engine = Engine::open(dir, config(args, true), Arc::new(SystemClock))?;
    let restart_without_snapshots_ms = ms(started.elapsed());
    let stats = engine.recovery().clone();
    if stats.snapshots_loaded != 0 {
        bail!("expected a replay without snapshots");
    }
    engine.shutdown();
    let started = Instant::now();
    let engine = Engine::open(dir, config(args, true), Arc::new(SystemClock))?;
    let restart_with_snapshots_ms = ms(started.elapsed());
    engine.shutdown();
    Ok(Restarts {
        events: stats.events_replayed,
        replay_ms: ms(stats.replay_duration).max(0.001),
        check_ms: ms(stats.check_duration),
        restart_without_snapshots_ms,
        restart_with_snapshots_ms,
        log_bytes: dir_size(&dir.join("log"))?,
    })
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
