//! `taquilla bench flash-sale` end to end, with small numbers: the bench starts its own server
//! (a child of the binary), sells out a sale to a crowd, and audits the outcome through the
//! admin API and the event feed. These tests assert the audit, never the speed.

use std::process::Command;

use serde_json::Value;

/// Runs the bench with `--json` and returns its report; panics with its output if it failed.
fn bench(args: &[&str]) -> Value {
    let (ok, report) = bench_outcome(args);
    assert!(ok, "the bench failed: {report:#}");
    report
}

/// Runs the bench with `--json`: whether it exited 0, and its report. Small defaults for
/// CI, each one left out when `args` sets that flag.
fn bench_outcome(args: &[&str]) -> (bool, Value) {
    let defaults = [
        ("--ceiling-secs", "0.2"),
        ("--timeout-secs", "120"),
        ("--connections", "16"),
        ("--hold-ttl-secs", "2"),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_taquilla"));
    cmd.args(["bench", "flash-sale", "--json"]);
    for (flag, value) in defaults {
        if !args.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    let out = cmd.args(args).output().expect("running taquilla bench flash-sale");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}, {}): {stdout}\nstderr: {stderr}", out.status));
    (out.status.success(), report)
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// What every run must show: the audit passed, nothing oversold or lost, codes unique, every
/// buyer within the limit, nothing left held, no 5xx and no transport error.
fn assert_clean(r: &Value) {
    assert_eq!(r["passed"], Value::Bool(true), "{r:#}");
    assert_eq!(u(r, "/oversold"), 0);
    assert_eq!(u(r, "/lost_acknowledged"), 0);
    assert_eq!(u(r, "/audit/duplicate_ticket_codes"), 0);
    assert_eq!(u(r, "/audit/buyers_over_limit"), 0);
    assert_eq!(u(r, "/audit/held_at_end"), 0);
    assert_eq!(u(r, "/server_errors"), 0);
    assert_eq!(u(r, "/transport_errors"), 0);
    let statuses = r["errors_by_status"].as_object().expect("errors_by_status");
    assert!(
        statuses.keys().all(|s| !s.starts_with('5')),
        "5xx answers: {statuses:?}"
    );
    assert!(r["audit"]["failures"].as_array().is_some_and(Vec::is_empty), "{r:#}");
    // The stats and the feed agree on what was sold.
    assert_eq!(u(r, "/audit/sold"), u(r, "/audit/sold_in_feed"));
    for op in ["read", "hold", "checkout", "pay"] {
        assert!(u(r, &format!("/latency_ms/{op}/count")) > 0, "no {op} measured");
    }
}

#[test]
fn a_crowd_sells_out_the_sale_exactly_and_the_audit_holds() {
    let r = bench(&["--tickets", "500", "--buyers", "2000", "--seed", "7"]);
    assert_clean(&r);
    // Demand (what paying buyers want) is far above capacity: everything sells, no more.
    assert!(u(&r, "/demand") > u(&r, "/capacity"));
    assert_eq!(u(&r, "/capacity"), 500);
    assert_eq!(u(&r, "/sold"), 500);
    // The run exercised what the audit checks: releases, real expiries, refused excess.
    assert!(u(&r, "/audit/holds_released") > 0, "{r:#}");
    assert!(u(&r, "/audit/holds_expired") > 0, "{r:#}");
    assert!(u(&r, "/buyers/greedy_refused") > 0, "{r:#}");
    assert_eq!(u(&r, "/buyers/greedy_accepted"), 0);
    assert_eq!(u(&r, "/audit/orders_paid"), u(&r, "/buyers/bought"));
    assert_eq!(u(&r, "/buyers/unfinished"), 0);
    // Closed loop: ops/s is the rush (the crowd's pass); expiries came after it, so some
    // requests were paced by them.
    let rush = u(&r, "/rush_requests");
    let rush_secs = r["rush_secs"].as_f64().expect("rush_secs");
    assert!(rush > 0 && rush < u(&r, "/requests"), "{r:#}");
    assert!(rush_secs > 0.0 && rush_secs <= r["busy_secs"].as_f64().expect("busy_secs"));
    let ops = r["ops_per_sec"].as_f64().expect("ops_per_sec");
    assert!((ops - rush as f64 / rush_secs).abs() < 1e-6 * ops.max(1.0), "{r:#}");
    // Self-hosted: the server's and the bench's own CPU time were read for both phases.
    for f in [
        "/server_cpu_us_per_op",
        "/server_cpu_us_per_ceiling_request",
        "/server_cpu_ratio",
        "/client_cpu_ratio",
    ] {
        assert!(
            r.pointer(f).and_then(Value::as_f64).is_some_and(|v| v > 0.0),
            "{f}: {r:#}"
        );
    }
    // Both sides' CPU, in the rush and in the ceiling: per request, and as cores kept busy
    // (CPU time over wall time, so at most the machine's cores, with a tick's slack).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for phase in ["cpu_scenario", "cpu_ceiling"] {
        for side in ["server", "client"] {
            let per_request = r[phase][format!("{side}_us_per_request")].as_f64();
            let busy = r[phase][format!("{side}_cores_busy")].as_f64();
            assert!(per_request.is_some_and(|v| v > 0.0), "{phase}.{side}: {r:#}");
            assert!(
                busy.is_some_and(|v| v > 0.0 && v <= cores + 0.5),
                "{phase}.{side}: {r:#}"
            );
        }
    }
}

#[test]
fn when_demand_is_below_capacity_every_paying_buyer_gets_what_they_wanted() {
    let r = bench(&["--tickets", "1000", "--buyers", "150", "--seed", "3"]);
    assert_clean(&r);
    let demand = u(&r, "/demand");
    assert!(demand < 1000);
    assert_eq!(u(&r, "/sold"), demand);
}

#[test]
fn the_open_loop_paces_requests_and_still_passes_the_audit() {
    let r = bench(&["--tickets", "200", "--buyers", "600", "--rate", "2000", "--seed", "11"]);
    assert_clean(&r);
    assert_eq!(r["config"]["mode"], "open");
    // The open loop's rate is set by --rate: no rush, ops/s is over the busy time.
    assert!(r["rush_secs"].is_null(), "{r:#}");
    assert_eq!(r["ops_per_sec"], r["busy_ops_per_sec"]);
    assert_eq!(u(&r, "/sold"), 200);
}

#[test]
fn a_crowd_still_at_the_door_at_the_deadline_gives_up_and_the_run_fails_instead_of_hanging() {
    // Two connections cannot take 20,000 buyers through in a second: at the deadline the
    // door closes, everyone still outside gives up, and the bench says the run failed.
    let (ok, r) = bench_outcome(&[
        "--tickets",
        "20000",
        "--buyers",
        "20000",
        "--connections",
        "2",
        "--timeout-secs",
        "1",
    ]);
    assert!(!ok, "{r:#}");
    assert_eq!(r["passed"], Value::Bool(false));
    let b = &r["buyers"];
    let ended = [
        "bought",
        "abandoned",
        "expired",
        "left_sold_out",
        "gave_up",
        "unfinished",
    ]
    .iter()
    .map(|k| u(b, &format!("/{k}")))
    .sum::<u64>();
    assert_eq!(ended, 20_000, "every buyer is accounted for: {b:#}");
    assert!(u(b, "/gave_up") > 10_000, "most never got in: {b:#}");
    // What was sold before the deadline is still audited: nothing oversold or lost.
    assert_eq!(u(&r, "/oversold"), 0);
    assert_eq!(u(&r, "/lost_acknowledged"), 0);
}

/// The payments block, and what every `--payments simulated` run must show in it.
fn assert_payments_clean(r: &Value) {
    assert_eq!(r["config"]["payments"], "simulated", "{r:#}");
    assert_eq!(u(r, "/payments/double_captured"), 0, "{r:#}");
    assert_eq!(u(r, "/payments/non_terminal"), 0, "{r:#}");
    // Every paid order has its one capture, and every buyer who bought saw it paid.
    assert!(u(r, "/payments/captured") > 0, "{r:#}");
    assert_eq!(u(r, "/payments/captured"), u(r, "/audit/orders_paid"), "{r:#}");
    assert_eq!(u(r, "/audit/orders_paid"), u(r, "/buyers/bought"), "{r:#}");
    assert_eq!(u(r, "/payments/declined"), u(r, "/buyers/declines_seen"), "{r:#}");
    assert_eq!(r["payments"], r["audit"]["payments"]);
    // Buyers polled their orders: recorded, answered, but not counted as requests.
    let polls = u(r, "/polls");
    assert!(polls > 0, "{r:#}");
    assert_eq!(u(r, "/latency_ms/order_status/count"), polls);
    let answered: u64 = r["status_counts"]
        .as_object()
        .expect("status_counts")
        .values()
        .map(|v| v.as_u64().expect("a count"))
        .sum();
    assert_eq!(answered, u(r, "/requests") + polls, "{r:#}");
}

#[test]
fn simulated_payments_capture_each_paid_order_once_and_leave_none_pending() {
    // The provider's latency is cut to keep the test short; the flow is the bench's:
    // `Prefer: wait=0`, polls, the saga in between.
    let r = bench(&[
        "--tickets",
        "300",
        "--buyers",
        "1000",
        "--seed",
        "5",
        "--payments",
        "simulated",
        "--simulated-latency-ms",
        "5..40",
    ]);
    assert_clean(&r);
    assert_payments_clean(&r);
    assert_eq!(u(&r, "/sold"), 300);
    // The pay requests answered 202 at once (`Prefer: wait=0`), not 200 after waiting.
    assert!(u(&r, "/status_counts/202") >= u(&r, "/payments/captured"), "{r:#}");
}

#[test]
fn declined_payments_are_paid_again_then_cancelled_and_the_sale_still_sells_out_exactly() {
    // Half the payments declined, two attempts each: a quarter of the paying buyers cancel.
    let r = bench(&[
        "--tickets",
        "300",
        "--buyers",
        "1000",
        "--seed",
        "9",
        "--payments",
        "simulated",
        "--simulated-latency-ms",
        "5..40",
        "--simulated-decline-percent",
        "50",
        "--pay-attempts",
        "2",
    ]);
    assert_clean(&r);
    assert_payments_clean(&r);
    assert!(u(&r, "/payments/declined") > 0, "{r:#}");
    assert!(u(&r, "/buyers/declined_out") > 0, "{r:#}");
    assert!(
        u(&r, "/latency_ms/cancel/count") >= u(&r, "/buyers/declined_out"),
        "{r:#}"
    );
    // The cancelled orders' tickets went back and were sold to others.
    assert_eq!(u(&r, "/sold"), 300);
}

#[test]
fn a_simulated_provider_flag_without_simulated_payments_is_refused() {
    // Refused before anything starts, rather than ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_taquilla"))
        .args(["bench", "flash-sale", "--simulated-latency-ms", "5..40"])
        .output()
        .expect("running taquilla bench flash-sale");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--payments simulated"), "{stderr}");
}
