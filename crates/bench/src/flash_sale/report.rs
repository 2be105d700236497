//! The report: one JSON object (`--json`) or a human table with the same figures.
//!
//! `ops_per_sec` is the rate of the rush in the closed loop: the requests from the first one
//! until the first idle gap of at least `client::RUSH_GAP` (none in flight), divided by the
//! busy time in between. That spell is
//! the whole crowd's pass through the sale, with every connection kept busy. What follows it
//! is paced by the hold time-to-live, not by the server: holds expire, their tickets go back
//! to waiting buyers, a few requests at a time. Counting those spells would make the figure
//! depend on the time-to-live and on the machine's speed (a faster server shortens the rush,
//! not the wait), so the ceiling ratio would no longer travel. They are reported next to it:
//! all requests over the busy time (time with at least one request in flight), and over the
//! wall clock. In the open loop the rate is fixed by `--rate`; `ops_per_sec` is the requests
//! over the busy time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Args;
use super::audit::{Audit, Payments};
use super::client::{CpuTimes, Op};
use super::scenario::{PaymentMode, Scenario};

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub ops_per_sec: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

fn latency(h: &Histogram<u64>, ops_per_sec: f64) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        count: h.len(),
        ops_per_sec,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Buyers {
    pub total: u64,
    pub bought: u64,
    pub abandoned: u64,
    pub expired: u64,
    pub left_sold_out: u64,
    pub gave_up: u64,
    /// Cancelled at the deadline.
    pub unfinished: u64,
    /// Paying buyers whose hold or order lapsed before payment and who tried again.
    pub lapsed: u64,
    /// Payment attempts the buyers saw declined (`--payments simulated`).
    pub declines_seen: u64,
    /// Buyers who cancelled their order after `--pay-attempts` declines.
    pub declined_out: u64,
    pub greedy_refused: u64,
    pub greedy_accepted: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// "closed" or "open".
    pub mode: &'static str,
    pub rate: Option<f64>,
    pub connections: usize,
    pub buyers: u32,
    pub tickets: u32,
    pub max_per_buyer: u32,
    pub hold_ttl_secs: u64,
    /// How buyers paid (`test` or `simulated`), and how many attempts each order got.
    pub payments: PaymentMode,
    pub pay_attempts: u32,
    pub self_hosted: bool,
    pub server_cores: Option<Vec<usize>>,
    pub client_cores: Option<Vec<usize>>,
    pub client_threads: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Closed loop: requests per second of the rush (see the module docs); open loop: of the
    /// busy time.
    pub ops_per_sec: f64,
    /// Closed loop: the rush's length and requests (absent if it never ended, e.g. cut off
    /// by the deadline; `ops_per_sec` is then over the busy time).
    pub rush_secs: Option<f64>,
    pub rush_requests: Option<u64>,
    /// All scenario requests per second of busy time (expiry-paced spells included).
    pub busy_ops_per_sec: f64,
    /// Scenario requests per second of wall-clock time (expiry waits included).
    pub ops_per_sec_wall: f64,
    /// The mean of the ceiling measured before and after the scenario.
    pub ceiling_ops_per_sec: f64,
    pub ceiling_before_ops_per_sec: f64,
    pub ceiling_after_ops_per_sec: f64,
    pub ceiling_ratio: f64,
    pub ceiling_latency_ms: Latency,
    /// Requests of the scenario, polls left out: what `ops_per_sec` counts.
    pub requests: u64,
    /// Buyers polling their order while its payment was under way (`latency_ms.order_status`):
    /// sent, answered and recorded, but neither in `requests` nor in any rate above, since
    /// they are paced by the payment provider, not by the server.
    pub polls: u64,
    pub busy_secs: f64,
    pub elapsed_secs: f64,
    pub sold: u64,
    pub capacity: u64,
    pub demand: u64,
    pub oversold: u64,
    pub lost_acknowledged: u64,
    /// Payment attempts in the log: captured, voided, refunded, declined; and the two that
    /// must be 0 (`double_captured`, `non_terminal`). Also in `audit.payments`.
    pub payments: Payments,
    /// Per operation (read, hold, checkout, pay, release, hold_status, cancel, order_status).
    pub latency_ms: BTreeMap<&'static str, Latency>,
    /// Every non-2xx status, and how often.
    pub errors_by_status: BTreeMap<String, u64>,
    pub status_counts: BTreeMap<String, u64>,
    pub error_codes: BTreeMap<String, u64>,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub buyers: Buyers,
    pub audit: Audit,
    /// The server's own counters (`/metrics`), when it exposes them.
    pub server: Option<ServerCounters>,
    /// Self-hosted runs: the server's CPU time per scenario request (in the rush; in the
    /// open loop, over the whole sale) and per ceiling request, and their ratio (ceiling /
    /// scenario): what the ceiling ratio would be if the server's CPU were the only limit.
    pub server_cpu_us_per_op: Option<f64>,
    pub server_cpu_us_per_ceiling_request: Option<f64>,
    pub server_cpu_ratio: Option<f64>,
    /// The same ratio for the bench client's own CPU: when it is the lower of the two, the
    /// client, not the server, held the scenario back more than it held the ceiling back.
    pub client_cpu_ratio: Option<f64>,
    /// The same two sides of the CPU account for the scenario (the rush in the closed loop)
    /// and for the ceiling: whichever side had its cores busy throughout was the limit.
    pub cpu_scenario: CpuUse,
    pub cpu_ceiling: Option<CpuUse>,
    /// The audit found nothing wrong (payments included: none captured twice, none left
    /// pending), no 5xx, no transport error, no buyer cancelled.
    pub passed: bool,
    pub config: Config,
}

/// CPU used over a phase, per request and as cores kept busy (CPU time over wall time).
/// `server_*` only for a self-hosted server; `client_*` where `/proc` exists.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    pub server_us_per_request: Option<f64>,
    pub server_cores_busy: Option<f64>,
    pub client_us_per_request: Option<f64>,
    pub client_cores_busy: Option<f64>,
}

impl CpuUse {
    fn of(time: Duration, requests: u64, cpu: CpuTimes) -> CpuUse {
        let per_request = |c: Option<Duration>| {
            c.filter(|_| requests > 0)
                .map(|c| c.as_secs_f64() * 1e6 / requests as f64)
        };
        let busy = |c: Option<Duration>| {
            c.filter(|_| !time.is_zero())
                .map(|c| c.as_secs_f64() / time.as_secs_f64())
        };
        CpuUse {
            server_us_per_request: per_request(cpu.server),
            server_cores_busy: busy(cpu.server),
            client_us_per_request: per_request(cpu.client),
            client_cores_busy: busy(cpu.client),
        }
    }
}

/// Engine counters from the server's `/metrics`, totals since it started: how well group
/// commit batched (commands per flush is the fsync amortisation).
#[derive(Debug, Clone, Serialize)]
pub struct ServerCounters {
    pub commands: u64,
    pub batches: u64,
    pub log_flushes: u64,
    pub commands_per_flush: f64,
}

impl ServerCounters {
    /// Picks the engine gauges out of Prometheus text.
    pub fn parse(text: &str) -> Option<ServerCounters> {
        let get = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|v| v as u64)
        };
        let (commands, batches, log_flushes) = (
            get("taquilla_commands")?,
            get("taquilla_batches")?,
            get("taquilla_log_flushes")?,
        );
        Some(ServerCounters {
            commands,
            batches,
            log_flushes,
            commands_per_flush: commands as f64 / log_flushes.max(1) as f64,
        })
    }
}

pub struct Inputs<'a> {
    pub args: &'a Args,
    pub sc: &'a Scenario,
    pub audit: Audit,
    pub elapsed: Duration,
    pub unfinished: u64,
    pub ceiling_before: f64,
    pub ceiling_after: f64,
    pub ceiling_latency: &'a Histogram<u64>,
    pub server_cores: Option<Vec<usize>>,
    pub client_cores: Option<Vec<usize>>,
    pub client_threads: usize,
    pub self_hosted: bool,
    pub server: Option<ServerCounters>,
    /// The whole sale, and both ceiling phases together.
    pub sale_phase: super::Phase,
    pub ceiling_phase: Option<super::Phase>,
}

pub fn build(i: Inputs<'_>) -> Report {
    let rec = i.sc.client.recorder.lock();
    let busy_secs = rec.busy.as_secs_f64();
    let elapsed_secs = i.elapsed.as_secs_f64();
    let busy_ops_per_sec = rate(rec.requests, busy_secs);
    let rush = rec.rush().filter(|_| i.args.rate.is_none());
    let rush_secs = rush.map(|r| r.duration.as_secs_f64());
    let ops_per_sec = match rush {
        Some(r) => rate(r.requests, r.duration.as_secs_f64()),
        None => busy_ops_per_sec,
    };
    let latency_ms = Op::ALL
        .iter()
        .map(|op| {
            let h = &rec.latency_us[*op as usize];
            let ops = match rush {
                Some(r) => rate(r.per_op[*op as usize], r.duration.as_secs_f64()),
                None => rate(h.len(), busy_secs),
            };
            (op.name(), latency(h, ops))
        })
        .collect();
    let status_counts: BTreeMap<String, u64> = rec.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    let errors_by_status = rec
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    let server_errors = rec.statuses.range(500..).map(|(_, n)| n).sum();
    let t = &i.sc.tally;
    let buyers = Buyers {
        total: i.args.buyers as u64,
        bought: t.bought.load(Ordering::Relaxed),
        abandoned: t.abandoned.load(Ordering::Relaxed),
        expired: t.expired.load(Ordering::Relaxed),
        left_sold_out: t.left_sold_out.load(Ordering::Relaxed),
        gave_up: t.gave_up.load(Ordering::Relaxed),
        unfinished: i.unfinished,
        lapsed: t.lapsed.load(Ordering::Relaxed),
        declines_seen: t.declines_seen.load(Ordering::Relaxed),
        declined_out: t.declined_out.load(Ordering::Relaxed),
        greedy_refused: t.greedy_refused.load(Ordering::Relaxed),
        greedy_accepted: t.greedy_accepted.load(Ordering::Relaxed),
    };
    let mut audit = i.audit;
    if rec.codes.contains_key("payment_method_disabled") {
        let method = i.args.payments.name();
        audit.failures.push(format!(
            "the server refused {method} payments (payment_method_disabled): start it with --payment-methods {method}"
        ));
    }
    let passed = audit.failures.is_empty()
        && audit.oversold == 0
        && audit.payments.double_captured == 0
        && audit.payments.non_terminal == 0
        && server_errors == 0
        && rec.transport_errors == 0
        && i.unfinished == 0;
    let ceiling = (i.ceiling_before + i.ceiling_after) / 2.0;
    let cpu_scenario = match rush {
        Some(r) => CpuUse::of(r.duration, r.requests, r.cpu),
        None => CpuUse::of(i.sale_phase.time, i.sale_phase.requests, i.sale_phase.cpu),
    };
    let cpu_ceiling = i.ceiling_phase.map(|p| CpuUse::of(p.time, p.requests, p.cpu));
    let server_cpu_us_per_op = cpu_scenario.server_us_per_request;
    let server_cpu_us_per_ceiling_request = cpu_ceiling.and_then(|c| c.server_us_per_request);
    Report {
        ops_per_sec,
        rush_secs,
        rush_requests: rush.map(|r| r.requests),
        busy_ops_per_sec,
        ops_per_sec_wall: rate(rec.requests, elapsed_secs),
        ceiling_ops_per_sec: ceiling,
        ceiling_before_ops_per_sec: i.ceiling_before,
        ceiling_after_ops_per_sec: i.ceiling_after,
        ceiling_ratio: if ceiling > 0.0 { ops_per_sec / ceiling } else { 0.0 },
        ceiling_latency_ms: latency(i.ceiling_latency, 0.0),
        requests: rec.requests,
        polls: rec.polls,
        busy_secs,
        elapsed_secs,
        sold: audit.sold,
        capacity: audit.capacity,
        demand: audit.demand,
        oversold: audit.oversold,
        lost_acknowledged: audit.lost_acknowledged,
        payments: audit.payments,
        latency_ms,
        errors_by_status,
        status_counts,
        error_codes: rec.codes.clone(),
        server_errors,
        transport_errors: rec.transport_errors,
        buyers,
        passed,
        audit,
        server: i.server,
        server_cpu_us_per_op,
        server_cpu_us_per_ceiling_request,
        server_cpu_ratio: cpu_ratio(server_cpu_us_per_op, server_cpu_us_per_ceiling_request),
        client_cpu_ratio: cpu_ratio(
            cpu_scenario.client_us_per_request,
            cpu_ceiling.and_then(|c| c.client_us_per_request),
        ),
        cpu_scenario,
        cpu_ceiling,
        config: Config {
            mode: if i.args.rate.is_some() { "open" } else { "closed" },
            rate: i.args.rate,
            connections: i.args.connections,
            buyers: i.args.buyers,
            tickets: i.args.tickets,
            max_per_buyer: i.args.max_per_buyer,
            hold_ttl_secs: i.args.hold_ttl_secs,
            payments: i.args.payments,
            pay_attempts: i.args.pay_attempts,
            self_hosted: i.self_hosted,
            server_cores: i.server_cores,
            client_cores: i.client_cores,
            client_threads: i.client_threads,
            seed: i.args.seed,
        },
    }
}

/// Ceiling CPU per request over scenario CPU per request.
fn cpu_ratio(scenario_us: Option<f64>, ceiling_us: Option<f64>) -> Option<f64> {
    let (scenario, ceiling) = (scenario_us?, ceiling_us?);
    (scenario > 0.0).then(|| ceiling / scenario)
}

/// "server 23.1 µs, 0.87 cores; client 28.0 µs, 0.99 cores", leaving out what is unknown.
fn cpu_use(c: &CpuUse) -> String {
    let side = |name: &str, us: Option<f64>, busy: Option<f64>| match (us, busy) {
        (Some(us), Some(busy)) => Some(format!("{name} {us:.1} µs, {busy:.2} cores")),
        _ => None,
    };
    let sides: Vec<String> = [
        side("server", c.server_us_per_request, c.server_cores_busy),
        side("client", c.client_us_per_request, c.client_cores_busy),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sides.is_empty() {
        "not measured".into()
    } else {
        sides.join("; ")
    }
}

fn cores(c: &Option<Vec<usize>>) -> String {
    match c {
        Some(c) => c.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        None => "any".into(),
    }
}

/// The human table.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(
        s,
        "\nflash sale: {} tickets, {} buyers, {} connections, {} payments, {} loop{}, server cores {}, client cores {} ({} threads)",
        c.tickets,
        c.buyers,
        c.connections,
        c.payments.name(),
        c.mode,
        c.rate.map(|r| format!(" at {r:.0} req/s")).unwrap_or_default(),
        cores(&c.server_cores),
        cores(&c.client_cores),
        c.client_threads
    );
    let _ = writeln!(
        s,
        "\n{:<12} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation", "count", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    let row = |s: &mut String, name: &str, l: &super::report::Latency, rate: f64| {
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name, l.count, rate, l.p50, l.p90, l.p99, l.p999, l.max
        );
    };
    for op in Op::ALL {
        if let Some(l) = r.latency_ms.get(op.name()).filter(|l| l.count > 0) {
            row(&mut s, op.name(), l, l.ops_per_sec);
        }
    }
    let _ = writeln!(s, "{:<12} {:>9} {:>10.0}", "total", r.requests, r.ops_per_sec);
    if r.polls > 0 {
        let _ = writeln!(
            s,
            "  total and ops/s leave out the {} order_status polls (buyers waiting for the payment provider)",
            r.polls
        );
    }
    if r.ceiling_ops_per_sec > 0.0 {
        row(&mut s, "healthz", &r.ceiling_latency_ms, r.ceiling_ops_per_sec);
    }
    if let (Some(secs), Some(n)) = (r.rush_secs, r.rush_requests) {
        let _ = writeln!(
            s,
            "  ops/s: the rush, {n} requests in {secs:.2} s (until the first idle gap); then {} requests paced by hold expiry",
            r.requests - n,
        );
    }
    let _ = writeln!(
        s,
        "  all requests: {:.0} ops/s over {:.2} s busy, {:.0} ops/s over {:.2} s wall clock",
        r.busy_ops_per_sec, r.busy_secs, r.ops_per_sec_wall, r.elapsed_secs
    );
    if r.ceiling_ops_per_sec > 0.0 {
        let _ = writeln!(
            s,
            "\nceiling (GET /healthz, same client and connections, mean of before {:.0} and after {:.0}): {:.0} ops/s; scenario / ceiling = {:.2}{}",
            r.ceiling_before_ops_per_sec,
            r.ceiling_after_ops_per_sec,
            r.ceiling_ops_per_sec,
            r.ceiling_ratio,
            if c.rate.is_some() {
                " (open loop: the scenario ran at the chosen rate)"
            } else {
                ""
            }
        );
    }
    let scenario_phase = if r.rush_secs.is_some() { "the rush" } else { "the sale" };
    let _ = writeln!(s, "CPU, per request and cores busy:");
    let _ = writeln!(s, "  {scenario_phase}: {}", cpu_use(&r.cpu_scenario));
    if let Some(c) = &r.cpu_ceiling {
        let _ = writeln!(s, "  ceiling: {}", cpu_use(c));
    }
    let ratios: Vec<String> = [("server", r.server_cpu_ratio), ("client", r.client_cpu_ratio)]
        .into_iter()
        .filter_map(|(side, ratio)| Some(format!("{side} CPU ratio {:.2}", ratio?)))
        .collect();
    if !ratios.is_empty() {
        let _ = writeln!(
            s,
            "{} (ceiling / scenario CPU per request: the ceiling ratio if that side's CPU were the only limit)",
            ratios.join(", ")
        );
    }
    let statuses: Vec<String> = r.status_counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "\nstatus codes: {}", statuses.join(", "));
    let codes: Vec<String> = r.error_codes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if !codes.is_empty() {
        let _ = writeln!(s, "error codes:  {}", codes.join(", "));
    }
    let _ = writeln!(s, "transport errors: {}", r.transport_errors);
    if let Some(c) = &r.server {
        let _ = writeln!(
            s,
            "server: {} commands in {} batches, {} log flushes ({:.1} commands per fsync)",
            c.commands, c.batches, c.log_flushes, c.commands_per_flush
        );
    }
    let b = &r.buyers;
    let _ = writeln!(
        s,
        "buyers: {} bought, {} abandoned, {} let expire, {} left sold out, {} gave up, {} cancelled; {} lapsed and retried; {} declines seen, {} cancelled after --pay-attempts declines; past-limit tries {} refused, {} accepted",
        b.bought,
        b.abandoned,
        b.expired,
        b.left_sold_out,
        b.gave_up,
        b.unfinished,
        b.lapsed,
        b.declines_seen,
        b.declined_out,
        b.greedy_refused,
        b.greedy_accepted
    );
    let a = &r.audit;
    let _ = writeln!(
        s,
        "\naudit (stats + {} feed events): sold {} (feed {}) of capacity {}, demand {} → expected {}; oversold {}; lost acknowledged {}; duplicate codes {}; buyers over limit {}; held at end {}",
        a.feed_events,
        a.sold,
        a.sold_in_feed,
        a.capacity,
        a.demand,
        a.expected_sold,
        a.oversold,
        a.lost_acknowledged,
        a.duplicate_ticket_codes,
        a.buyers_over_limit,
        a.held_at_end
    );
    let _ = writeln!(
        s,
        "  holds placed {}, released {}, expired {}; orders placed {}, paid {}, expired {}; buyers with tickets {}",
        a.holds_placed,
        a.holds_released,
        a.holds_expired,
        a.orders_placed,
        a.orders_paid,
        a.orders_expired,
        a.buyers_with_tickets
    );
    let p = &a.payments;
    let _ = writeln!(
        s,
        "  payments: captured {}, voided {}, refunded {}, declined {}; double captured {}, not at an end {}; saga done {:.2} s after the buyers",
        p.captured, p.voided, p.refunded, p.declined, p.double_captured, p.non_terminal, a.saga_drain_secs
    );
    for f in &a.failures {
        let _ = writeln!(s, "  FAILED: {f}");
    }
    let _ = writeln!(s, "result: {}", if r.passed { "PASS" } else { "FAIL" });
    s
}
