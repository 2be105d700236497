//! Rebuilding every sale at start: load each partition's snapshot (a cache: one that is
//! unreadable or of another format is ignored and the log replayed instead), then replay the
//! log records each snapshot does not cover, then check the domain invariants.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use taquilla_domain::{Event, SaleId, SaleState, codec, evolve, invariants};
use taquilla_log::EventLog;
use taquilla_log::snapshot::SnapshotStore;

use crate::EngineError;

/// Version of the snapshot body (postcard of `SaleState`). Bump it whenever `SaleState` or
/// anything inside it changes shape: old snapshots are then ignored and the log replayed.
pub(crate) const SNAPSHOT_FORMAT: u8 = 1;

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

pub(crate) fn recover(
    log: &dyn EventLog,
    snapshots: &SnapshotStore,
) -> Result<(FxHashMap<SaleId, Recovered>, RecoveryStats), EngineError> {
    let started = Instant::now();
    let mut stats = RecoveryStats::default();
    let mut sales: FxHashMap<SaleId, Recovered> = FxHashMap::default();

    for partition in snapshots.list().map_err(|e| EngineError::Recovery(e.to_string()))? {
        let snap = match snapshots.load(partition) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(partition, error = %e, "snapshot unreadable; replaying the log instead");
                stats.snapshots_ignored += 1;
                continue;
            }
        };
        let Some(state) = decode_snapshot(&snap.bytes) else {
            tracing::warn!(partition, "snapshot of another format; replaying the log instead");
            stats.snapshots_ignored += 1;
            continue;
        };
        if snap.seq >= log.next_seq(partition) {
            // Snapshots are written only after their records are durable: the log lost data.
            return Err(EngineError::Recovery(format!(
                "sale {partition}: snapshot covers seq {} but the log ends at seq {}",
                snap.seq,
                log.next_seq(partition) - 1
            )));
        }
        stats.snapshots_loaded += 1;
        sales.insert(
            SaleId(partition),
            Recovered {
                state,
                seq: snap.seq,
                records_since_snapshot: 0,
            },
        );
    }

    stats.snapshot_duration = started.elapsed();
    let replay_started = Instant::now();
    let mut events: Vec<Event> = Vec::with_capacity(16);
    let mut failure: Option<EngineError> = None;
    log.scan(0, &mut |r| {
        stats.records_scanned += 1;
        let entry = sales.entry(SaleId(r.partition)).or_insert_with(|| Recovered {
            state: SaleState::default(),
            seq: 0,
            records_since_snapshot: 0,
        });
        if r.seq <= entry.seq {
            return true; // covered by the snapshot
        }
        if r.seq != entry.seq + 1 {
            failure = Some(EngineError::Recovery(format!(
                "sale {}: record at lsn {} has seq {}, expected {}",
                r.partition,
                r.lsn,
                r.seq,
                entry.seq + 1
            )));
            return false;
        }
        events.clear();
        if let Err(e) = codec::decode_events_into(r.payload, &mut events) {
            failure = Some(EngineError::Recovery(format!(
                "sale {}: record at lsn {}: {e}",
                r.partition, r.lsn
            )));
            return false;
        }
        for e in &events {
            evolve(&mut entry.state, e);
        }
        entry.seq = r.seq;
        entry.records_since_snapshot += 1;
        stats.records_replayed += 1;
        stats.events_replayed += events.len() as u64;
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    stats.replay_duration = replay_started.elapsed();
    let check_started = Instant::now();
    for (sale, rec) in &sales {
        if rec.seq + 1 != log.next_seq(sale.0) {
            return Err(EngineError::Recovery(format!(
                "sale {}: replayed up to seq {} but the log's next seq is {}",
                sale.0,
                rec.seq,
                log.next_seq(sale.0)
            )));
        }
        invariants::check(&rec.state)
            .map_err(|e| EngineError::Recovery(format!("sale {}: invariant broken after replay: {e}", sale.0)))?;
    }
    stats.check_duration = check_started.elapsed();
    stats.sales = sales.len();
    stats.duration = started.elapsed();
    Ok((sales, stats))
}
