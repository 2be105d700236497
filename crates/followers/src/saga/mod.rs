//! The payment saga: the follower that calls payment providers.
//!
//! Every step of a payment is an event the sale's writer decided (`PaymentRequested`,
//! `PaymentAuthorised`, `PaymentVoidRequired`, `RefundRequested`, …). The saga reads them from
//! the log by a durable cursor, and for each order concerned asks the sale's state — the one
//! source of truth — what provider call the order needs next ([`step::next`]). It makes the call
//! through the provider's resilience stack, with an idempotency key derived from (order,
//! attempt, step) under this deployment's namespace ([`namespace`]), and reports the answer
//! back as a command (`RecordPayment`, `RecordRefund`), durable before the saga looks again.
//! A call that gets no answer is retried with backoff under the same key, so a retry never
//! charges twice; a capture or void whose outcome is unknown is settled by the payment's
//! status at the provider (`step::verdict_on_status`).
//!
//! After a crash nothing is lost: at start the saga scans every order for pending work, then
//! follows the log from its cursor. A payment the buyer has to confirm (Stripe) that nobody
//! hears about is **reconciled**: after `reconcile_after` the saga asks the provider where it
//! stands, never guessing. An order's deadline ends a payment that stays unconfirmed.
//!
//! Nothing here runs on a shard thread or inside a buyer's request.

mod report;
mod run;
pub mod step;
mod work;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use taquilla_domain::{OrderId, SaleId, codec};
use taquilla_engine::Engine;
use taquilla_log::Record;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::follower::{self, FollowerHandle};
use crate::limits;
use crate::watch::OrderWatch;
use report::Reporter;
use work::{Work, WorkKey};

/// The providers the saga may call, by payment method (each behind its resilience stack).
pub use taquilla_payments::config::Providers;

/// Tuning of the saga. Defaults and bounds in [`limits`].
#[derive(Debug, Clone)]
pub struct SagaConfig {
    /// Provider calls in flight at once.
    pub concurrency: usize,
    /// First pause before retrying a call that got no answer; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long a payment may await its buyer's confirmation before the saga asks the provider.
    pub reconcile_after: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        SagaConfig {
            concurrency: limits::SAGA_CONCURRENCY_DEFAULT,
            retry_min: limits::SAGA_RETRY_MIN,
            retry_max: limits::SAGA_RETRY_MAX,
            reconcile_after: limits::RECONCILE_AFTER_DEFAULT,
        }
    }
}

struct Inner {
    engine: Arc<Engine>,
    providers: Providers,
    /// This deployment's namespace at the providers ([`namespace`]).
    namespace: String,
    config: SagaConfig,
    work: Mutex<Work>,
    reporter: Reporter,
    /// Pay requests waiting on an order: woken once a report about it is durable.
    watch: Arc<OrderWatch>,
    wake: Notify,
    stopping: AtomicBool,
}

/// A running saga. Stop it before the engine.
pub struct SagaHandle {
    inner: Arc<Inner>,
    follower: Option<FollowerHandle>,
    scheduler: Option<JoinHandle<()>>,
    reporter: Option<JoinHandle<()>>,
}

/// The cursor the saga follows the log with.
pub const CURSOR_NAME: &str = "payment-saga";

impl SagaHandle {
    /// Starts the saga on `engine` (recovered): finds every order with pending saga work, then
    /// follows the log from the cursor kept in `checkpoint_dir`. `namespace` comes from
    /// [`namespace`] on the same data directory; `watch` is where pay requests wait for the
    /// saga's reports. Call within a tokio runtime.
    pub fn start(
        engine: Arc<Engine>,
        providers: Providers,
        checkpoint_dir: &Path,
        namespace: String,
        config: SagaConfig,
        watch: Arc<OrderWatch>,
    ) -> Result<SagaHandle, taquilla_log::cursor::CursorError> {
        let (reporter, reporting) = Reporter::start(engine.clone());
        let inner = Arc::new(Inner {
            engine,
            providers,
            namespace,
            config,
            work: Mutex::new(Work::default()),
            reporter,
            watch,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        let listener = inner.clone();
        let follower = follower::spawn(
            CURSOR_NAME,
            inner.engine.log().clone(),
            checkpoint_dir,
            move |records| listener.on_records(records),
        )?;
        inner.scan();
        let scheduler = tokio::spawn(inner.clone().schedule());
        Ok(SagaHandle {
            inner,
            follower: Some(follower),
            scheduler: Some(scheduler),
            reporter: Some(reporting),
        })
    }

    /// Orders with saga work not done yet (for metrics and tests).
    pub fn pending(&self) -> usize {
        self.inner.work.lock().len()
    }

    /// Stops following and calling; calls in flight are abandoned (their keys make the next
    /// start's calls safe).
    pub async fn stop(mut self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        if let Some(f) = self.follower.take() {
            // Joining blocks up to one poll interval: off the async workers.
            let _ = tokio::task::spawn_blocking(move || f.stop()).await;
        }
        for task in [self.scheduler.take(), self.reporter.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Inner {
    fn enqueue(&self, key: WorkKey) {
        self.work.lock().schedule(key, Instant::now());
        self.wake.notify_one();
    }

    /// Every order of every sale that has saga work (at start: whatever the last run left).
    fn scan(&self) {
        for sale in self.engine.sales() {
            let orders = self
                .engine
                .read(sale, |s| {
                    s.orders
                        .iter()
                        .filter(|(id, _)| step::next(&self.namespace, sale, s, *id, 0).is_some())
                        .map(|(id, _)| id)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for order in orders {
                self.enqueue((sale, order));
            }
        }
    }

    /// The follower's batch: every order a payment or refund event names gets looked at.
    fn on_records(&self, records: &[Record]) {
        let mut events = Vec::new();
        for r in records {
            events.clear();
            if let Err(e) = codec::decode_events_into(&r.payload, &mut events) {
                tracing::error!(lsn = r.lsn, error = %e, "saga: undecodable record");
                continue;
            }
            for order in events.iter().filter_map(saga_order) {
                self.enqueue((SaleId(r.partition), order));
            }
        }
    }

    async fn schedule(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        while !self.stopping.load(Ordering::Acquire) {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (look, next_due) = {
                let mut work = self.work.lock();
                (work.take_due(Instant::now()), work.next_due())
            };
            let Some(look) = look else {
                drop(permit);
                self.idle(next_due).await;
                continue;
            };
            let inner = self.clone();
            tokio::spawn(async move {
                let progress = inner.advance(look).await;
                inner.work.lock().finish(look.key, progress, &inner.config);
                drop(permit);
                inner.wake.notify_one();
            });
        }
    }

    /// Waits for new work or the next due time, and publishes the gauges meanwhile.
    async fn idle(&self, next_due: Option<Instant>) {
        self.publish_gauges();
        let wait = next_due.map_or(limits::SAGA_IDLE_MAX, |due| {
            due.saturating_duration_since(Instant::now()).min(limits::SAGA_IDLE_MAX)
        });
        let _ = tokio::time::timeout(wait, self.wake.notified()).await;
    }

    fn publish_gauges(&self) {
        let work = self.work.lock();
        metrics::gauge!("taquilla_saga_pending").set(work.len() as f64);
        let age = work.oldest().map_or(0.0, |t| t.elapsed().as_secs_f64());
        metrics::gauge!("taquilla_saga_oldest_pending_seconds").set(age);
    }
}

/// The order an event gives the saga work for.
fn saga_order(e: &taquilla_domain::Event) -> Option<OrderId> {
    use taquilla_domain::Event::*;
    match e {
        PaymentRequested { order, .. }
        | PaymentCreated { order, .. }
        | PaymentAuthorised { order, .. }
        | PaymentVoidRequired { order, .. }
        | PaymentFailed { order, .. }
        | RefundRequested { order, .. } => Some(*order),
        _ => None,
    }
}

/// The file in a data directory that names its deployment at the payment providers.
pub const NAMESPACE_FILE: &str = "payment-namespace";

/// This data directory's namespace at the payment providers: 16 hex characters drawn once and
/// kept in [`NAMESPACE_FILE`]. Every order reference and idempotency key the saga sends
/// carries it, so a data directory started afresh, or a staging server sharing the provider
/// account, never meets the keys or payments of another. Call with the data directory locked
/// (after the engine opened it).
pub fn namespace(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(NAMESPACE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let ns = text.trim();
            if ns.len() == 16 && ns.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(ns.to_string());
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not 16 hex characters", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ns = format!("{:016x}", rand::random::<u64>());
            taquilla_log::fsutil::replace_file(&path, ns.as_bytes(), 0o644)?;
            Ok(ns)
        }
        Err(e) => Err(e),
    }
}
