//! Rebuilding every sale at start: load each sale's snapshot (a cache: one that is unreadable
//! or of another format is ignored and the log replayed instead), then replay the log records
//! each snapshot does not cover, then check the domain invariants.
//!
//! Anything else that goes wrong is a [`RecoveryError`] naming the sale, lsn and seq, and the
//! engine does not start: a snapshot ahead of the log, a seq gap, a record that cannot be
//! decoded, an event `evolve` cannot apply (it panics on an impossible event; the panic is
//! caught here and reported, never left to hang or kill the caller), a broken invariant.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use taquilla_domain::codec::DecodeError;
use taquilla_domain::invariants::Violation;
use taquilla_domain::{Event, SaleId, SaleState, codec, evolve, invariants};
use taquilla_log::snapshot::{SnapshotError, SnapshotStore};
use taquilla_log::{EventLog, LogError, Lsn, RecordRef, Seq};

/// Version of the snapshot body (postcard of `SaleState`). Bump it whenever `SaleState` or
/// anything inside it changes shape: old snapshots are then ignored and the log replayed.
pub(crate) const SNAPSHOT_FORMAT: u8 = 4;

/// Why the engine could not rebuild its sales (or start) from the data directory.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("cannot open or list the snapshots")]
    Snapshots(#[source] SnapshotError),
    /// Snapshots are written only after their records are durable: the log lost data.
    #[error("sale {sale}: its snapshot covers seq {snapshot_seq}, but the log ends at seq {log_last_seq}")]
    SnapshotAheadOfLog {
        sale: u64,
        snapshot_seq: Seq,
        log_last_seq: Seq,
    },
    #[error("sale {sale}: the record at lsn {lsn} has seq {seq}, expected {expected}")]
    SeqGap {
        sale: u64,
        lsn: Lsn,
        seq: Seq,
        expected: Seq,
    },
    #[error("sale {sale}: replayed up to seq {replayed_seq}, but the log's next seq is {log_next_seq}")]
    ReplayIncomplete {
        sale: u64,
        replayed_seq: Seq,
        log_next_seq: Seq,
    },
    #[error("sale {sale}: the record at lsn {lsn} (seq {seq}) cannot be decoded")]
    Undecodable {
        sale: u64,
        lsn: Lsn,
        seq: Seq,
        #[source]
        source: DecodeError,
    },
    /// `evolve` refused an event of the record (it panicked; see `taquilla_domain::evolve`).
    #[error("sale {sale}: the record at lsn {lsn} (seq {seq}) cannot be applied: {message}")]
    ImpossibleEvent {
        sale: u64,
        lsn: Lsn,
        seq: Seq,
        message: String,
    },
    #[error("sale {sale}: an invariant is broken after replay")]
    Invariant {
        sale: u64,
        #[source]
        source: Violation,
    },
    #[error("cannot read the log")]
    Log(#[source] LogError),
    /// A panic outside `evolve` (a bug in a log implementation, say).
    #[error("recovery panicked: {message}")]
    Panicked { message: String },
    #[error("cannot start the thread {thread}")]
    Spawn {
        thread: String,
        #[source]
        source: std::io::Error,
    },
}

/// What recovery did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryStats {
    pub sales: usize,
    pub snapshots_loaded: usize,
    pub snapshots_ignored: usize,
    /// Records read from the log (all of it is read).
    pub records_scanned: u64,
    /// Records not covered by a snapshot, decoded and folded into state.
    pub records_replayed: u64,
    pub events_replayed: u64,
    /// Loading and decoding snapshots.
    pub snapshot_duration: Duration,
    /// Reading the log and folding the records snapshots do not cover.
    pub replay_duration: Duration,
    /// Checking every invariant of every rebuilt sale.
    pub check_duration: Duration,
    pub duration: Duration,
}

pub(crate) struct Recovered {
    pub state: SaleState,
    /// The last sequence number folded into `state`.
    pub seq: u64,
    pub records_since_snapshot: u64,
}

type Sales = FxHashMap<SaleId, Recovered>;

pub(crate) fn encode_snapshot(state: &SaleState) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = postcard::to_allocvec(state)?;
    bytes.insert(0, SNAPSHOT_FORMAT);
    Ok(bytes)
}

fn decode_snapshot(bytes: &[u8]) -> Option<SaleState> {
    let (&format, body) = bytes.split_first()?;
    if format != SNAPSHOT_FORMAT {
        return None;
    }
    postcard::from_bytes(body).ok()
}

/// Rebuilds every sale. `idempotency_ttl_ms` is configuration the fold needs (evolve forgets
/// keys older than it), so it is set on every state before anything is replayed into it.
pub(crate) fn recover(
    log: &dyn EventLog,
    snapshots: &SnapshotStore,
    idempotency_ttl_ms: u64,
) -> Result<(Sales, RecoveryStats), RecoveryError> {
    let started = Instant::now();
    let mut stats = RecoveryStats::default();
    let mut sales = load_snapshots(log, snapshots, idempotency_ttl_ms, &mut stats)?;
    stats.snapshot_duration = started.elapsed();
    let replay_started = Instant::now();
    replay_log(log, &mut sales, idempotency_ttl_ms, &mut stats)?;
    stats.replay_duration = replay_started.elapsed();
    let check_started = Instant::now();
    check_recovered(log, &sales)?;
    stats.check_duration = check_started.elapsed();
    stats.sales = sales.len();
    stats.duration = started.elapsed();
    Ok((sales, stats))
}

/// Every usable snapshot, checked against the log it must not be ahead of.
fn load_snapshots(
    log: &dyn EventLog,
    snapshots: &SnapshotStore,
    idempotency_ttl_ms: u64,
    stats: &mut RecoveryStats,
) -> Result<Sales, RecoveryError> {
    let mut sales = Sales::default();
    for sale_id in snapshots.list().map_err(RecoveryError::Snapshots)? {
        let snap = match snapshots.load(sale_id) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(sale = sale_id, error = %e, "snapshot unreadable; replaying the log instead");
                stats.snapshots_ignored += 1;
                continue;
            }
        };
        let Some(mut state) = decode_snapshot(&snap.bytes) else {
            tracing::warn!(sale = sale_id, "snapshot of another format; replaying the log instead");
            stats.snapshots_ignored += 1;
            continue;
        };
        let log_next_seq = log.next_seq(sale_id);
        if snap.seq >= log_next_seq {
            return Err(RecoveryError::SnapshotAheadOfLog {
                sale: sale_id,
                snapshot_seq: snap.seq,
                log_last_seq: log_next_seq - 1,
            });
        }
        state.idempotency.ttl_ms = idempotency_ttl_ms;
        stats.snapshots_loaded += 1;
        let recovered = Recovered {
            state,
            seq: snap.seq,
            records_since_snapshot: 0,
        };
        sales.insert(SaleId(sale_id), recovered);
    }
    Ok(sales)
}

/// Folds every record no snapshot covers into its sale. `evolve` panics on an impossible
/// event: the panic is caught and reported with the record it came from.
fn replay_log(
    log: &dyn EventLog,
    sales: &mut Sales,
    idempotency_ttl_ms: u64,
    stats: &mut RecoveryStats,
) -> Result<(), RecoveryError> {
    let mut events: Vec<Event> = Vec::with_capacity(16);
    let mut failure: Option<RecoveryError> = None;
    // The record being folded, while `evolve` runs on it.
    let mut applying: Option<(u64, Lsn, Seq)> = None;
    let scanned = std::panic::catch_unwind(AssertUnwindSafe(|| {
        log.scan(0, &mut |r| {
            stats.records_scanned += 1;
            match replay_record(sales, r, idempotency_ttl_ms, &mut events, &mut applying) {
                Ok(replayed) => {
                    stats.records_replayed += u64::from(replayed);
                    stats.events_replayed += if replayed { events.len() as u64 } else { 0 };
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })
    }));
    match scanned {
        Ok(Ok(())) => failure.map_or(Ok(()), Err),
        Ok(Err(e)) => Err(RecoveryError::Log(e)),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            Err(match applying {
                Some((sale, lsn, seq)) => RecoveryError::ImpossibleEvent {
                    sale,
                    lsn,
                    seq,
                    message,
                },
                None => RecoveryError::Panicked { message },
            })
        }
    }
}

/// Folds one record into its sale unless its snapshot covers it; true if it was folded.
fn replay_record(
    sales: &mut Sales,
    r: RecordRef<'_>,
    idempotency_ttl_ms: u64,
    events: &mut Vec<Event>,
    applying: &mut Option<(u64, Lsn, Seq)>,
) -> Result<bool, RecoveryError> {
    let entry = sales.entry(SaleId(r.partition)).or_insert_with(|| Recovered {
        state: SaleState::with_idempotency_ttl_ms(idempotency_ttl_ms),
        seq: 0,
        records_since_snapshot: 0,
    });
    if r.seq <= entry.seq {
        return Ok(false); // covered by the snapshot
    }
    if r.seq != entry.seq + 1 {
        return Err(RecoveryError::SeqGap {
            sale: r.partition,
            lsn: r.lsn,
            seq: r.seq,
            expected: entry.seq + 1,
        });
    }
    events.clear();
    codec::decode_events_into(r.payload, events).map_err(|source| RecoveryError::Undecodable {
        sale: r.partition,
        lsn: r.lsn,
        seq: r.seq,
        source,
    })?;
    *applying = Some((r.partition, r.lsn, r.seq));
    for e in events.iter() {
        evolve(&mut entry.state, e);
    }
    *applying = None;
    entry.seq = r.seq;
    entry.records_since_snapshot += 1;
    Ok(true)
}

/// One sale rebuilt off the shard thread, for a snapshot: its last snapshot (if usable) plus
/// the durable records after it.
pub(crate) struct Rebuilt {
    pub state: SaleState,
    /// The seq and lsn of the last record folded into `state`.
    pub seq: Seq,
    pub lsn: Lsn,
    /// The seq the snapshot it started from covered (0: none): `seq == base_seq` means
    /// nothing durable is newer than the snapshot on disk.
    pub base_seq: Seq,
}

/// Rebuilds `sale` from its snapshot and the durable log, as recovery would. Reads only durable records, so whatever it
/// returns may be snapshotted (invariant 3) without a flush.
pub(crate) fn rebuild_sale(
    log: &dyn EventLog,
    snapshots: &SnapshotStore,
    sale: SaleId,
    idempotency_ttl_ms: u64,
) -> Result<Rebuilt, RecoveryError> {
    let fresh = || SaleState::with_idempotency_ttl_ms(idempotency_ttl_ms);
    let (state, seq, lsn) = match snapshots.load(sale.0) {
        Ok(Some(snap)) => match decode_snapshot(&snap.bytes) {
            Some(mut state) => {
                state.idempotency.ttl_ms = idempotency_ttl_ms;
                (state, snap.seq, snap.lsn)
            }
            None => (fresh(), 0, 0),
        },
        // A snapshot is a cache: one that cannot be read is rebuilt from the whole log.
        Ok(None) | Err(SnapshotError::Corrupt { .. }) => (fresh(), 0, 0),
        Err(e) => return Err(RecoveryError::Snapshots(e)),
    };
    let first_seq = seq;
    let mut sales = Sales::default();
    sales.insert(
        sale,
        Recovered {
            state,
            seq,
            records_since_snapshot: 0,
        },
    );
    let mut last_lsn = lsn;
    let mut events: Vec<Event> = Vec::with_capacity(16);
    let mut failure: Option<RecoveryError> = None;
    let mut applying: Option<(u64, Lsn, Seq)> = None;
    let scanned = std::panic::catch_unwind(AssertUnwindSafe(|| {
        log.scan(lsn, &mut |r| {
            if r.partition != sale.0 {
                return true;
            }
            match replay_record(&mut sales, r, idempotency_ttl_ms, &mut events, &mut applying) {
                Ok(folded) => {
                    if folded {
                        last_lsn = r.lsn;
                    }
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })
    }));
    match scanned {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(RecoveryError::Log(e)),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            return Err(match applying {
                Some((sale, lsn, seq)) => RecoveryError::ImpossibleEvent {
                    sale,
                    lsn,
                    seq,
                    message,
                },
                None => RecoveryError::Panicked { message },
            });
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let rec = sales.remove(&sale).expect("the sale was inserted above");
    Ok(Rebuilt {
        state: rec.state,
        seq: rec.seq,
        lsn: last_lsn,
        base_seq: first_seq,
    })
}

/// Every sale was replayed to the log's end, and its invariants hold.
fn check_recovered(log: &dyn EventLog, sales: &Sales) -> Result<(), RecoveryError> {
    for (sale, rec) in sales {
        let log_next_seq = log.next_seq(sale.0);
        if rec.seq + 1 != log_next_seq {
            return Err(RecoveryError::ReplayIncomplete {
                sale: sale.0,
                replayed_seq: rec.seq,
                log_next_seq,
            });
        }
        invariants::check(&rec.state).map_err(|source| RecoveryError::Invariant { sale: sale.0, source })?;
    }
    Ok(())
}

/// The message a panic was raised with (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
