//! Crash tests with a real process: `taquilla crash-workload` applies random commands under load and
//! prints each acknowledged one; we SIGKILL it at a random moment, many times, and after each
//! kill reopen the data directory and check that every acknowledged effect is there and every
//! invariant holds (recovery checks them on open; a broken one fails the open).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use taquilla_domain::{HoldId, HoldState, OrderId, OrderState, SaleId};
use taquilla_engine::{Engine, EngineConfig, SystemClock};

const KILLS: u64 = 25;

/// What the child acknowledged, per hold and order: the strongest fact seen so far.
#[derive(Default)]
struct Acked {
    sale: Option<SaleId>,
    holds: HashMap<u64, (String, u32)>,
    released: Vec<u64>,
    orders: HashMap<u64, u64>,
    paid: Vec<u64>,
    refunded: Vec<u64>,
    cancelled: Vec<u64>,
    lines: u64,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> u64 { f[i].parse().unwrap_or_else(|_| panic!("bad line {line:?}")) };
        match f[0] {
            "READY" => {
                let sale = SaleId(num(1));
                assert!(
                    self.sale.is_none_or(|s| s == sale),
                    "the sale changed id across restarts"
                );
                self.sale = Some(sale);
                return;
            }
            "HOLD" => {
                self.holds.insert(num(2), (f[3].to_string(), num(4) as u32));
            }
            "ORDER" => {
                self.orders.insert(num(2), num(3));
            }
            "RELEASED" => self.released.push(num(2)),
            "PAID" => self.paid.push(num(2)),
            "REFUNDED" => self.refunded.push(num(2)),
            "CANCELLED" => self.cancelled.push(num(2)),
            other => panic!("unknown line {other:?}"),
        }
        self.lines += 1;
    }
}

fn spawn_workload(dir: &Path, seed: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_taquilla"))
        .args(["crash-workload", "--data-dir"])
        .arg(dir)
        .args(["--seed", &seed.to_string(), "--max-secs", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn taquilla crash-workload")
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_command() {
    let seed: u64 = std::env::var("TAQUILLA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (set TAQUILLA_CRASH_SEED to repeat)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Acked::default();
    for round in 0..KILLS {
        let mut child = spawn_workload(dir.path(), seed.wrapping_add(round));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().expect("child printed nothing").expect("read");
        assert!(ready.starts_with("READY"), "first line {ready:?}");
        acked.record(&ready);
        // Kill after a random number of acknowledgements: sometimes at once, sometimes deep
        // in a burst, so the kill lands before, during and after fsyncs.
        let kill_after = if rng.random_bool(0.2) {
            0
        } else {
            rng.random_range(1..400)
        };
        let mut seen = 0;
        while seen < kill_after {
            match lines.next() {
                Some(Ok(l)) => {
                    acked.record(&l);
                    seen += 1;
                }
                _ => break,
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        // Lines already in the pipe were acknowledged before the kill: they count too.
        for l in lines.map_while(Result::ok) {
            acked.record(&l);
        }
        verify(dir.path(), &acked);
    }
    assert!(
        acked.lines > 100,
        "the child acknowledged too little to test anything: {}",
        acked.lines
    );
    assert!(
        !acked.paid.is_empty() && !acked.orders.is_empty(),
        "no order was paid: the workload is too thin"
    );
}

/// Every snapshot the killed child left reads back whole: a kill in the middle of one, while
/// its parts were being written, left the one before (recovery would silently replay the log
/// instead of a torn snapshot, so this is checked on the files themselves). Returns how many
/// half-written temp files the kill left.
fn verify_snapshots(dir: &Path) -> usize {
    let snapshots = dir.join("snapshots");
    let temps = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter(|e| taquilla_log::fsutil::is_temp_file(e.as_ref().unwrap().file_name().to_str().unwrap()))
        .count();
    let store = taquilla_log::snapshot::SnapshotStore::open(&snapshots).unwrap();
    for partition in store.list().unwrap() {
        let snap = store
            .load(partition)
            .unwrap_or_else(|e| panic!("snapshot {partition}: {e}"));
        assert!(snap.is_some(), "snapshot {partition} listed but gone");
    }
    temps
}

fn verify(dir: &Path, acked: &Acked) {
    let temps = verify_snapshots(dir);
    eprintln!("the kill left {temps} half-written snapshot(s)");
    let engine = Engine::open(dir, EngineConfig::default(), Arc::new(SystemClock)).expect("recovery after SIGKILL");
    let sale = acked.sale.expect("a sale");
    engine
        .read(sale, |s| {
            taquilla_domain::invariants::check(s).expect("invariants after recovery");
            // A hold is kept while active; one that ended (released, expired, checked out) is
            // gone from the table but counted as placed.
            for (hold, (buyer, qty)) in &acked.holds {
                match s.holds.get(&HoldId(*hold)) {
                    Some(h) => {
                        assert_eq!(h.state, HoldState::Active, "hold {hold}");
                        assert_eq!(h.buyer.as_str(), buyer, "hold {hold} buyer");
                        assert_eq!(h.quantity(), *qty, "hold {hold} quantity");
                    }
                    None => assert!(s.holds.ended(&HoldId(*hold)), "acknowledged hold {hold} lost"),
                }
            }
            for hold in &acked.released {
                assert!(s.holds.ended(&HoldId(*hold)), "hold {hold} released");
            }
            for (order, hold) in &acked.orders {
                let o = s
                    .orders
                    .get(&OrderId(*order))
                    .unwrap_or_else(|| panic!("acknowledged order {order} lost"));
                assert_eq!(o.hold, HoldId(*hold));
                assert!(s.holds.ended(&HoldId(*hold)), "hold {hold} checked out");
            }
            for order in &acked.paid {
                let st = s.orders[&OrderId(*order)].state;
                assert!(
                    matches!(st, OrderState::Paid | OrderState::Refunded | OrderState::RefundRequired),
                    "paid order {order} is {st:?}"
                );
            }
            for order in &acked.refunded {
                assert_eq!(s.orders[&OrderId(*order)].state, OrderState::Refunded, "order {order}");
            }
            for order in &acked.cancelled {
                assert_eq!(s.orders[&OrderId(*order)].state, OrderState::Cancelled, "order {order}");
            }
        })
        .expect("the sale survived");
    engine.shutdown();
}
