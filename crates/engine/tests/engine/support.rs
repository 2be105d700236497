//! Helpers: a sale set up through the engine, and logs that block or fail on flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use taquilla_domain::{
    BuyerId, Command, CreateSale, Currency, Item, Items, MoneyMinor, Name, Quantity, SaleId, SaleStatus, TicketTypeId,
    Timestamp,
};
use taquilla_engine::{Engine, EngineConfig, Envelope, ManualClock};
use taquilla_log::{Append, EventLog, LogError, Lsn, PartitionId, RecordRef, Seq};

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

pub fn env(sale: SaleId, command: Command) -> Envelope {
    Envelope {
        sale,
        command,
        correlation_id: None,
    }
}

pub fn hold_cmd(buyer: &str, qty: u32) -> Command {
    let mut items = Items::new();
    items.push(Item {
        ticket_type: TicketTypeId(0),
        quantity: Quantity::new(qty).unwrap(),
    });
    Command::PlaceHold {
        buyer: BuyerId::parse(buyer).unwrap(),
        items,
        idempotency_key: None,
    }
}

/// A draft sale in EUR with a 1 s hold TTL.
pub fn sale_spec() -> CreateSale {
    CreateSale {
        name: Name::parse("test sale").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        hold_ttl_ms: 1_000,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    }
}

/// A sale with one ticket type in one quota of `capacity`, open, 1 s hold TTL.
pub async fn open_sale(engine: &Engine, capacity: u32) -> SaleId {
    open_sale_with_ttl(engine, capacity, 1_000).await
}

/// [`open_sale`] with a hold TTL of `hold_ttl_ms`.
pub async fn open_sale_with_ttl(engine: &Engine, capacity: u32, hold_ttl_ms: u64) -> SaleId {
    let spec = CreateSale {
        hold_ttl_ms,
        ..sale_spec()
    };
    let sale = engine.create_sale(spec, None).await.unwrap();
    for c in [
        Command::AddTicketType {
            name: Name::parse("ga").unwrap(),
            price: MoneyMinor::new(1000).unwrap(),
            max_per_order: None,
        },
        Command::AddQuota {
            name: Name::parse("all").unwrap(),
            capacity,
            ticket_types: vec![TicketTypeId(0)],
        },
        Command::SetStatus(SaleStatus::Open),
    ] {
        engine.submit(env(sale, c)).unwrap().await.unwrap();
    }
    sale
}

pub fn config() -> EngineConfig {
    EngineConfig {
        queue_capacity: 16,
        batch_max: 64,
        ..EngineConfig::default()
    }
}

/// Wraps a log; while the gate is closed, `flush` blocks (and says so through `entered`).
pub struct GatedLog {
    pub inner: Arc<dyn EventLog>,
    closed: Mutex<bool>,
    cv: Condvar,
    pub in_flush: AtomicBool,
    pub fail_flush: AtomicBool,
    /// Whether `append` waits at the gate too (then the shard itself is stuck).
    pub gate_appends: AtomicBool,
    /// Whether `append` panics (then the shard thread panics, as on a bug).
    pub panic_appends: AtomicBool,
}

impl GatedLog {
    pub fn new(inner: Arc<dyn EventLog>) -> Arc<Self> {
        Arc::new(GatedLog {
            inner,
            closed: Mutex::new(false),
            cv: Condvar::new(),
            in_flush: AtomicBool::new(false),
            fail_flush: AtomicBool::new(false),
            gate_appends: AtomicBool::new(false),
            panic_appends: AtomicBool::new(false),
        })
    }
    pub fn close(&self) {
        *self.closed.lock() = true;
    }
    /// Closes the gate until the returned guard is dropped, so that a failing assertion
    /// reopens it while unwinding instead of leaving the engine's stop waiting forever.
    pub fn close_guarded(self: &Arc<Self>) -> GateGuard {
        self.close();
        GateGuard(self.clone())
    }
    pub fn open(&self) {
        *self.closed.lock() = false;
        self.cv.notify_all();
    }
    /// Blocks while the gate is closed, saying so through `in_flush`.
    fn pass_gate(&self) {
        let mut closed = self.closed.lock();
        while *closed {
            self.in_flush.store(true, Ordering::SeqCst);
            self.cv.notify_all();
            self.cv.wait(&mut closed);
        }
        self.in_flush.store(false, Ordering::SeqCst);
    }

    /// Waits until a thread is blocked at the gate (inside `flush`, or `append` if gated).
    pub fn wait_in_flush(&self) {
        let mut closed = self.closed.lock();
        while !self.in_flush.load(Ordering::SeqCst) {
            self.cv.wait_for(&mut closed, Duration::from_millis(10));
        }
    }
}

impl EventLog for GatedLog {
    fn append(&self, batch: &[Append<'_>]) -> Result<Lsn, LogError> {
        if self.gate_appends.load(Ordering::SeqCst) {
            self.pass_gate();
        }
        if self.panic_appends.load(Ordering::SeqCst) {
            panic!("injected panic in append");
        }
        self.inner.append(batch)
    }
    fn flush(&self, upto: Lsn) -> Result<(), LogError> {
        self.pass_gate();
        if self.fail_flush.load(Ordering::SeqCst) {
            return Err(LogError::Io(std::io::Error::other("injected fsync failure")));
        }
        self.inner.flush(upto)
    }
    fn last_lsn(&self) -> Lsn {
        self.inner.last_lsn()
    }
    fn durable_lsn(&self) -> Lsn {
        self.inner.durable_lsn()
    }
    fn next_seq(&self, partition: PartitionId) -> Seq {
        self.inner.next_seq(partition)
    }
    fn scan(&self, after: Lsn, visit: &mut dyn FnMut(RecordRef<'_>) -> bool) -> Result<(), LogError> {
        self.inner.scan(after, visit)
    }
    fn wait_durable(&self, after: Lsn, timeout: Duration) -> Lsn {
        self.inner.wait_durable(after, timeout)
    }
}

/// Reopens the gate when dropped.
pub struct GateGuard(Arc<GatedLog>);

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.0.open();
    }
}
