//! The payment saga: the follower that calls payment providers.
//!
//! Every step of a payment is an event the sale's writer decided (`PaymentRequested`,
//! `PaymentAuthorised`, `PaymentVoidRequired`, `RefundRequested`, …). The saga reads them from
//! the log by a durable cursor, and for each order concerned asks the sale's state — the one
//! source of truth — what provider call the order needs next ([`step::next`]). It makes the call
//! through the provider's resilience stack, with an idempotency key derived from (order,
//! attempt, step), and reports the answer back as a command (`RecordPayment`, `RecordRefund`),
//! durable before the saga looks again. A call that gets no answer is retried with backoff,
//! under the same key, so a retry never charges twice.
//!
//! After a crash nothing is lost: at start the saga scans every order for pending work, then
//! follows the log from its cursor. A payment the buyer has to confirm (Stripe) that nobody
//! hears about is **reconciled**: after `reconcile_after` the saga asks the provider where it
//! stands, never guessing. An order's deadline ends a payment that stays unconfirmed.
//!
//! Nothing here runs on a shard thread or inside a buyer's request.

pub mod step;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use compact_str::CompactString;
use parking_lot::Mutex;
use taquilla_domain::{Command, OrderId, PaymentMethod, PaymentRef, PaymentState, SaleId, codec};
use taquilla_engine::{Engine, EngineError, Envelope};
use taquilla_log::Record;
use taquilla_payments::{PaymentService, ProviderError, ProviderRequest};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::follower::{self, FollowerHandle};
use crate::limits;
use step::{Action, Step, Verdict};

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

/// One order with saga work.
type WorkKey = (SaleId, OrderId);

#[derive(Debug)]
struct Entry {
    due: Instant,
    failures: u32,
    in_flight: bool,
    /// New events arrived while in flight: look again as soon as it is done.
    dirty: bool,
    since: Instant,
}

#[derive(Default)]
struct Work {
    queue: BTreeSet<(Instant, WorkKey)>,
    entries: HashMap<WorkKey, Entry>,
}

impl Work {
    fn schedule(&mut self, key: WorkKey, due: Instant) {
        let now = Instant::now();
        let entry = self.entries.entry(key).or_insert(Entry {
            due,
            failures: 0,
            in_flight: false,
            dirty: false,
            since: now,
        });
        if entry.in_flight {
            entry.dirty = true;
            return;
        }
        self.queue.remove(&(entry.due, key));
        entry.due = entry.due.min(due);
        self.queue.insert((entry.due, key));
    }

    /// Takes a due key, marking it in flight.
    fn take_due(&mut self, now: Instant) -> Option<WorkKey> {
        let &(due, key) = self.queue.first()?;
        if due > now {
            return None;
        }
        self.queue.pop_first();
        if let Some(e) = self.entries.get_mut(&key) {
            e.in_flight = true;
            e.dirty = false;
        }
        Some(key)
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|(due, _)| *due)
    }

    fn finish(&mut self, key: WorkKey, progress: Progress, config: &SagaConfig) {
        let now = Instant::now();
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        e.in_flight = false;
        let due = match progress {
            Progress::Done if !e.dirty => {
                self.entries.remove(&key);
                return;
            }
            Progress::Done | Progress::Again => {
                e.failures = 0;
                now
            }
            Progress::WaitUntil(t) => t,
            Progress::Retry => {
                e.failures = e.failures.saturating_add(1);
                now + backoff(config, e.failures, key)
            }
        };
        e.due = if e.dirty { now } else { due };
        self.queue.insert((e.due, key));
    }
}

/// Exponential backoff with full jitter, derived from the key and the failure count (no
/// shared random state, yet spread: orders failing together do not retry together).
fn backoff(config: &SagaConfig, failures: u32, key: WorkKey) -> Duration {
    let cap = config
        .retry_min
        .saturating_mul(1u32 << failures.min(16))
        .min(config.retry_max);
    let mut x = key.0.0 ^ key.1.0.rotate_left(32) ^ u64::from(failures).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let fraction = (x % 1_000) as u32;
    (cap * fraction / 1_000).max(config.retry_min / 2)
}

/// What one look at an order achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Nothing left to do.
    Done,
    /// A step was reported: look again now.
    Again,
    /// Nothing to do before this time (a payment awaiting its buyer).
    WaitUntil(Instant),
    /// The call got no answer: try again after a backoff.
    Retry,
}

struct Inner {
    engine: Arc<Engine>,
    providers: Providers,
    config: SagaConfig,
    work: Mutex<Work>,
    wake: Notify,
    stopping: AtomicBool,
}

/// A running saga. Stop it before the engine.
pub struct SagaHandle {
    inner: Arc<Inner>,
    follower: Option<FollowerHandle>,
    scheduler: Option<JoinHandle<()>>,
}

/// The cursor the saga follows the log with.
pub const CURSOR_NAME: &str = "payment-saga";

impl SagaHandle {
    /// Starts the saga on `engine` (recovered): finds every order with pending saga work, then
    /// follows the log from the cursor kept in `checkpoint_dir`. Call within a tokio runtime.
    pub fn start(
        engine: Arc<Engine>,
        providers: Providers,
        checkpoint_dir: &std::path::Path,
        config: SagaConfig,
    ) -> Result<SagaHandle, taquilla_log::cursor::CursorError> {
        let inner = Arc::new(Inner {
            engine,
            providers,
            config,
            work: Mutex::new(Work::default()),
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
        })
    }

    /// Orders with saga work not done yet (for metrics and tests).
    pub fn pending(&self) -> usize {
        self.inner.work.lock().entries.len()
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
        if let Some(s) = self.scheduler.take() {
            s.abort();
            let _ = s.await;
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
                        .filter(|(id, _)| step::next(sale, s, *id).is_some())
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
            let (key, next_due) = {
                let mut work = self.work.lock();
                (work.take_due(Instant::now()), work.next_due())
            };
            let Some(key) = key else {
                drop(permit);
                self.idle(next_due).await;
                continue;
            };
            let inner = self.clone();
            tokio::spawn(async move {
                let progress = inner.advance(key).await;
                inner.work.lock().finish(key, progress, &inner.config);
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
        let oldest = work.entries.values().map(|e| e.since).min();
        metrics::gauge!("taquilla_saga_pending").set(work.entries.len() as f64);
        let age = oldest.map_or(0.0, |t| t.elapsed().as_secs_f64());
        metrics::gauge!("taquilla_saga_oldest_pending_seconds").set(age);
    }

    /// Looks at one order and makes its next provider call, if any.
    async fn advance(&self, key: WorkKey) -> Progress {
        let (sale, order) = key;
        let Some(action) = self.engine.read(sale, |s| step::next(sale, s, order)).flatten() else {
            return Progress::Done;
        };
        match action {
            Action::Call { method, request, step } => self.call(key, method, request, step).await,
            Action::AwaitBuyer {
                method,
                attempt,
                intent,
                since,
            } => {
                let now = self.engine.clock().now();
                let due_ms = since.0.saturating_add(self.config.reconcile_after.as_millis() as i64);
                if now.0 < due_ms {
                    let wait = Duration::from_millis((due_ms - now.0) as u64);
                    return Progress::WaitUntil(Instant::now() + wait);
                }
                let status = ProviderRequest::Status { intent };
                self.call(key, method, status, Step::Status { attempt }).await
            }
        }
    }

    async fn call(&self, key: WorkKey, method: PaymentMethod, request: ProviderRequest, step: Step) -> Progress {
        let Some(service) = self.providers.service(method) else {
            tracing::error!(
                method = method.as_str(),
                "saga: no provider configured for a pending payment"
            );
            return Progress::Retry;
        };
        let reply = service.clone().oneshot(request.clone()).await;
        let reply_error = reply.as_ref().err().cloned();
        let state = self.payment_state(key, step);
        let verdict = step::verdict(key.1, step, &request, state, reply);
        metrics::counter!("taquilla_saga_steps_total", "step" => step.name(), "verdict" => verdict_name(&verdict))
            .increment(1);
        match verdict {
            Verdict::Report(commands) => self.report(key, step, commands).await,
            Verdict::Retry => Progress::Retry,
            Verdict::AskStatus => self.ask_status(key, service, step, &request, reply_error).await,
        }
    }

    /// Resolves a capture or void whose outcome is unknown, or that was refused, by the
    /// payment's status at the provider.
    async fn ask_status(
        &self,
        key: WorkKey,
        service: PaymentService,
        step: Step,
        request: &ProviderRequest,
        error: Option<ProviderError>,
    ) -> Progress {
        let (ProviderRequest::Void { intent, .. } | ProviderRequest::Capture { intent, .. }) = request else {
            return Progress::Retry;
        };
        let (Some(error), Ok(intent_ref)) = (error, PaymentRef::parse(&intent.0)) else {
            return Progress::Retry;
        };
        let status = service
            .oneshot(ProviderRequest::Status { intent: intent.clone() })
            .await;
        match step::verdict_on_status(key.1, step, &intent_ref, &error, status) {
            Verdict::Report(commands) => self.report(key, step, commands).await,
            _ => Progress::Retry,
        }
    }

    /// Where the attempt the step is about stands now.
    fn payment_state(&self, (sale, order): WorkKey, step: Step) -> Option<PaymentState> {
        let attempt = match step {
            Step::Authorise { attempt }
            | Step::Capture { attempt }
            | Step::Void { attempt }
            | Step::Status { attempt } => attempt,
            Step::Refund { .. } => return None,
        };
        self.engine
            .read(sale, |s| {
                let o = s.orders.get(&order)?;
                o.payments.get(attempt.checked_sub(1)? as usize).map(|p| p.state)
            })
            .flatten()
    }

    /// Submits the reports in order, each durable before the next.
    async fn report(&self, (sale, order): WorkKey, step: Step, commands: Vec<Command>) -> Progress {
        let correlation = correlation_id(sale, order, step);
        for command in commands {
            let env = Envelope {
                sale,
                command,
                correlation_id: Some(correlation.clone()),
            };
            let submitted = match self.engine.submit(env) {
                Ok(reply) => reply.await,
                Err(e) => Err(e),
            };
            match submitted {
                Ok(_) => {}
                // The state moved on (a report that no longer applies): look again.
                Err(EngineError::Rejected(r)) => {
                    tracing::warn!(sale = sale.0, order = order.0, rejection = %r, "saga: report refused");
                    return Progress::Again;
                }
                Err(e) => {
                    tracing::warn!(sale = sale.0, order = order.0, error = %e, "saga: report not taken");
                    return Progress::Retry;
                }
            }
        }
        Progress::Again
    }
}

/// `saga:ord_<sale>_<order>:<step>`: the correlation id of the saga's reports.
fn correlation_id(sale: SaleId, order: OrderId, step: Step) -> CompactString {
    let mut id = CompactString::new("saga:");
    id.push_str(&step::order_ref(sale, order));
    id.push(':');
    id.push_str(step.name());
    id
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Report(_) => "reported",
        Verdict::AskStatus => "ask_status",
        Verdict::Retry => "retry",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let config = SagaConfig::default();
        let key = (SaleId(1), OrderId(7));
        for failures in 1..20 {
            let b = backoff(&config, failures, key);
            assert!(b <= config.retry_max, "{failures}: {b:?}");
            assert!(b >= config.retry_min / 2, "{failures}: {b:?}");
        }
        let spread: BTreeSet<Duration> = (1..50).map(|o| backoff(&config, 10, (SaleId(1), OrderId(o)))).collect();
        assert!(spread.len() > 40, "orders failing together retry apart");
    }
}
