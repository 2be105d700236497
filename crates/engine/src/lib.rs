//! The engine: every sale is owned by exactly one shard writer thread (and stored in the log
//! as a partition of its own).
//!
//! A command travels: [`Engine::submit`] → the shard's **bounded** queue (full = an immediate
//! [`EngineError::Overloaded`], never a wait) → the shard takes everything queued, up to
//! `batch_max`, as one batch → for each command `decide` + `evolve` on the sale's state →
//! the batch's events are appended to the log as one record per command → the batch's replies
//! go to the shard's flusher thread, which makes everything appended so far durable with
//! **one** fsync and only then sends them. A reply therefore means durable. The shard decides
//! the next batch while the fsync runs (pipelined group commit).
//!
//! Reads ([`Engine::read`]) take the sale's read lock and never wait behind the queue or
//! the fsync. They may observe effects of the batch currently being made durable; nobody has
//! been told of those yet, and after a crash they are gone together with their replies.
//!
//! Hold and order deadlines live in the domain state (`SaleState::deadlines`); each shard keeps
//! a schedule of its sales' next deadlines and sends itself `ExpireDue` when one passes.
//!
//! A panic on a shard or flusher thread (a bug: `evolve` crashes on an impossible event)
//! marks the engine failed, like a fatal log error: every waiter hears `Stopped`, nothing not
//! yet durable is acknowledged, and [`Engine::has_failed`] tells the server to exit.
//!
//! Limits and the bounds of [`EngineConfig`] live in [`limits`].

mod clock;
mod flusher;
pub mod limits;
mod recovery;
mod shard;
mod snapshotter;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use compact_str::CompactString;
use crossbeam_channel::{Sender, TrySendError};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use taquilla_domain::{Command, CreateSale, Outcome, Rejection, SaleId, SaleState};
use taquilla_log::file::{FileLog, FileLogOptions};
use taquilla_log::snapshot::{SnapshotOptions, SnapshotStore};
use taquilla_log::{EventLog, LogError, RecoveryReport};

pub use clock::{Clock, Monotonic, PacedClock, SystemClock, SystemMonotonic};
#[cfg(feature = "test-util")]
pub use clock::{ManualClock, ManualMonotonic};
pub use limits::{FLUSH_QUEUE_BATCHES, SALES_MAX, SUBMIT_BATCH_MAX};
pub use recovery::{RecoveryError, RecoveryStats};

/// Limits and tuning. Every queue has a bound; [`EngineConfig::validate`] checks the bounds.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Shard writer threads (1..=`limits::SHARDS_MAX`). Sales are spread over them by id.
    pub shards: usize,
    /// Messages each shard's queue holds before `submit` answers `Overloaded`
    /// (1..=`limits::QUEUE_CAPACITY_MAX`).
    pub queue_capacity: usize,
    /// Commands one batch (one fsync) takes at most (1..=`limits::BATCH_COMMANDS_MAX`).
    pub batch_max: usize,
    /// A sale is snapshotted after this many records since its last snapshot.
    pub snapshot_every_records: u64,
    /// Snapshot every changed sale on a clean shutdown, so the next start replays little.
    pub snapshot_on_shutdown: bool,
    pub segment_size_bytes: u64,
    /// Sales this engine holds at most (1..=`limits::SALES_MAX`); one more is `TooManySales`.
    pub sales_max: usize,
    /// How long an idempotency key is remembered, on the engine's clock
    /// (`taquilla_domain::limits::IDEMPOTENCY_TTL_MS_MIN..=IDEMPOTENCY_TTL_MS_MAX`).
    pub idempotency_ttl_ms: u64,
    /// A snapshot is written and synced in parts of this many bytes, paced, so that a big
    /// sale's snapshot never queues more than this in front of the log's fsyncs
    /// (1..=`taquilla_log::limits::SNAPSHOT_MAX_BYTES`; used by [`Engine::open`]).
    pub snapshot_write_chunk_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: limits::SHARDS_DEFAULT,
            queue_capacity: limits::QUEUE_CAPACITY_DEFAULT,
            batch_max: limits::BATCH_COMMANDS_DEFAULT,
            snapshot_every_records: limits::SNAPSHOT_EVERY_RECORDS_DEFAULT,
            snapshot_on_shutdown: true,
            segment_size_bytes: taquilla_log::limits::SEGMENT_SIZE_BYTES_DEFAULT,
            sales_max: limits::SALES_MAX,
            idempotency_ttl_ms: taquilla_domain::limits::IDEMPOTENCY_TTL_MS_DEFAULT,
            snapshot_write_chunk_bytes: taquilla_log::limits::SNAPSHOT_WRITE_CHUNK_BYTES_DEFAULT,
        }
    }
}

impl EngineConfig {
    /// Checks every bound (see [`limits`]); [`Engine::start`] refuses a config that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=limits::SHARDS_MAX).contains(&self.shards) {
            return Err(ConfigError::Shards(self.shards));
        }
        if !(1..=limits::QUEUE_CAPACITY_MAX).contains(&self.queue_capacity) {
            return Err(ConfigError::QueueCapacity(self.queue_capacity));
        }
        if !(1..=limits::BATCH_COMMANDS_MAX).contains(&self.batch_max) {
            return Err(ConfigError::BatchMax(self.batch_max));
        }
        if !(1..=limits::SALES_MAX).contains(&self.sales_max) {
            return Err(ConfigError::SalesMax(self.sales_max));
        }
        let ttl = taquilla_domain::limits::IDEMPOTENCY_TTL_MS_MIN..=taquilla_domain::limits::IDEMPOTENCY_TTL_MS_MAX;
        if !ttl.contains(&self.idempotency_ttl_ms) {
            return Err(ConfigError::IdempotencyTtl(self.idempotency_ttl_ms));
        }
        if !(1..=taquilla_log::limits::SNAPSHOT_MAX_BYTES).contains(&self.snapshot_write_chunk_bytes) {
            return Err(ConfigError::SnapshotWriteChunk(self.snapshot_write_chunk_bytes));
        }
        Ok(())
    }
}

/// An [`EngineConfig`] value out of its bounds. The messages quote the bounds from [`limits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("shards must be between 1 and {max}, not {0}", max = limits::SHARDS_MAX)]
    Shards(usize),
    #[error("queue_capacity must be between 1 and {max}, not {0}", max = limits::QUEUE_CAPACITY_MAX)]
    QueueCapacity(usize),
    #[error("batch_max must be between 1 and {max}, not {0}", max = limits::BATCH_COMMANDS_MAX)]
    BatchMax(usize),
    #[error("sales_max must be between 1 and {max}, not {0}", max = limits::SALES_MAX)]
    SalesMax(usize),
    #[error(
        "idempotency_ttl_ms must be between {min} and {max}, not {0}",
        min = taquilla_domain::limits::IDEMPOTENCY_TTL_MS_MIN,
        max = taquilla_domain::limits::IDEMPOTENCY_TTL_MS_MAX
    )]
    IdempotencyTtl(u64),
    #[error(
        "snapshot_write_chunk_bytes must be between 1 and {max}, not {0}",
        max = taquilla_log::limits::SNAPSHOT_MAX_BYTES
    )]
    SnapshotWriteChunk(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The shard's queue is full: try again later (HTTP 503 + Retry-After).
    #[error("overloaded: the command queue is full")]
    Overloaded,
    #[error("sale not found")]
    SaleNotFound,
    /// The engine holds `EngineConfig::sales_max` sales already.
    #[error("too many sales: this server holds its maximum number of sales")]
    TooManySales,
    #[error("batch too large (limit {SUBMIT_BATCH_MAX})")]
    BatchTooLarge,
    /// The disk is full: the command was not applied. Writes resume by themselves once there
    /// is space (HTTP 503 `storage_full` + Retry-After); reads go on.
    #[error("the disk is full: the command was not applied")]
    StorageFull,
    /// The engine is shutting down or has stopped after a fatal log error or a panic.
    #[error("the engine is stopped")]
    Stopped,
    /// The log failed (e.g. fsync); the engine stops taking commands.
    #[error("log failure: {0}")]
    Log(#[from] LogError),
    /// The data directory could not be turned back into sales; the engine did not start.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error("invalid engine config: {0}")]
    Config(#[from] ConfigError),
}

pub type CommandResult = Result<Outcome, EngineError>;
type Reply = tokio::sync::oneshot::Sender<CommandResult>;
type BatchReply = tokio::sync::oneshot::Sender<Vec<CommandResult>>;

/// A command for one sale, with the request's correlation id (carried into its log record).
pub struct Envelope {
    pub sale: SaleId,
    pub command: Command,
    pub correlation_id: Option<CompactString>,
}

pub(crate) enum Msg {
    One(Envelope, Reply),
    Many(Vec<Envelope>, BatchReply),
    /// A new sale: the shard creates its cell, then decides `CreateSale`.
    Create(Envelope, Reply),
    /// Run due deadlines now (tests on a manual clock), then answer.
    Tick(tokio::sync::oneshot::Sender<()>),
    /// Finish what is queued (durably), snapshot if configured, and exit.
    Stop,
}

/// One sale as readers see it: its state behind a lock, and its version. Only the owning
/// shard writes it, write-locking it for one command at a time.
pub(crate) struct SaleCell {
    pub state: RwLock<SaleState>,
    /// The sale's next log seq, i.e. one more than the records its state reflects. The shard
    /// stores it while it holds the write lock, so under a read lock it names the state
    /// exactly; read without the lock it names a state that existed (a cache key for views).
    /// It moves forward by one per record.
    pub version: AtomicU64,
}

impl SaleCell {
    pub(crate) fn new(state: SaleState, version: u64) -> SaleCell {
        SaleCell {
            state: RwLock::new(state),
            version: AtomicU64::new(version),
        }
    }
}

/// Every sale's cell, by id: what reads and submissions look sales up in.
pub(crate) type SaleCells = RwLock<FxHashMap<SaleId, Arc<SaleCell>>>;

pub(crate) struct Shared {
    pub log: Arc<dyn EventLog>,
    pub snapshots: SnapshotStore,
    pub sales: SaleCells,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    /// Set when a shard hit a fatal log error or a thread panicked: no more commands are
    /// taken, and every waiter hears `Stopped`.
    pub failed: AtomicBool,
    /// Set while the log has no space for new records (the last claim failed), cleared by
    /// the first that succeeds.
    pub storage_full: AtomicBool,
    pub stats: EngineStats,
}

/// Counters since start, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Commands taken from the queues (accepted or rejected).
    pub commands: AtomicU64,
    /// Batches that carried at least one command.
    pub batches: AtomicU64,
    /// Log records appended (one per command that produced events).
    pub records: AtomicU64,
    /// Log flushes (fsyncs) the shards asked for.
    pub flushes: AtomicU64,
    /// Snapshots written off the shard threads.
    pub snapshots: AtomicU64,
    /// Snapshot attempts that failed (each retried later, see `snapshotter`).
    pub snapshot_failures: AtomicU64,
}

/// A running engine. Dropping it shuts it down cleanly (see [`Engine::shutdown`]).
pub struct Engine {
    shared: Arc<Shared>,
    shards: Vec<Sender<Msg>>,
    threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    next_sale: AtomicU64,
    recovery: RecoveryStats,
    stopping: AtomicBool,
    snapshotter: Sender<snapshotter::Msg>,
    snapshotter_thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
    /// The data directory, when opened on one ([`Engine::open`]).
    data_dir: Option<PathBuf>,
}

impl Engine {
    /// Opens (or creates) the data directory, recovers every sale from snapshots and the log,
    /// and starts the shard writers.
    pub fn open(data_dir: &Path, config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        let (log, report) = FileLog::open(
            &log_dir(data_dir),
            FileLogOptions {
                segment_size_bytes: config.segment_size_bytes,
                ..Default::default()
            },
        )?;
        log_recovery_report(&report);
        let snapshot_opts = SnapshotOptions {
            write_chunk_bytes: config.snapshot_write_chunk_bytes,
        };
        let snapshots =
            SnapshotStore::open_with(&snapshot_dir(data_dir), snapshot_opts).map_err(RecoveryError::Snapshots)?;
        let mut engine = Self::start(Arc::new(log), snapshots, config, clock)?;
        engine.data_dir = Some(data_dir.to_path_buf());
        Ok(engine)
    }

    /// Starts on any log implementation (the conformance-tested port). Refuses a config that
    /// fails [`EngineConfig::validate`].
    pub fn start(
        log: Arc<dyn EventLog>,
        snapshots: SnapshotStore,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        config.validate()?;
        let (states, recovery) = recovery::recover(log.as_ref(), &snapshots, config.idempotency_ttl_ms)?;
        let max_sale = states.keys().map(|s| s.0).max().unwrap_or(0);
        let shared = Arc::new(Shared {
            log,
            snapshots,
            sales: RwLock::new(FxHashMap::default()),
            clock,
            config: config.clone(),
            failed: AtomicBool::new(false),
            storage_full: AtomicBool::new(false),
            stats: EngineStats::default(),
        });
        let mut per_shard: Vec<Vec<shard::OwnedSale>> = (0..config.shards).map(|_| Vec::new()).collect();
        {
            let mut cells = shared.sales.write();
            for (sale, rec) in states {
                let owned = shard::OwnedSale::recovered(
                    sale,
                    rec.seq + 1,
                    rec.records_since_snapshot,
                    rec.state,
                    config.snapshot_every_records,
                );
                cells.insert(sale, owned.cell.clone());
                per_shard[shard_of(sale, config.shards)].push(owned);
            }
        }
        // Unbounded, yet bounded by construction: a shard has at most one request in flight
        // per sale, so at most `sales_max` requests (plus `Stop` and `Sync`) are ever queued.
        let (snap_tx, snap_rx) = crossbeam_channel::unbounded();
        let snapshotter_thread = {
            let shared = shared.clone();
            let thread = "taquilla-snapshot".to_owned();
            std::thread::Builder::new()
                .name(thread.clone())
                .spawn(move || snapshotter::run(shared, snap_rx))
                .map_err(|source| RecoveryError::Spawn { thread, source })?
        };
        let mut shards = Vec::with_capacity(config.shards);
        let mut threads = Vec::with_capacity(config.shards);
        for (i, owned) in per_shard.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity);
            let shared = shared.clone();
            let thread = format!("taquilla-shard-{i}");
            let snap_tx = snap_tx.clone();
            let handle = std::thread::Builder::new()
                .name(thread.clone())
                .spawn(move || shard::run(i, shared, rx, owned, snap_tx))
                .map_err(|source| RecoveryError::Spawn { thread, source })?;
            shards.push(tx);
            threads.push(handle);
        }
        Ok(Engine {
            shared,
            shards,
            threads: parking_lot::Mutex::new(threads),
            next_sale: AtomicU64::new(max_sale + 1),
            recovery,
            stopping: AtomicBool::new(false),
            snapshotter: snap_tx,
            snapshotter_thread: parking_lot::Mutex::new(Some(snapshotter_thread)),
            data_dir: None,
        })
    }

    /// What recovery did at start (records replayed, snapshots used, time taken).
    pub fn recovery(&self) -> &RecoveryStats {
        &self.recovery
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.shared.log
    }

    /// Creates a new sale and returns its id once `SaleCreated` is durable.
    pub async fn create_sale(
        &self,
        cmd: CreateSale,
        correlation_id: Option<CompactString>,
    ) -> Result<SaleId, EngineError> {
        if self.shared.sales.read().len() >= self.shared.config.sales_max {
            return Err(EngineError::TooManySales);
        }
        let sale = SaleId(self.next_sale.fetch_add(1, Ordering::Relaxed));
        let env = Envelope {
            sale,
            command: Command::CreateSale(cmd),
            correlation_id,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(sale, Msg::Create(env, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(sale)
    }

    /// Creates a sale, then applies its setup commands (ticket types, quotas, status) in
    /// order, each once the previous is durable. Stops at the first failure.
    pub async fn create_sale_with(
        &self,
        cmd: CreateSale,
        setup: Vec<Command>,
        correlation_id: Option<CompactString>,
    ) -> Result<SaleId, EngineError> {
        let sale = self.create_sale(cmd, correlation_id.clone()).await?;
        for command in setup {
            self.submit(Envelope {
                sale,
                command,
                correlation_id: correlation_id.clone(),
            })?
            .await?;
        }
        Ok(sale)
    }

    /// Submits one command; the future resolves once its effects are durable (or it was
    /// rejected). Fails at once with `Overloaded` when the shard's queue is full.
    pub fn submit(&self, env: Envelope) -> Result<impl Future<Output = CommandResult> + use<>, EngineError> {
        if !self.shared.sales.read().contains_key(&env.sale) {
            return Err(EngineError::SaleNotFound);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(env.sale, Msg::One(env, tx))?;
        Ok(async move { rx.await.unwrap_or(Err(EngineError::Stopped)) })
    }

    /// Submits many commands as one message (all for sales on the same shard is fastest, but
    /// any mix works); one result per command, in order, once all are durable.
    pub fn submit_batch(
        &self,
        envs: Vec<Envelope>,
    ) -> Result<impl Future<Output = Result<Vec<CommandResult>, EngineError>> + use<>, EngineError> {
        if envs.len() > SUBMIT_BATCH_MAX {
            return Err(EngineError::BatchTooLarge);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let Some(first) = envs.first() else {
            let _ = tx.send(Vec::new());
            return Ok(batch_future(rx));
        };
        {
            let cells = self.shared.sales.read();
            if envs.iter().any(|e| !cells.contains_key(&e.sale)) {
                return Err(EngineError::SaleNotFound);
            }
        }
        let shard = shard_of(first.sale, self.shards.len());
        if envs.iter().any(|e| shard_of(e.sale, self.shards.len()) != shard) {
            // Keep one writer per sale: a mixed batch is split by shard.
            return Err(EngineError::Rejected(Rejection::Invalid(
                taquilla_domain::InvalidValue {
                    field: "batch",
                    reason: "all commands of a batch must belong to sales of one shard",
                },
            )));
        }
        self.send(first.sale, Msg::Many(envs, tx))?;
        Ok(batch_future(rx))
    }

    /// Reads a sale's state from memory. Never waits for the command queue or an fsync.
    pub fn read<R>(&self, sale: SaleId, f: impl FnOnce(&SaleState) -> R) -> Option<R> {
        let cell = self.shared.sales.read().get(&sale).cloned()?;
        let state = cell.state.read();
        Some(f(&state))
    }

    /// Like [`Engine::read`], with the sale's version: it changes whenever the state does, so
    /// a view rendered from this state can be reused while [`Engine::version`] still returns it.
    pub fn read_versioned<R>(&self, sale: SaleId, f: impl FnOnce(&SaleState) -> R) -> Option<(u64, R)> {
        let cell = self.shared.sales.read().get(&sale).cloned()?;
        let state = cell.state.read();
        Some((cell.version.load(Ordering::Acquire), f(&state)))
    }

    /// The sale's current version (see [`Engine::read_versioned`]), without locking its state.
    pub fn version(&self, sale: SaleId) -> Option<u64> {
        self.shared
            .sales
            .read()
            .get(&sale)
            .map(|cell| cell.version.load(Ordering::Acquire))
    }

    /// The ids of all sales, in order.
    pub fn sales(&self) -> Vec<SaleId> {
        let mut v: Vec<SaleId> = self.shared.sales.read().keys().copied().collect();
        v.sort();
        v
    }

    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// Messages waiting in each shard's queue.
    pub fn queue_depths(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.len()).collect()
    }

    pub fn queue_capacity(&self) -> usize {
        self.shared.config.queue_capacity
    }

    /// Bytes free on the data directory's file system (`None`: not opened on a directory, or
    /// it cannot be asked).
    pub fn data_dir_free_bytes(&self) -> Option<u64> {
        let dir = self.data_dir.as_deref()?;
        taquilla_log::fsutil::free_bytes(dir).ok()
    }

    /// True while the disk is full: writes are refused with [`EngineError::StorageFull`]
    /// until a shard finds space again.
    pub fn storage_full(&self) -> bool {
        self.shared.storage_full.load(Ordering::Acquire)
    }

    /// True once a fatal log error or a panicked shard stopped the engine.
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Makes every shard run its due deadlines against the clock now and waits until it has.
    /// The shards do this by themselves on the system clock; tests on a [`ManualClock`] call it
    /// after advancing time.
    pub async fn tick(&self) -> Result<(), EngineError> {
        let mut waits = Vec::with_capacity(self.shards.len());
        for s in &self.shards {
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.send(Msg::Tick(tx)).map_err(|_| EngineError::Stopped)?;
            waits.push(rx);
        }
        for w in waits {
            w.await.map_err(|_| EngineError::Stopped)?;
        }
        Ok(())
    }

    /// Waits until the snapshot thread has run every retry due by the clock's now, and every
    /// request the shards sent before this call reached it (call [`Engine::tick`] first to be
    /// sure a shard has sent what its last batch made due). For tests on a [`ManualClock`].
    pub async fn sync_snapshots(&self) -> Result<(), EngineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.snapshotter
            .send(snapshotter::Msg::Sync(tx))
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Stops taking commands, lets each shard finish what is queued (durably), snapshots
    /// changed sales if configured, and joins the shard threads. Commands submitted
    /// afterwards get `Stopped`. Idempotent. The data directory stays locked until the
    /// engine is dropped; [`Engine::shutdown`] does both.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        // The snapshot thread first: it finishes the snapshot under way and those queued,
        // so none of its writes lands after a shard's shutdown snapshot of the same sale.
        if let Some(t) = self.snapshotter_thread.lock().take() {
            let _ = self.snapshotter.send(snapshotter::Msg::Stop);
            if t.join().is_err() {
                tracing::error!("the snapshot thread panicked");
            }
        }
        let mut threads = self.threads.lock();
        if threads.is_empty() {
            return;
        }
        for s in &self.shards {
            // Blocking send: the stop message waits behind queued work instead of skipping it.
            let _ = s.send(Msg::Stop);
        }
        for t in threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
    }

    fn send(&self, sale: SaleId, msg: Msg) -> Result<(), EngineError> {
        if self.has_failed() || self.stopping.load(Ordering::Acquire) {
            return Err(EngineError::Stopped);
        }
        let shard = &self.shards[shard_of(sale, self.shards.len())];
        match shard.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("taquilla_engine_overloaded_total").increment(1);
                Err(EngineError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

impl Engine {
    /// [`Engine::stop`], then release the data directory.
    pub fn shutdown(self) {
        self.stop();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn shard_of(sale: SaleId, shards: usize) -> usize {
    (sale.0 % shards as u64) as usize
}

fn log_recovery_report(report: &RecoveryReport) {
    tracing::info!(
        segments = report.segments,
        records = report.records,
        last_lsn = report.last_lsn,
        "log opened"
    );
    if let Some(t) = &report.truncated {
        tracing::warn!(segment = %t.segment.display(), offset = t.offset, bytes = t.bytes, "torn tail truncated");
    }
}

async fn batch_future(
    rx: tokio::sync::oneshot::Receiver<Vec<CommandResult>>,
) -> Result<Vec<CommandResult>, EngineError> {
    rx.await.map_err(|_| EngineError::Stopped)
}

/// Where a data directory's log is: `Engine::open` and tools that inspect a data directory
/// use the same names.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

/// Where a data directory's snapshots are (see [`log_dir`]).
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}
