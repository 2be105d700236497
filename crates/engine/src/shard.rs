//! One shard writer: the only thread that changes its sales.
//!
//! Its loop is the first half of group commit: take every queued message (up to `batch_max`
//! commands), decide and evolve each command on its sale, encode each command's events as one
//! log record, append the batch, and pass the batch's replies to the flusher (`flusher.rs`),
//! which sends them after the fsync that covers them. The shard does not wait for that fsync:
//! it decides the next batch meanwhile.
//!
//! If the thread panics (a bug, e.g. `evolve` meeting an impossible event), a guard marks the
//! engine failed while it unwinds, before the batch's replies are dropped: their callers hear
//! `Stopped`, and nothing that was not appended and flushed is ever acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use compact_str::CompactString;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};
use taquilla_domain::{
    Command, Ctx, Entropy, Rejection, SaleId, SaleState, TicketCode, Timestamp, codec, decide, evolve,
};
use taquilla_log::file::frame;
use taquilla_log::{Append, EventLog, LogError, Lsn};

use crate::flusher::Durable;
use crate::limits::{
    DUE_ROUNDS_MAX, FLUSH_QUEUE_BATCHES, IDLE_WAIT_MS_MAX, LOG_RESERVE_CHUNK_BYTES, STORAGE_FULL_RETRY_MS,
};
use crate::snapshotter;
use crate::{BatchReply, CommandResult, EngineError, Envelope, Msg, Reply, SaleCell, Shared};

const IDLE_WAIT_MAX: Duration = Duration::from_millis(IDLE_WAIT_MS_MAX);

/// The writer's bookkeeping of one sale it owns: the cell readers see, and where the sale
/// stands in the log.
pub(crate) struct OwnedSale {
    pub sale: SaleId,
    pub cell: Arc<SaleCell>,
    /// The seq the sale's next record gets: its records so far, plus one. Contiguous: it
    /// moves forward by one per record, and the cell's version follows it.
    next_seq: u64,
    records_since_snapshot: u64,
    /// The lsn of the sale's last record this shard appended (0: none since start).
    last_lsn: u64,
    /// Whether the snapshot thread is working on this sale.
    snapshot_in_flight: bool,
    /// A snapshot is asked for once `records_since_snapshot` reaches this: the configured
    /// interval, moved on by another interval when the snapshot thread gave up.
    snapshot_due_at: u64,
}

impl OwnedSale {
    /// A sale rebuilt by recovery, whose log holds `next_seq - 1` records.
    pub(crate) fn recovered(
        sale: SaleId,
        next_seq: u64,
        records_since_snapshot: u64,
        state: SaleState,
        snapshot_every: u64,
    ) -> OwnedSale {
        assert!(next_seq >= 1, "seqs start at 1");
        OwnedSale {
            sale,
            cell: Arc::new(SaleCell::new(state, next_seq)),
            next_seq,
            records_since_snapshot,
            last_lsn: 0,
            snapshot_in_flight: false,
            snapshot_due_at: snapshot_every,
        }
    }

    /// A sale about to be created: no record yet.
    fn new_sale(sale: SaleId, idempotency_ttl_ms: u64, snapshot_every: u64) -> OwnedSale {
        OwnedSale::recovered(
            sale,
            1,
            0,
            SaleState::with_idempotency_ttl_ms(idempotency_ttl_ms),
            snapshot_every,
        )
    }
}

/// Marks the engine failed if the thread it lives on panics. Declared after everything that
/// holds replies, so it runs first while unwinding: whoever hears `Stopped` also sees why.
pub(crate) struct FailOnPanic {
    pub shared: Arc<Shared>,
    pub thread: &'static str,
    pub shard: usize,
}

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.failed.store(true, Ordering::Release);
            tracing::error!(
                shard = self.shard,
                thread = self.thread,
                "a thread of the engine panicked: the engine stops"
            );
        }
    }
}

/// Ticket codes are bearer secrets: a CSPRNG seeded from the OS.
struct OsEntropy(StdRng);

impl Entropy for OsEntropy {
    fn ticket_code(&mut self) -> TicketCode {
        TicketCode(self.0.random::<u128>())
    }
}

struct PendingRecord {
    sale: SaleId,
    seq: u64,
    payload_start: usize,
    payload_end: usize,
    correlation_id: Option<CompactString>,
}

pub(crate) enum PendingReply {
    One(Reply, CommandResult),
    Many(BatchReply, Vec<CommandResult>),
    Tick(tokio::sync::oneshot::Sender<()>),
}

impl PendingReply {
    /// Sends the decided result. A caller that went away (e.g. a closed HTTP connection) is
    /// not an error.
    pub(crate) fn send(self) {
        match self {
            PendingReply::One(tx, res) => {
                let _ = tx.send(res);
            }
            PendingReply::Many(tx, res) => {
                let _ = tx.send(res);
            }
            PendingReply::Tick(tx) => {
                let _ = tx.send(());
            }
        }
    }

    /// Tells the caller the command may not be durable: nothing is acknowledged.
    pub(crate) fn fail(self, why: EngineError) {
        match self {
            PendingReply::One(tx, _) => {
                let _ = tx.send(Err(why));
            }
            PendingReply::Many(tx, res) => {
                let _ = tx.send(res.into_iter().map(|_| Err(EngineError::Stopped)).collect());
            }
            PendingReply::Tick(_) => {}
        }
    }
}

/// Log space a shard claimed ([`EventLog::reserve`]) for the batch it is deciding, in chunks,
/// and how much of it the batch's records take (counted at their largest frame size).
#[derive(Default)]
struct Reservation {
    claimed: u64,
    used: u64,
    /// A claim failed for lack of space in this batch: the batch's later commands are refused
    /// at once rather than each trying again (the next batch tries once more).
    full: bool,
}

impl Reservation {
    fn unused(&self) -> u64 {
        self.claimed - self.used
    }

    /// Claims at least `need` more bytes. On a full disk the command is refused with
    /// `StorageFull` and nothing changes; the first refusal and the first claim after it are
    /// logged, and the engine's `storage_full` flag follows them.
    fn claim(&mut self, log: &dyn EventLog, need: u64, shared: &Shared) -> Result<(), EngineError> {
        if self.full {
            return Err(EngineError::StorageFull);
        }
        // A chunk at a time, small beside a segment (a claim that does not fit rolls).
        let chunk = LOG_RESERVE_CHUNK_BYTES.min(shared.config.segment_size_bytes / 16);
        let bytes = need.max(chunk);
        match log.reserve(bytes) {
            Ok(()) => {
                self.claimed += bytes;
                if shared.storage_full.swap(false, Ordering::AcqRel) {
                    tracing::info!("the log has space again: writes are taken again");
                }
                Ok(())
            }
            Err(LogError::StorageFull(e)) => {
                self.full = true;
                if !shared.storage_full.swap(true, Ordering::AcqRel) {
                    tracing::error!(error = %e, "the disk is full: writes are refused (503 storage_full) until space returns; reads go on");
                }
                metrics::counter!("taquilla_storage_full_refusals_total").increment(1);
                Err(EngineError::StorageFull)
            }
            Err(e) => Err(EngineError::Log(e)),
        }
    }

    /// Hands the claim back (with the batch's append) and starts the next batch afresh.
    fn take(&mut self) -> u64 {
        let claimed = self.claimed;
        *self = Reservation::default();
        claimed
    }
}

struct Shard {
    id: usize,
    shared: Arc<Shared>,
    sales: FxHashMap<SaleId, OwnedSale>,
    /// Next deadline of each sale that has one, ordered by time.
    schedule: BTreeSet<(Timestamp, SaleId)>,
    scheduled: FxHashMap<SaleId, Timestamp>,
    entropy: OsEntropy,
    // Buffers reused from batch to batch.
    payload: Vec<u8>,
    records: Vec<PendingRecord>,
    replies: Vec<PendingReply>,
    touched: FxHashSet<SaleId>,
    /// Where appended batches' replies go to wait for their fsync.
    flusher: Sender<Durable>,
    /// The last LSN this shard appended.
    last_appended: Lsn,
    /// The last LSN this shard asked the flusher to make durable.
    handed_to_flusher: Lsn,
    /// Log space claimed for this batch's records.
    reserve: Reservation,
    /// Where snapshot requests go, and where their outcomes come back.
    snapshotter: Sender<snapshotter::Msg>,
    snapshots_done: (Sender<snapshotter::Done>, Receiver<snapshotter::Done>),
}

pub(crate) fn run(
    id: usize,
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    owned: Vec<OwnedSale>,
    snapshotter: Sender<snapshotter::Msg>,
) {
    let (flush_tx, flush_rx) = crossbeam_channel::bounded(FLUSH_QUEUE_BATCHES);
    let flusher_shared = shared.clone();
    let flusher = match std::thread::Builder::new()
        .name(format!("taquilla-flush-{id}"))
        .spawn(move || crate::flusher::run(id, flusher_shared, flush_rx))
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(shard = id, error = %e, "cannot start the flusher thread");
            shared.failed.store(true, Ordering::Release);
            return;
        }
    };
    let last_appended = shared.log.last_lsn();
    let mut shard = Shard {
        id,
        shared: shared.clone(),
        sales: FxHashMap::default(),
        schedule: BTreeSet::new(),
        scheduled: FxHashMap::default(),
        entropy: OsEntropy(StdRng::from_os_rng()),
        payload: Vec::with_capacity(1 << 20),
        records: Vec::new(),
        replies: Vec::new(),
        touched: FxHashSet::default(),
        flusher: flush_tx,
        last_appended,
        handed_to_flusher: last_appended,
        reserve: Reservation::default(),
        snapshotter,
        // Unbounded, yet bounded by construction: one outcome per request in flight, at most
        // one request per sale.
        snapshots_done: crossbeam_channel::unbounded(),
    };
    for o in owned {
        let sale = o.sale;
        shard.sales.insert(sale, o);
        shard.reschedule(sale);
    }
    let _fail_on_panic = FailOnPanic {
        shared,
        thread: "shard",
        shard: id,
    };
    shard.run_loop(&rx);
    // Closing the channel lets the flusher answer what it holds and exit; joining it means
    // every reply was sent before `Engine::stop` returns.
    drop(shard);
    if flusher.join().is_err() {
        tracing::error!(shard = id, "the flusher thread panicked");
    }
}

impl Shard {
    fn run_loop(&mut self, rx: &Receiver<Msg>) {
        let batch_max = self.shared.config.batch_max;
        loop {
            if self.shared.failed.load(Ordering::Acquire) {
                return;
            }
            let wait = self.wait_for_next_deadline();
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now = self.shared.clock.now();
            let mut commands = 0;
            let mut stop = false;
            if let Some(m) = first {
                stop |= matches!(m, Msg::Stop);
                commands += self.handle(m, now);
            }
            while commands < batch_max && !stop {
                match rx.try_recv() {
                    Ok(m) => {
                        stop |= matches!(m, Msg::Stop);
                        commands += self.handle(m, now);
                    }
                    Err(_) => break,
                }
            }
            self.run_due(now);
            if let Err(e) = self.commit(commands) {
                tracing::error!(shard = self.id, error = %e, "log failure: the engine stops");
                self.shared.failed.store(true, Ordering::Release);
                return;
            }
            self.request_snapshots();
            if stop {
                break;
            }
        }
        if self.shared.config.snapshot_on_shutdown {
            self.snapshot_on_shutdown();
        }
    }

    fn wait_for_next_deadline(&self) -> Duration {
        match self.schedule.first() {
            None => IDLE_WAIT_MAX,
            Some((t, _)) => {
                let now = self.shared.clock.now();
                let ms = (t.0 - now.0).clamp(0, IDLE_WAIT_MAX.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
        }
    }

    /// Applies one message; returns how many commands it carried.
    fn handle(&mut self, msg: Msg, now: Timestamp) -> usize {
        match msg {
            Msg::One(env, reply) => {
                let r = self.apply(env, now);
                self.replies.push(PendingReply::One(reply, r));
                1
            }
            Msg::Many(envs, reply) => {
                let n = envs.len();
                let results = envs.into_iter().map(|e| self.apply(e, now)).collect();
                self.replies.push(PendingReply::Many(reply, results));
                n
            }
            Msg::Create(env, reply) => {
                let r = self.create(env, now);
                self.replies.push(PendingReply::One(reply, r));
                1
            }
            Msg::Tick(done) => {
                self.replies.push(PendingReply::Tick(done));
                0
            }
            Msg::Stop => 0,
        }
    }

    /// Creates the sale `env` names and decides its `CreateSale`. The sale's cell is entered
    /// among the engine's sales first, under the write lock that also checks the limit, so
    /// concurrent creations on several shards never pass `sales_max`. Until `SaleCreated` is
    /// applied its state has no sale record, which readers answer as not found.
    fn create(&mut self, env: Envelope, now: Timestamp) -> CommandResult {
        let sale = env.sale;
        if self.sales.contains_key(&sale) {
            return Err(EngineError::Rejected(Rejection::AlreadyExists));
        }
        let config = &self.shared.config;
        let owned = OwnedSale::new_sale(sale, config.idempotency_ttl_ms, config.snapshot_every_records);
        {
            let mut cells = self.shared.sales.write();
            if cells.len() >= self.shared.config.sales_max {
                return Err(EngineError::TooManySales);
            }
            cells.insert(sale, owned.cell.clone());
        }
        self.sales.insert(sale, owned);
        let r = self.apply(env, now);
        if r.is_err() {
            self.sales.remove(&sale);
            self.shared.sales.write().remove(&sale);
        }
        r
    }

    fn apply(&mut self, env: Envelope, now: Timestamp) -> CommandResult {
        let Some(owned) = self.sales.get_mut(&env.sale) else {
            return Err(EngineError::SaleNotFound);
        };
        let mut state = owned.cell.state.write();
        let mut ctx = Ctx {
            now,
            entropy: &mut self.entropy,
            correlation_id: env.correlation_id.as_deref(),
        };
        let decision = decide(&state, env.command, &mut ctx)?;
        if !decision.events.is_empty() {
            let payload_start = self.payload.len();
            codec::encode_events(&decision.events, &mut self.payload);
            // The record must fit in log space already claimed before the state changes: the
            // state never holds an effect the log could not take.
            let need = frame::encoded_len_max(
                self.payload.len() - payload_start,
                env.correlation_id.as_deref().map_or(0, str::len),
            ) as u64;
            if need > self.reserve.unused()
                && let Err(e) = self.reserve.claim(self.shared.log.as_ref(), need, &self.shared)
            {
                self.payload.truncate(payload_start);
                return Err(e);
            }
            self.reserve.used += need;
            self.records.push(PendingRecord {
                sale: env.sale,
                seq: owned.next_seq,
                payload_start,
                payload_end: self.payload.len(),
                correlation_id: env.correlation_id,
            });
            // Seqs are contiguous and the version names the state: both move by one record.
            // Only this thread stores the version, so a relaxed load reads its own store.
            assert_eq!(
                owned.cell.version.load(Ordering::Relaxed),
                owned.next_seq,
                "sale {} version out of step with its seq",
                env.sale.0
            );
            owned.next_seq += 1;
            owned.records_since_snapshot += 1;
            for e in &decision.events {
                evolve(&mut state, e);
            }
            owned.cell.version.store(owned.next_seq, Ordering::Release);
            self.touched.insert(env.sale);
        }
        Ok(decision.outcome)
    }

    /// Runs the timers that are due: per sale whose next timer has passed, `ExpireDue` when a
    /// hold or order deadline passed and `RoomTick` when its waiting room's tick is due,
    /// repeated while more than one command's worth is due.
    fn run_due(&mut self, now: Timestamp) {
        // Sales whose timer found the disk full, or kept coming due without progress (a bug:
        // logged), are tried again after a pause rather than spinning.
        let mut postponed = Vec::new();
        let mut rounds: FxHashMap<SaleId, usize> = FxHashMap::default();
        while let Some(&(t, sale)) = self.schedule.first() {
            if t > now {
                break;
            }
            self.schedule.pop_first();
            self.scheduled.remove(&sale);
            let round = rounds.entry(sale).or_default();
            *round += 1;
            if *round > DUE_ROUNDS_MAX {
                tracing::error!(sale = sale.0, "a timer stays due without progress");
                postponed.push(sale);
                continue;
            }
            match self.run_timers(sale, now) {
                Ok(()) => self.reschedule(sale),
                Err(EngineError::StorageFull) => postponed.push(sale),
                Err(e) => tracing::error!(sale = sale.0, error = %e, "timer command rejected"),
            }
        }
        // Not at once (the loop would spin on a full disk): after a pause.
        let retry_at = Timestamp(now.0 + STORAGE_FULL_RETRY_MS as i64);
        for sale in postponed {
            self.schedule.insert((retry_at, sale));
            self.scheduled.insert(sale, retry_at);
        }
    }

    /// The timer commands due for `sale` at `now`.
    fn run_timers(&mut self, sale: SaleId, now: Timestamp) -> Result<(), EngineError> {
        let (expire, tick) = match self.sales.get(&sale) {
            Some(o) => {
                let state = o.cell.state.read();
                let due = |t: Option<Timestamp>| t.is_some_and(|t| t <= now);
                (
                    due(state.next_deadline()),
                    due(taquilla_domain::room::next_tick(&state)),
                )
            }
            None => return Ok(()),
        };
        for (run, command) in [(expire, Command::ExpireDue), (tick, Command::RoomTick)] {
            if run {
                let env = Envelope {
                    sale,
                    command,
                    correlation_id: None,
                };
                self.apply(env, now)?;
            }
        }
        Ok(())
    }

    fn reschedule(&mut self, sale: SaleId) {
        let next = self.sales.get(&sale).and_then(|o| o.cell.state.read().next_timer());
        if let Some(old) = self.scheduled.remove(&sale) {
            self.schedule.remove(&(old, sale));
        }
        if let Some(t) = next {
            self.schedule.insert((t, sale));
            self.scheduled.insert(sale, t);
        }
    }

    /// Appends the batch's records and hands its replies to the flusher, which sends them
    /// once everything appended so far is durable.
    fn commit(&mut self, commands: usize) -> Result<(), EngineError> {
        let touched: Vec<SaleId> = self.touched.drain().collect();
        for sale in touched {
            self.reschedule(sale);
        }
        let appended = self.append();
        self.payload.clear();
        self.records.clear();
        if let Err(e) = appended {
            self.shared.failed.store(true, Ordering::Release);
            for r in self.replies.drain(..) {
                r.fail(EngineError::Stopped);
            }
            return Err(e);
        }
        self.shared.stats.commands.fetch_add(commands as u64, Ordering::Relaxed);
        if commands > 0 {
            self.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
            metrics::histogram!("taquilla_batch_commands").record(commands as f64);
        }
        // A batch of timer expiries has records but no replies: it is flushed all the same,
        // so that readers of the log see it without waiting for the next command.
        if !self.replies.is_empty() || self.last_appended > self.handed_to_flusher {
            self.handed_to_flusher = self.last_appended;
            let replies = std::mem::take(&mut self.replies);
            let durable = Durable {
                upto: self.last_appended,
                replies,
            };
            if let Err(lost) = self.flusher.send(durable) {
                // The flusher only exits when this shard drops its sender.
                for r in lost.into_inner().replies {
                    r.fail(EngineError::Stopped);
                }
                return Err(EngineError::Stopped);
            }
        }
        Ok(())
    }

    fn append(&mut self) -> Result<(), EngineError> {
        if self.records.is_empty() {
            let unused = self.reserve.take();
            if unused > 0 {
                self.shared.log.append_reserved(&[], unused)?;
            }
            return Ok(());
        }
        let now_ms = self.shared.clock.now().0;
        let appends: Vec<Append<'_>> = self
            .records
            .iter()
            .map(|r| Append {
                partition: r.sale.0,
                expected_seq: r.seq,
                timestamp_ms: now_ms,
                correlation_id: r.correlation_id.as_deref(),
                payload: &self.payload[r.payload_start..r.payload_end],
            })
            .collect();
        // The claim covers every record (checked as each was decided), so this cannot fail
        // for lack of space; if it fails at all the engine stops, as the state holds them.
        let last = self.shared.log.append_reserved(&appends, self.reserve.take())?;
        drop(appends);
        // The log gives a batch contiguous lsns after everything this shard appended before.
        let count = self.records.len() as u64;
        assert!(
            last >= count && last - count >= self.last_appended,
            "append returned lsn {last} for {count} records after lsn {}",
            self.last_appended
        );
        self.shared
            .stats
            .records
            .fetch_add(self.records.len() as u64, Ordering::Relaxed);
        metrics::histogram!("taquilla_batch_records").record(self.records.len() as f64);
        self.last_appended = last;
        let first = last + 1 - count;
        for (i, r) in self.records.iter().enumerate() {
            if let Some(o) = self.sales.get_mut(&r.sale) {
                o.last_lsn = first + i as u64;
            }
        }
        Ok(())
    }

    /// Reads what the snapshot thread finished, then asks it for every sale whose snapshot is
    /// due and not already under way. Never waits: a full or closed channel just means asking
    /// again after a later batch.
    fn request_snapshots(&mut self) {
        while let Ok(done) = self.snapshots_done.1.try_recv() {
            let (snapshotter::Done::Saved { sale, .. } | snapshotter::Done::GaveUp { sale }) = done;
            let every = self.shared.config.snapshot_every_records;
            let Some(p) = self.sales.get_mut(&sale) else { continue };
            assert!(
                p.snapshot_in_flight,
                "sale {}: a snapshot outcome nobody asked for",
                sale.0
            );
            p.snapshot_in_flight = false;
            match done {
                snapshotter::Done::Saved { seq, .. } => {
                    // The snapshot covers durable records only, never past what was appended.
                    assert!(
                        seq < p.next_seq,
                        "sale {}: snapshot past seq {}",
                        sale.0,
                        p.next_seq - 1
                    );
                    p.records_since_snapshot = p.records_since_snapshot.min(p.next_seq - 1 - seq);
                    p.snapshot_due_at = every;
                }
                snapshotter::Done::GaveUp { .. } => {
                    p.snapshot_due_at = p.records_since_snapshot.saturating_add(every);
                }
            }
        }
        for (sale, p) in self.sales.iter_mut() {
            if p.snapshot_in_flight || p.records_since_snapshot < p.snapshot_due_at {
                continue;
            }
            let msg = snapshotter::Msg::Snapshot {
                sale: *sale,
                upto: p.last_lsn,
                done: self.snapshots_done.0.clone(),
            };
            if self.snapshotter.send(msg).is_ok() {
                p.snapshot_in_flight = true;
            }
        }
    }

    /// Snapshots every sale that changed since its last snapshot, here, on the way out (the
    /// snapshot thread has stopped, and no command waits any more). Flushes first, so a
    /// snapshot never holds non-durable state.
    fn snapshot_on_shutdown(&mut self) {
        for (sale, p) in self.sales.iter_mut() {
            if p.records_since_snapshot == 0 {
                continue;
            }
            // A snapshot must never hold what the log could still lose.
            if p.last_lsn > self.shared.log.durable_lsn()
                && let Err(e) = self.shared.log.flush(p.last_lsn)
            {
                tracing::warn!(sale = sale.0, error = %e, "cannot snapshot: flush failed");
                continue;
            }
            let bytes = match crate::recovery::encode_snapshot(&p.cell.state.read()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(sale = sale.0, error = %e, "snapshot encoding failed");
                    continue;
                }
            };
            let seq = p.next_seq - 1;
            let lsn = if p.last_lsn == 0 {
                self.shared.log.last_lsn()
            } else {
                p.last_lsn
            };
            match self.shared.snapshots.save(sale.0, seq, lsn, &bytes) {
                Ok(()) => {
                    p.records_since_snapshot = 0;
                    self.shared.stats.snapshots.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("taquilla_snapshots_total").increment(1);
                }
                Err(e) => tracing::warn!(sale = sale.0, error = %e, "snapshot failed; replay will be longer"),
            }
        }
    }
}
