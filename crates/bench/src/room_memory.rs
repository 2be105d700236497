//! `taquilla bench room-memory`: the server memory one sale's waiting room takes per queued
//! buyer. Joins `buyers` buyers (ids like `buyer-0000042`) to a room through `decide` and
//! `evolve`, as the sale's writer does, and prints the process's RSS growth per buyer, the
//! join rate, and the time of one status read at the back of the queue.

use std::time::Instant;

use serde::Serialize;
use taquilla_domain::room::{self, RoomConfig};
use taquilla_domain::{
    BuyerId, Command, CreateSale, Ctx, Currency, Entropy, Name, SaleState, TicketCode, Timestamp, decide, evolve,
};

use crate::churn::rss_bytes;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub buyers: u64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub server_bytes_per_queued_buyer: f64,
    pub joins_per_sec: f64,
    /// One status read (position, ahead, odds) of the last buyer.
    pub status_read_us: f64,
}

struct Counter(u128);

impl Entropy for Counter {
    fn ticket_code(&mut self) -> TicketCode {
        self.0 += 1;
        TicketCode(self.0)
    }
}

fn run_command(state: &mut SaleState, command: Command, now: Timestamp) -> anyhow::Result<()> {
    let mut entropy = Counter(0);
    let mut ctx = Ctx {
        now,
        entropy: &mut entropy,
        correlation_id: None,
    };
    let decision = decide(state, command, &mut ctx).map_err(|r| anyhow::anyhow!("{r}"))?;
    for e in &decision.events {
        evolve(state, e);
    }
    Ok(())
}

pub fn run(buyers: u64) -> anyhow::Result<Report> {
    let t0 = Timestamp(1_800_000_000_000);
    let mut state = SaleState::default();
    let create = CreateSale {
        name: Name::parse("room memory")?,
        currency: Currency::parse("EUR")?,
        hold_ttl_ms: 600_000,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    run_command(&mut state, Command::CreateSale(create), t0)?;
    let config = RoomConfig {
        prequeue_opens_at: t0,
        opens_at: t0,
        admit_per_sec: 1_000,
        session_ms: 600_000,
        queue_max: u32::try_from(buyers)?.max(1),
    };
    run_command(&mut state, Command::ConfigureRoom(config), t0)?;
    let pid = std::process::id();
    let rss_before_bytes = rss_bytes(pid)?;
    let started = Instant::now();
    let mut last = None;
    for i in 0..buyers {
        let buyer = BuyerId::parse(&format!("buyer-{i:07}"))?;
        last = Some(buyer.clone());
        run_command(&mut state, Command::JoinRoom { buyer }, t0)?;
    }
    let joins_per_sec = buyers as f64 / started.elapsed().as_secs_f64();
    let rss_after_bytes = rss_bytes(pid)?;
    let read = Instant::now();
    let status = last.and_then(|b| room::status(&state, &b, t0));
    let status_read_us = read.elapsed().as_secs_f64() * 1e6;
    std::hint::black_box(status);
    Ok(Report {
        buyers,
        rss_before_bytes,
        rss_after_bytes,
        server_bytes_per_queued_buyer: rss_after_bytes.saturating_sub(rss_before_bytes) as f64 / buyers.max(1) as f64,
        joins_per_sec,
        status_read_us,
    })
}
