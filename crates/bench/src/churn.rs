//! `taquilla bench churn`: buyers place and release a hold over keep-alive HTTP connections,
//! over and over, and the server's resident memory (RSS, from `/proc`) is printed every so
//! many cycles. One buyer on one connection by default; `--buyers N` runs N such loops at
//! once (distinct buyers, one connection each), so their writes share the server's fsyncs
//! and a million cycles take minutes instead of an hour. After warm-up the curve must be flat: ended holds, their deadline
//! entries and (past their TTL) their idempotency keys must not pile up in the sale's memory.
//! Another buyer holds one ticket from the start, so the deadline index always has a live
//! entry in front of the released ones (as in any real sale).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use hyper::header::HeaderValue;
use serde::Deserialize;
use taquilla_domain::BuyerId;

use crate::flash_sale::client::{Conn, Target, connect, exchange, exchange_with};
use crate::flash_sale::setup::{Admin, SaleSpec, create_sale};
use crate::flash_sale::{random_hex, server};

/// How often a `429` or `503` is retried (after its `Retry-After`) before the run gives up.
const RETRIES_MAX: u32 = 100;
/// At most this many concurrent loops: each holds one ticket at a time of the sale's 1,000.
const BUYERS_MAX: u64 = 512;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Hold/release cycles.
    #[arg(long, default_value_t = 1_000_000)]
    pub cycles: u64,
    /// Print the server's RSS every this many cycles.
    #[arg(long, default_value_t = 100_000)]
    pub every: u64,
    /// Concurrent hold/release loops, each a buyer of its own on a connection of its own
    /// (the cycles are shared among them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=BUYERS_MAX))]
    pub buyers: u64,
    /// Send a fresh Idempotency-Key with each hold: shows what remembered keys cost until
    /// their TTL (`serve --idempotency-ttl-secs`).
    #[arg(long)]
    pub keys: bool,
    /// A running server (http://IP:PORT, with --server-pid, --admin-token, --buyer-secret);
    /// without it, the bench starts `taquilla serve` itself with a fresh data directory.
    #[arg(long)]
    pub url: Option<String>,
    /// The pid of the server at --url, whose RSS is read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, env = "TAQUILLA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[arg(long, env = "TAQUILLA_BUYER_SECRET", hide_env_values = true)]
    pub buyer_secret: Option<String>,
    /// Directory for the self-hosted server's temporary data directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One line of the curve.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cycles: u64,
    pub rss_bytes: u64,
    pub cycles_per_sec: f64,
}

/// Runs the churn and calls `on_sample` after each `every` cycles (and at 0).
pub fn run(args: &Args, on_sample: &mut dyn FnMut(Sample)) -> anyhow::Result<Vec<Sample>> {
    if args.every == 0 || args.cycles == 0 {
        bail!("--cycles and --every must be at least 1");
    }
    let (admin_token, buyer_secret, pid, url, mut server) = match &args.url {
        Some(url) => {
            let (Some(a), Some(b), Some(pid)) = (&args.admin_token, &args.buyer_secret, args.server_pid) else {
                bail!("--url needs --server-pid, --admin-token and --buyer-secret");
            };
            (a.clone(), b.clone(), pid, url.clone(), None)
        }
        None => {
            let (a, b) = (random_hex()?, random_hex()?);
            let s = server::Server::start(&server::Options {
                cores: None,
                admin_token: &a,
                buyer_secret: &b,
                dir: args.dir.as_deref(),
                payments: crate::flash_sale::scenario::PaymentMode::Test,
                simulated_latency_ms: None,
                simulated_decline_percent: None,
                saga_concurrency: None,
                buyer_rate_limit: false,
            })?;
            (a, b, s.pid(), s.url.clone(), Some(s))
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(churn(args, &url, &admin_token, &buyer_secret, pid, on_sample));
    if let Some(s) = server.as_mut() {
        let status = s.stop()?;
        if result.is_ok() && !status.success() {
            bail!("taquilla serve exited with {status}; its log:\n{}", s.log_tail());
        }
        if let Err(e) = &result {
            bail!("{e:#}\nserver log:\n{}", s.log_tail());
        }
    }
    result
}

async fn churn(
    args: &Args,
    url: &str,
    admin_token: &str,
    buyer_secret: &str,
    pid: u32,
    on_sample: &mut dyn FnMut(Sample),
) -> anyhow::Result<Vec<Sample>> {
    let target = Target::parse(url)?;
    let mut admin = Admin {
        conn: connect(&target, None).await?,
        target: target.clone(),
        auth: HeaderValue::from_str(&format!("Bearer {admin_token}"))?,
    };
    let spec = SaleSpec {
        tickets: 1_000,
        hold_ttl_secs: 900,
        max_per_buyer: 4,
    };
    let sale = create_sale(&mut admin, &spec).await?;
    let holds = format!("/v1/events/{}/holds", sale.event_id);
    let body = Bytes::from(format!(
        r#"{{"items":[{{"ticket_type_id":{},"quantity":1}}]}}"#,
        sale.general
    ));
    let expires_at_secs = unix_secs() + 86_400;
    let token = |who: &str| -> anyhow::Result<HeaderValue> {
        let buyer = BuyerId::parse(who).map_err(|e| anyhow::anyhow!("buyer id: {}", e.reason))?;
        let t = taquilla_api::mint_buyer_token(buyer_secret.as_bytes(), &buyer, expires_at_secs);
        Ok(HeaderValue::from_str(&format!("Bearer {t}"))?)
    };
    let mut conn = connect(&target, None).await?;
    let anchor = token("churn-anchor")?;
    send(
        &mut conn,
        &target,
        Method::POST,
        &holds,
        &anchor,
        Some(body.clone()),
        None,
        201,
    )
    .await?;
    let shared = Arc::new(Loop {
        target,
        holds,
        body,
        keys: args.keys,
        cycles: args.cycles,
        every: args.every,
        claimed: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    // Each loop that completes a multiple of `every` cycles says so; the RSS is read here.
    let (reached, mut milestones) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut loops = tokio::task::JoinSet::new();
    for b in 0..args.buyers {
        let buyer = token(&format!("churn-{b}"))?;
        let conn = connect(&shared.target, None).await?;
        loops.spawn(cycle_loop(shared.clone(), conn, buyer, reached.clone()));
    }
    drop(reached);
    let mut samples = Vec::new();
    let mut since = Instant::now();
    let mut sample = |cycles: u64, since: Instant, samples: &mut Vec<Sample>| -> anyhow::Result<()> {
        let s = Sample {
            cycles,
            rss_bytes: rss_bytes(pid)?,
            cycles_per_sec: if cycles == 0 {
                0.0
            } else {
                args.every.min(cycles) as f64 / since.elapsed().as_secs_f64()
            },
        };
        on_sample(s);
        samples.push(s);
        Ok(())
    };
    sample(0, since, &mut samples)?;
    // The channel closes when every loop has ended, done or failed.
    while let Some(cycles) = milestones.recv().await {
        sample(cycles, since, &mut samples)?;
        since = Instant::now();
    }
    while let Some(ended) = loops.join_next().await {
        ended.context("a churn loop panicked")??;
    }
    let done = shared.done.load(Ordering::Relaxed);
    anyhow::ensure!(done == args.cycles, "{done} of {} cycles done", args.cycles);
    Ok(samples)
}

/// What the concurrent loops share.
struct Loop {
    target: Target,
    holds: String,
    body: Bytes,
    keys: bool,
    cycles: u64,
    every: u64,
    /// Cycles started (a loop claims the next before it starts one).
    claimed: AtomicU64,
    /// Cycles completed.
    done: AtomicU64,
}

/// One buyer's loop: claim a cycle, hold, release, until all cycles are claimed.
async fn cycle_loop(
    shared: Arc<Loop>,
    mut conn: Conn,
    buyer: HeaderValue,
    reached: tokio::sync::mpsc::UnboundedSender<u64>,
) -> anyhow::Result<()> {
    let s = &*shared;
    loop {
        let i = s.claimed.fetch_add(1, Ordering::Relaxed) + 1;
        if i > s.cycles {
            return Ok(());
        }
        let key = s.keys.then(|| format!("churn-{i}"));
        let placed = send(
            &mut conn,
            &s.target,
            Method::POST,
            &s.holds,
            &buyer,
            Some(s.body.clone()),
            key.as_deref(),
            201,
        )
        .await?;
        let id = serde_json::from_slice::<Created>(&placed).context("a hold's id")?.id;
        let release = format!("/v1/holds/{id}");
        send(&mut conn, &s.target, Method::DELETE, &release, &buyer, None, None, 200).await?;
        let done = s.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done.is_multiple_of(s.every) {
            let _ = reached.send(done);
        }
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// One request that must answer `expect`; `429` and `503` are retried after `Retry-After`.
#[allow(clippy::too_many_arguments)]
async fn send(
    conn: &mut Conn,
    target: &Target,
    method: Method,
    path: &str,
    auth: &HeaderValue,
    body: Option<Bytes>,
    key: Option<&str>,
    expect: u16,
) -> anyhow::Result<Bytes> {
    for _ in 0..RETRIES_MAX {
        let reply = match key {
            Some(k) => {
                let headers = [("idempotency-key", k)];
                exchange_with(conn, target, method.clone(), path, Some(auth), body.clone(), &headers).await?
            }
            None => exchange(conn, target, method.clone(), path, Some(auth), body.clone()).await?,
        };
        match reply.status {
            s if s == expect => return Ok(reply.body),
            429 | 503 => tokio::time::sleep(Duration::from_millis(reply.retry_after_ms.unwrap_or(100))).await,
            s => bail!(
                "{method} {path}: expected {expect}, got {s}: {}",
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }
    bail!("{method} {path}: still refused after {RETRIES_MAX} tries")
}

fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The resident set size of process `pid` (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's /proc status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kb * 1024)
}
