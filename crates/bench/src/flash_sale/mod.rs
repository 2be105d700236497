//! `taquilla bench flash-sale`: the reproducible flash-sale benchmark and its audit.
//!
//! One run: start the server (or use `--url`), open the connections, measure the ceiling
//! (`GET /healthz` with the same client and connections), create and open a sale through the
//! admin API, let the buyers loose (closed loop, or open loop at `--rate`), measure the
//! ceiling again (the ceiling is the mean of the two), then audit the outcome through the
//! admin API and the event feed, and report. The figures are the scenario's requests per
//! second (in the closed loop, of the rush: the crowd's pass, see [`report`]), their ratio to
//! the ceiling, and the latency per operation; the audit is what makes them mean something.
//!
//! - [`client`]: connections, pool, pacer, recorder.
//! - [`scenario`]: the sale and the buyers.
//! - [`audit`]: the checks after the run.
//! - [`server`]: the self-hosted `taquilla serve` child.
//! - [`report`]: the human table and the JSON object.

pub mod audit;
pub mod client;
pub mod report;
pub mod scenario;
pub mod server;
pub mod setup;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use hyper::Method;
use hyper::header::HeaderValue;
use taquilla_domain::BuyerId;

use client::{Client, CpuTimes, Pacer, Pool, Recorder, Target};
use report::Report;
use scenario::{Admin, Mix, PaymentMode, SaleSpec, Scenario};
use taquilla_domain::limits::PAYMENT_ATTEMPTS_MAX;
use taquilla_followers::limits::SAGA_CONCURRENCY_MAX;
use taquilla_os::affinity;

/// New buyers join the open loop only while fewer than this much time of slots is claimed,
/// so buyers in a purchase are not queued behind a crowd of arrivals.
const ARRIVAL_HORIZON: Duration = Duration::from_millis(10);
/// Buyers started between two yields of the spawning task.
const SPAWN_BATCH: usize = 64;
/// Closed loop: new buyers that may wait for their first answer at once, per connection
/// (and at least [`ARRIVALS_AHEAD_MIN`]). Enough that connections never run out of work;
/// few enough that tens of thousands of arrivals do not all queue for a connection (and get
/// woken) at once. The server sees the same thing either way: arrivals queue in order.
const ARRIVALS_AHEAD_PER_CONNECTION: usize = 4;
const ARRIVALS_AHEAD_MIN: usize = 1024;
/// How long `/readyz` may take to answer 200 (recovery of a fresh data dir is instant).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections opened at once.
const CONNECT_PARALLEL: usize = 256;
/// After the deadline, unfinished buyers get this long before they are cancelled.
const CANCEL_GRACE: Duration = Duration::from_secs(10);
/// Buyer tokens live this long: far longer than any run.
const TOKEN_TTL_SECS: i64 = 86_400;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A running server (http://IP:PORT); without it, the bench starts `taquilla serve`
    /// itself on a free port with a fresh data directory.
    #[arg(long)]
    pub url: Option<String>,
    /// The server's admin token (with --url).
    #[arg(long, env = "TAQUILLA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The server's buyer-token secret (with --url); tokens are minted locally.
    #[arg(long, env = "TAQUILLA_BUYER_SECRET", hide_env_values = true)]
    pub buyer_secret: Option<String>,
    /// Pin the self-hosted server to these cores (e.g. "0"), one HTTP worker per core; the
    /// bench then runs on the other cores.
    #[arg(long)]
    pub server_cores: Option<String>,
    /// Pin the bench client to these cores [default: the cores the server does not use].
    #[arg(long)]
    pub client_cores: Option<String>,
    /// Client runtime threads [default: one per client core].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Tickets for sale (the venue quota; the VIP area quota is a tenth of it).
    #[arg(long, default_value_t = 20_000)]
    pub tickets: u32,
    /// Distinct buyers.
    #[arg(long, default_value_t = 50_000)]
    pub buyers: u32,
    /// Buyers in the sale at once (closed loop) [default: all of them].
    #[arg(long)]
    pub virtual_buyers: Option<u32>,
    /// Keep-alive connections the buyers are multiplexed over (up to 100,000; past 20,000
    /// they are spread over 127.0.0.x source addresses).
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Open loop: requests per second on a fixed schedule, latency measured from each
    /// request's intended send time. Without it: closed loop, as fast as answers come.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The sale's per-buyer ticket limit.
    #[arg(long, default_value_t = 4)]
    pub max_per_buyer: u32,
    /// Each buyer wants 1..=this many tickets.
    #[arg(long, default_value_t = 4)]
    pub quantity_max: u32,
    /// Hold time-to-live: short, so expiries happen within the run.
    #[arg(long, default_value_t = 3)]
    pub hold_ttl_secs: u64,
    /// Share of buyers who release their hold (DELETE) instead of paying.
    #[arg(long, default_value_t = 0.10)]
    pub abandon_share: f64,
    /// Share of buyers who let their hold expire.
    #[arg(long, default_value_t = 0.05)]
    pub expire_share: f64,
    /// Share of paying buyers who then try to buy past the per-buyer limit.
    #[arg(long, default_value_t = 0.05)]
    pub greedy_share: f64,
    /// Share of buyers who prefer VIP tickets.
    #[arg(long, default_value_t = 0.15)]
    pub vip_share: f64,
    /// Seconds of `GET /healthz` before the scenario and again after it, for the ceiling (the
    /// mean of the two; 0 skips it).
    #[arg(long, default_value_t = 3.0)]
    pub ceiling_secs: f64,
    /// The whole scenario must end within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Seed of the buyers' draws (who pays, abandons, how many, which type).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How buyers pay. `test`: the pay request waits for the (instant) provider and answers
    /// 200 paid. `simulated`: the self-hosted server also takes the simulated provider (its
    /// defaults: 50–300 ms per call, 2 % declines); buyers pay with `Prefer: wait=0` (202 at
    /// once) and poll their order until the payment is over (polls are reported, not counted
    /// in ops/s), pay again after a decline, and cancel after --pay-attempts declines. With
    /// --url the server must take `simulated` (`--payment-methods simulated`).
    #[arg(long, value_enum, default_value_t = PaymentMode::Test)]
    pub payments: PaymentMode,
    /// Attempts at paying one order before the buyer cancels it (`--payments simulated`).
    #[arg(long, default_value_t = 3)]
    pub pay_attempts: u32,
    /// The self-hosted server's simulated provider latency per call, `MIN..MAX` or `MS`
    /// (its `--simulated-latency-ms`) [default: the server's, 50..300].
    #[arg(long)]
    pub simulated_latency_ms: Option<String>,
    /// The self-hosted server's share of simulated payments declined (its
    /// `--simulated-decline-percent`) [default: the server's, 2].
    #[arg(long)]
    pub simulated_decline_percent: Option<f64>,
    /// Provider calls the self-hosted server's payment saga makes at once (its
    /// `--saga-concurrency`) [default: with `simulated`, 4096, the most the server takes;
    /// else the server's own default]. The saga pays at most this many orders per twice the
    /// provider's mean latency: the server's default of 256 at 50–300 ms is ~730 paid orders/s,
    /// below a rush's rate, and orders would wait for the saga past their deadline.
    #[arg(long)]
    pub saga_concurrency: Option<usize>,
    /// Directory for the self-hosted server's temporary data directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (1..=10_000_000).contains(&self.tickets),
            "--tickets must be 1..=10000000"
        );
        ensure!((1..=10_000_000).contains(&self.buyers), "--buyers must be 1..=10000000");
        ensure!(
            (1..=100_000).contains(&self.connections),
            "--connections must be 1..=100000"
        );
        ensure!(
            (1..=100).contains(&self.max_per_buyer) && (1..=self.max_per_buyer).contains(&self.quantity_max),
            "--max-per-buyer must be 1..=100 and --quantity-max 1..=--max-per-buyer"
        );
        ensure!(
            (1..=86_400).contains(&self.hold_ttl_secs),
            "--hold-ttl-secs must be 1..=86400"
        );
        for (name, v) in [
            ("--abandon-share", self.abandon_share),
            ("--expire-share", self.expire_share),
            ("--greedy-share", self.greedy_share),
            ("--vip-share", self.vip_share),
        ] {
            ensure!((0.0..=1.0).contains(&v), "{name} must be between 0 and 1");
        }
        ensure!(
            self.abandon_share + self.expire_share <= 1.0,
            "--abandon-share + --expire-share must be at most 1"
        );
        if let Some(r) = self.rate {
            ensure!(
                r.is_finite() && (1.0..=10_000_000.0).contains(&r),
                "--rate must be 1..=10000000"
            );
        }
        ensure!(
            self.ceiling_secs.is_finite() && (0.0..=600.0).contains(&self.ceiling_secs),
            "--ceiling-secs must be 0..=600"
        );
        ensure!(
            (1..=86_400).contains(&self.timeout_secs),
            "--timeout-secs must be 1..=86400"
        );
        ensure!(
            self.virtual_buyers.is_none_or(|v| v >= 1),
            "--virtual-buyers must be at least 1"
        );
        ensure!(
            self.saga_concurrency
                .is_none_or(|n| (1..=SAGA_CONCURRENCY_MAX).contains(&n)),
            "--saga-concurrency must be 1..={SAGA_CONCURRENCY_MAX}"
        );
        ensure!(
            (1..=PAYMENT_ATTEMPTS_MAX).contains(&self.pay_attempts),
            "--pay-attempts must be 1..={PAYMENT_ATTEMPTS_MAX} (the server's limit of attempts per order)"
        );
        let simulated_tuned = self.simulated_latency_ms.is_some() || self.simulated_decline_percent.is_some();
        ensure!(
            !simulated_tuned || self.payments == PaymentMode::Simulated,
            "--simulated-latency-ms and --simulated-decline-percent go with --payments simulated"
        );
        if self.url.is_some() {
            ensure!(
                self.admin_token.is_some() && self.buyer_secret.is_some(),
                "--url needs --admin-token and --buyer-secret"
            );
            for (flag, given) in [
                ("--server-cores", self.server_cores.is_some()),
                ("--simulated-latency-ms", self.simulated_latency_ms.is_some()),
                ("--simulated-decline-percent", self.simulated_decline_percent.is_some()),
                ("--saga-concurrency", self.saga_concurrency.is_some()),
            ] {
                ensure!(
                    !given,
                    "{flag} configures the self-hosted server; it does not apply to --url"
                );
            }
        }
        Ok(())
    }
}

pub(crate) fn random_hex() -> anyhow::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Runs the benchmark and returns its report. `Err` is a failure to run at all; a failed
/// audit is in the report.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    args.validate()?;
    taquilla_os::process::raise_open_files(args.connections as u64 + 1024)
        .map_err(|e| anyhow::anyhow!("--connections: {e}"))?;
    let server_cores = args
        .server_cores
        .as_deref()
        .map(affinity::parse_cores)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (admin_token, buyer_secret) = match (&args.admin_token, &args.buyer_secret, &args.url) {
        (Some(a), Some(b), Some(_)) => (a.clone(), b.clone()),
        _ => (random_hex()?, random_hex()?),
    };
    let mut server = match &args.url {
        Some(_) => None,
        None => Some(server::Server::start(&server::Options {
            cores: server_cores.as_deref(),
            admin_token: &admin_token,
            buyer_secret: &buyer_secret,
            dir: args.dir.as_deref(),
            payments: args.payments,
            simulated_latency_ms: args.simulated_latency_ms.as_deref(),
            simulated_decline_percent: args.simulated_decline_percent,
            saga_concurrency: args.saga_concurrency.or(match args.payments {
                PaymentMode::Simulated => Some(SAGA_CONCURRENCY_MAX),
                PaymentMode::Test => None,
            }),
            buyer_rate_limit: true,
        })?),
    };
    let url = match (&args.url, &server) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => unreachable!("a server was started when no --url was given"),
    };
    let client_cores = match (&args.client_cores, &server_cores) {
        (Some(c), _) => Some(affinity::parse_cores(c).map_err(anyhow::Error::msg)?),
        (None, Some(sc)) => {
            let rest: Vec<usize> = affinity::allowed_cores()?
                .into_iter()
                .filter(|c| !sc.contains(c))
                .collect();
            if rest.is_empty() {
                eprintln!("warning: no core left for the client; it shares the server's");
                None
            } else {
                Some(rest)
            }
        }
        (None, None) => None,
    };
    if let Some(cores) = &client_cores {
        affinity::pin_process(cores).context("pinning the client")?;
    }
    let threads = args
        .client_threads
        .or(client_cores.as_ref().map(|c| c.len()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    // One thread: a current-thread runtime, so the spawner, the buyers and the I/O driver
    // share it without waking each other across threads (which, on one core, cost the
    // client a context switch per handoff).
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("flash-sale-client")
            .enable_all()
            .build()?
    };
    let target = Target::parse(&url)?;
    let setup = Setup {
        admin_token,
        buyer_secret,
        server_cores: server_cores.clone(),
        client_cores,
        client_threads: threads,
        self_hosted: server.is_some(),
        server_pid: server.as_ref().map(|s| s.pid()),
    };
    let result = rt.block_on(run_async(args, target, &setup));
    drop(rt);
    if let Some(s) = server.as_mut() {
        let stopped = s.stop();
        match (&result, stopped) {
            (_, Ok(status)) if status.success() => {}
            (Ok(_), Ok(status)) => bail!("taquilla serve exited with {status}; its log:\n{}", s.log_tail()),
            (Ok(_), Err(e)) => return Err(e),
            (Err(_), _) => {}
        }
        if let Err(e) = &result {
            return Err(anyhow::anyhow!("{e:#}\nserver log:\n{}", s.log_tail()));
        }
    }
    result
}

/// What `run` decided before the async part.
struct Setup {
    admin_token: String,
    buyer_secret: String,
    server_cores: Option<Vec<usize>>,
    client_cores: Option<Vec<usize>>,
    client_threads: usize,
    self_hosted: bool,
    /// The self-hosted server's pid, to read its CPU time.
    server_pid: Option<u32>,
}

async fn run_async(args: &Args, target: Target, setup: &Setup) -> anyhow::Result<Report> {
    let mut admin = Admin {
        conn: client::connect(&target, None).await?,
        target: target.clone(),
        auth: HeaderValue::from_str(&format!("Bearer {}", setup.admin_token))?,
    };
    wait_ready(&mut admin).await?;
    let conns = client::open_connections(&target, args.connections, CONNECT_PARALLEL).await?;
    let probe = {
        let server_pid = setup.server_pid;
        move || CpuTimes {
            server: server_pid.and_then(taquilla_os::process::cpu_time),
            client: taquilla_os::process::cpu_time(std::process::id()),
        }
    };
    let client = Client {
        target: target.clone(),
        pool: Pool::new(conns),
        pacer: None,
        recorder: Recorder::new(Box::new(probe)),
    };
    let (ceiling_before, mut ceiling_latency, mut ceiling_phase) = if args.ceiling_secs > 0.0 {
        progress_note(args, "measuring the ceiling (GET /healthz)");
        let (ops, h, phase) = measured(probe, ceiling(&client, Duration::from_secs_f64(args.ceiling_secs))).await?;
        (ops, h, Some(phase))
    } else {
        (0.0, histogram(), None)
    };
    let client = Client {
        pacer: args.rate.map(Pacer::new),
        ..client
    };

    let spec = SaleSpec {
        tickets: args.tickets,
        hold_ttl_secs: args.hold_ttl_secs,
        max_per_buyer: args.max_per_buyer,
    };
    let sale = scenario::create_sale(&mut admin, &spec).await?;
    let mix = Mix {
        abandon_share: args.abandon_share,
        expire_share: args.expire_share,
        greedy_share: args.greedy_share,
        vip_share: args.vip_share,
        quantity_max: args.quantity_max,
    };
    let expires_at_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64
        + TOKEN_TTL_SECS;
    let mut plans = Vec::with_capacity(args.buyers as usize);
    for i in 0..args.buyers as u64 {
        let buyer = BuyerId::parse(&format!("fs-{i}")).map_err(|e| anyhow::anyhow!("buyer id: {}", e.reason))?;
        let token = taquilla_api::mint_buyer_token(setup.buyer_secret.as_bytes(), &buyer, expires_at_secs);
        plans.push(scenario::plan(
            args.seed,
            i,
            &mix,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        ));
    }
    let demand: u64 = plans
        .iter()
        .filter(|p| p.fate == scenario::Fate::Pay)
        .map(|p| p.want as u64)
        .sum();

    progress_note(args, "running the sale");
    let cpu_sale_start = probe();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let sc = Arc::new(Scenario::new(client, sale, deadline, args.payments, args.pay_attempts));
    let done = Arc::new(AtomicBool::new(false));
    let coordinator = tokio::spawn({
        let (sc, done) = (sc.clone(), done.clone());
        async move { sc.coordinate(&done).await }
    });
    let progress = tokio::spawn({
        let (sc, done, json) = (sc.clone(), done.clone(), args.json);
        async move { progress_line(&sc, &done, started, json).await }
    });
    let unfinished = run_buyers(&sc, plans, args.virtual_buyers, args.connections).await?;
    done.store(true, Ordering::Release);
    let _ = coordinator.await;
    let _ = progress.await;
    let elapsed = started.elapsed();
    let sale_phase = Phase {
        time: elapsed,
        requests: sc.client.recorder.lock().requests,
        cpu: probe().since(cpu_sale_start),
    };

    // The payments the buyers saw end are over, but the saga may still void an expired
    // order's attempt: wait until it is done (bounded), before the ceiling, so that its work
    // does not fall into the ceiling's measurement. Not part of any rate.
    progress_note(args, "waiting for the payment saga to finish");
    let saga_drained = audit::await_saga(&mut admin, &sc.sale, audit::SAGA_DRAIN_TIMEOUT).await?;

    // The ceiling again, after the sale: on a shared machine the speed drifts over seconds,
    // and the mean of the two brackets the scenario instead of trusting one moment.
    // Best effort: a speed figure must not cost the audit below.
    let ceiling_after = if args.ceiling_secs > 0.0 {
        progress_note(args, "measuring the ceiling again (GET /healthz)");
        match measured(probe, ceiling(&sc.client, Duration::from_secs_f64(args.ceiling_secs))).await {
            Ok((ops, h, phase)) if ceiling_latency.add(&h).is_ok() => {
                ceiling_phase = ceiling_phase.map(|before| before.plus(phase));
                ops
            }
            Ok(_) => ceiling_before,
            Err(e) => {
                eprintln!("warning: the ceiling after the sale failed ({e:#}); using the one before");
                ceiling_before
            }
        }
    } else {
        0.0
    };
    let server_counters = match admin.call(Method::GET, "/metrics", None).await {
        Ok((200, body)) => report::ServerCounters::parse(&String::from_utf8_lossy(&body)),
        _ => None,
    };
    progress_note(args, "auditing through the admin API and the feed");
    let audit = {
        // Every buyer has finished: the acknowledgements are final.
        let acks = std::mem::take(&mut *sc.acks.lock().unwrap_or_else(|e| e.into_inner()));
        let seen = audit::Seen {
            declines: sc.tally.declines_seen.load(Ordering::Relaxed),
            demand_withdrawn: sc.tally.declined_out_tickets.load(Ordering::Relaxed),
        };
        let mut audit = audit::run(&mut admin, &sc.sale, &acks, demand, seen).await?;
        match saga_drained {
            Ok(took) => audit.saga_drain_secs = took.as_secs_f64(),
            Err(e) => {
                audit.saga_drain_secs = audit::SAGA_DRAIN_TIMEOUT.as_secs_f64();
                audit.failures.push(e);
            }
        }
        audit
    };
    Ok(report::build(report::Inputs {
        args,
        sc: &sc,
        audit,
        elapsed,
        unfinished,
        ceiling_before,
        ceiling_after,
        ceiling_latency: &ceiling_latency,
        sale_phase,
        ceiling_phase,
        server_cores: setup.server_cores.clone(),
        client_cores: setup.client_cores.clone(),
        client_threads: setup.client_threads,
        self_hosted: setup.self_hosted,
        server: server_counters,
    }))
}

/// A phase of the run: how long it took, the requests it made and the CPU both sides used.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub time: Duration,
    pub requests: u64,
    pub cpu: CpuTimes,
}

impl Phase {
    fn plus(self, other: Phase) -> Phase {
        Phase {
            time: self.time + other.time,
            requests: self.requests + other.requests,
            cpu: self.cpu.plus(other.cpu),
        }
    }
}

/// Runs a ceiling measurement and what it cost: its wall time and CPU, and its requests (the
/// histogram's count; the untimed warm-up requests, one per connection, are not counted).
async fn measured(
    probe: impl Fn() -> CpuTimes,
    run: impl Future<Output = anyhow::Result<(f64, Histogram<u64>)>>,
) -> anyhow::Result<(f64, Histogram<u64>, Phase)> {
    let (cpu, started) = (probe(), Instant::now());
    let (ops, h) = run.await?;
    let phase = Phase {
        time: started.elapsed(),
        requests: h.len(),
        cpu: probe().since(cpu),
    };
    Ok((ops, h, phase))
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

fn progress_note(args: &Args, what: &str) {
    if !args.json {
        eprintln!("flash-sale: {what}");
    }
}

async fn wait_ready(admin: &mut Admin) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let (status, _) = admin.call(Method::GET, "/readyz", None).await?;
        if status == 200 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the server was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every connection asks `GET /healthz` as fast as it can for `duration`.
async fn ceiling(client: &Client, duration: Duration) -> anyhow::Result<(f64, Histogram<u64>)> {
    // One untimed request per connection first: with thousands of connections, each one's
    // first request (the server's first read on it, its buffers) is a start-up cost that
    // would otherwise dominate a short measurement.
    let mut warm = tokio::task::JoinSet::new();
    for mut conn in client.pool.take_all() {
        let target = client.target.clone();
        warm.spawn(async move {
            client::exchange(&mut conn, &target, Method::GET, "/healthz", None, None)
                .await
                .map(|_| conn)
        });
    }
    let mut conns = Vec::new();
    while let Some(r) = warm.join_next().await {
        conns.push(r.context("a warm-up task failed")??);
    }
    // One histogram for every connection: one per connection (~170 KiB each, zeroed) cost
    // gigabytes and most of the client's time with thousands of connections.
    let hist = Arc::new(Mutex::new(histogram()));
    let started = Instant::now();
    let stop_at = started + duration;
    let mut set = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (target, hist) = (client.target.clone(), hist.clone());
        set.spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < stop_at {
                let t = Instant::now();
                match client::exchange(&mut conn, &target, Method::GET, "/healthz", None, None).await {
                    Ok(r) if r.status == 200 => {
                        ok += 1;
                        let us = t.elapsed().as_micros().max(1) as u64;
                        hist.lock().unwrap_or_else(|e| e.into_inner()).saturating_record(us);
                    }
                    Ok(r) => return Err(anyhow::anyhow!("GET /healthz answered {}", r.status)),
                    Err(e) => return Err(e),
                }
            }
            Ok((conn, ok))
        });
    }
    let mut total = 0u64;
    let mut back = Vec::new();
    while let Some(r) = set.join_next().await {
        let (conn, ok) = r.context("a ceiling task failed")??;
        total += ok;
        back.push(conn);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let hist = std::mem::replace(&mut *hist.lock().unwrap_or_else(|e| e.into_inner()), histogram());
    client.pool.put_all(back);
    Ok((total as f64 / elapsed, hist))
}

/// Starts every buyer (all at once in the closed loop, at most `virtual_buyers` at a time if
/// given; paced by the schedule in the open loop) and waits for them, bounded by the
/// deadline. Returns how many had to be cancelled.
async fn run_buyers(
    sc: &Arc<Scenario>,
    plans: Vec<scenario::Plan>,
    virtual_buyers: Option<u32>,
    connections: usize,
) -> anyhow::Result<u64> {
    let hard_stop = sc.deadline + CANCEL_GRACE;
    if sc.client.pacer.is_some() {
        let set = arrive_on_schedule(sc, plans, virtual_buyers).await?;
        return Ok(join_bounded(set, hard_stop).await);
    }
    let (set, closer) = gather_at_the_door(sc, plans, virtual_buyers, connections).await;
    let left = join_bounded(set, hard_stop).await;
    closer.abort();
    Ok(left)
}

/// Closed loop: the whole crowd is at the door before the sale's first request, as at a
/// real flash sale's opening; then the door opens. The buyers are spawned first, each parked
/// on the door (a fair semaphore, so they go in the order they came), and enter
/// `ARRIVALS_AHEAD_PER_CONNECTION` per connection at a time: an arrival gives its place back
/// once its first answer is in. Spawning first keeps the crowd's memory (tens of thousands
/// of tasks, fresh pages) and the spawning out of the measured run; spawning during the run
/// made the client, not the server, the limit while the sold-out crowd was being turned away.
///
/// The wait at the door is bounded by the deadline (with every connection lost, no buyer
/// would ever hand a place back, and the run must still end and say so): the returned task
/// closes the door then, and every buyer still outside gives up. One timer for the crowd, not
/// one per buyer; the caller aborts it once the buyers are done.
async fn gather_at_the_door(
    sc: &Arc<Scenario>,
    plans: Vec<scenario::Plan>,
    virtual_buyers: Option<u32>,
    connections: usize,
) -> (tokio::task::JoinSet<()>, tokio::task::JoinHandle<()>) {
    let limit = virtual_buyers.map(|v| Arc::new(tokio::sync::Semaphore::new(v as usize)));
    let door = Arc::new(tokio::sync::Semaphore::new(0));
    let closer = tokio::spawn({
        let (limit, door, deadline) = (limit.clone(), door.clone(), sc.deadline);
        async move {
            tokio::time::sleep_until(deadline.into()).await;
            door.close();
            if let Some(l) = limit {
                l.close();
            }
        }
    });
    let mut set = tokio::task::JoinSet::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let (sc, limit, door) = (sc.clone(), limit.clone(), door.clone());
        set.spawn(async move {
            let place = match limit {
                Some(l) => match l.acquire_owned().await {
                    Ok(p) => Some(p),
                    Err(_) => return sc.never_started(),
                },
                None => None,
            };
            let Ok(admitted) = door.acquire_owned().await else {
                return sc.never_started();
            };
            sc.buyer(&plan, None, Some(admitted)).await;
            drop(place);
        });
        // Each new buyer parks at the door on its first poll, in spawn order.
        if (i + 1).is_multiple_of(SPAWN_BATCH) {
            tokio::task::yield_now().await;
        }
    }
    tokio::task::yield_now().await;
    door.add_permits(
        connections
            .saturating_mul(ARRIVALS_AHEAD_PER_CONNECTION)
            .max(ARRIVALS_AHEAD_MIN),
    );
    (set, closer)
}

/// Open loop: each buyer's first request takes the next slot of the schedule as it is
/// spawned, and new buyers join only while the claimed slots reach less than
/// `ARRIVAL_HORIZON` ahead.
async fn arrive_on_schedule(
    sc: &Arc<Scenario>,
    plans: Vec<scenario::Plan>,
    virtual_buyers: Option<u32>,
) -> anyhow::Result<tokio::task::JoinSet<()>> {
    let pacer = sc.client.pacer.as_ref().context("open loop without a pacer")?;
    let limit = virtual_buyers.map(|v| Arc::new(tokio::sync::Semaphore::new(v as usize)));
    let mut set = tokio::task::JoinSet::new();
    let mut spawned = 0usize;
    let total = plans.len();
    for plan in plans {
        while pacer.backlog() > ARRIVAL_HORIZON && Instant::now() < sc.deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let arrival = Some(pacer.slot(Instant::now()));
        // Bounded by the deadline, as in the closed loop.
        let permit = match &limit {
            Some(l) => match tokio::time::timeout_at(sc.deadline.into(), l.clone().acquire_owned()).await {
                Ok(p) => Some(p?),
                Err(_) => None,
            },
            None => None,
        };
        if Instant::now() >= sc.deadline {
            // The buyers never started gave up, like those the deadline stops mid-purchase.
            sc.tally.gave_up.fetch_add((total - spawned) as u64, Ordering::Relaxed);
            break;
        }
        let sc = sc.clone();
        set.spawn(async move {
            sc.buyer(&plan, arrival, None).await;
            drop(permit);
        });
        // Reap finished buyers as we go, so the set does not keep them all; and let the
        // buyers already in a purchase run between spawns, or tens of thousands of spawns
        // would stall the first purchases on a one-thread client.
        while set.try_join_next().is_some() {}
        spawned += 1;
        if spawned.is_multiple_of(SPAWN_BATCH) {
            tokio::task::yield_now().await;
        }
    }
    Ok(set)
}

/// Waits for every buyer until `hard_stop`, then cancels the rest; returns how many.
async fn join_bounded(mut set: tokio::task::JoinSet<()>, hard_stop: Instant) -> u64 {
    loop {
        match tokio::time::timeout_at(hard_stop.into(), set.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => return 0,
            Err(_) => {
                // Counted by how each ended, not by `set.len()`: a buyer may finish (and be
                // tallied) between the timeout and the abort.
                set.abort_all();
                let mut left = 0;
                while let Some(ended) = set.join_next().await {
                    if ended.is_err_and(|e| e.is_cancelled()) {
                        left += 1;
                    }
                }
                return left;
            }
        }
    }
}

/// The live line on stderr: elapsed, ops/s over the last interval, tickets sold, errors.
async fn progress_line(sc: &Scenario, done: &AtomicBool, started: Instant, quiet: bool) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    };
    let mut last = (Instant::now(), 0u64);
    while !done.load(Ordering::Acquire) {
        tokio::time::sleep(every).await;
        let (requests, errors) = {
            let r = sc.client.recorder.lock();
            let server_errors: u64 = r.statuses.range(500..).map(|(_, n)| n).sum();
            (r.requests, server_errors + r.transport_errors)
        };
        let now = Instant::now();
        let rate = (requests - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, requests);
        if quiet {
            continue;
        }
        let line = format!(
            "[{:6.1}s] {:>9.0} ops/s  sold {:>8}/{}  buyers done {:>8}  waiting {:>7}  errors {}",
            started.elapsed().as_secs_f64(),
            rate,
            sc.tally.tickets_paid.load(Ordering::Relaxed),
            sc.sale.capacity,
            sc.tally.buyers_done.load(Ordering::Relaxed),
            sc.waiters.load(Ordering::Relaxed),
            errors
        );
        if tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    }
    if tty && !quiet {
        eprintln!();
    }
}
