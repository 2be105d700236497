//! The saga's reports go to the engine in batches, as buyers' requests do.
//!
//! Provider answers arrive one by one, spread over the calls' latencies. Submitted one by one,
//! each woke the sale's writer and its flusher for a batch of its own: in a flash sale paid
//! through a provider with 50–300 ms of latency the shards ran ~4× the batches and fsyncs of
//! the same sale paid instantly. The reporter sends what has arrived as one
//! [`Engine::submit_batch`] per sale and, while that batch becomes durable, gathers the next:
//! a report waits at most one fsync longer, and reports share fsyncs again.

use std::collections::BTreeMap;
use std::sync::Arc;

use taquilla_domain::SaleId;
use taquilla_engine::{CommandResult, Engine, EngineError, Envelope, SUBMIT_BATCH_MAX};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::limits::SAGA_CONCURRENCY_MAX;

type Report = (Envelope, oneshot::Sender<CommandResult>);

/// Where the saga's tasks hand their commands.
pub(super) struct Reporter {
    tx: mpsc::Sender<Report>,
}

impl Reporter {
    /// Starts the task that submits the reports. Call within a tokio runtime.
    pub(super) fn start(engine: Arc<Engine>) -> (Reporter, JoinHandle<()>) {
        // Each saga task has at most one report waiting: the channel never fills beyond the
        // saga's concurrency.
        let (tx, rx) = mpsc::channel(SAGA_CONCURRENCY_MAX);
        (Reporter { tx }, tokio::spawn(run(engine, rx)))
    }

    /// Submits one command and waits until it is durable (or refused).
    pub(super) async fn submit(&self, env: Envelope) -> CommandResult {
        let (reply, answer) = oneshot::channel();
        if self.tx.send((env, reply)).await.is_err() {
            return Err(EngineError::Stopped);
        }
        answer.await.unwrap_or(Err(EngineError::Stopped))
    }
}

async fn run(engine: Arc<Engine>, mut rx: mpsc::Receiver<Report>) {
    let mut reports = Vec::with_capacity(SUBMIT_BATCH_MAX);
    while rx.recv_many(&mut reports, SUBMIT_BATCH_MAX).await > 0 {
        let by_sale = group_by_sale(reports.drain(..));
        let batches = by_sale.into_values().map(|group| submit(&engine, group));
        futures_util::future::join_all(batches).await;
    }
}

/// Reports grouped by sale, each group in arrival order (an order's reports keep their order).
fn group_by_sale(reports: impl Iterator<Item = Report>) -> BTreeMap<SaleId, Vec<Report>> {
    let mut by_sale: BTreeMap<SaleId, Vec<Report>> = BTreeMap::new();
    for report in reports {
        by_sale.entry(report.0.sale).or_default().push(report);
    }
    by_sale
}

/// One sale's reports as one batch; if the batch as a whole is refused (the queue is full,
/// the sale is gone), each report is tried alone and gets its own answer.
async fn submit(engine: &Engine, group: Vec<Report>) {
    let (envs, replies): (Vec<Envelope>, Vec<_>) = group.into_iter().unzip();
    let count = envs.len();
    match engine.submit_batch(envs) {
        Ok(batch) => match batch.await {
            Ok(results) => {
                assert_eq!(results.len(), count, "one result per command of a batch");
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => answer_all(replies, &e),
        },
        Err(e) => answer_all(replies, &e),
    }
}

/// The whole batch failed: every report hears why, as an error the saga retries.
fn answer_all(replies: Vec<oneshot::Sender<CommandResult>>, error: &EngineError) {
    for reply in replies {
        let _ = reply.send(Err(same_error(error)));
    }
}

/// A batch-level error for one of its commands (`EngineError` holds sources that do not clone).
fn same_error(error: &EngineError) -> EngineError {
    match error {
        EngineError::Overloaded => EngineError::Overloaded,
        EngineError::SaleNotFound => EngineError::SaleNotFound,
        EngineError::StorageFull => EngineError::StorageFull,
        _ => EngineError::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;
    use taquilla_domain::{BuyerId, Command, Item, Items, Quantity, Rejection, TicketTypeId};

    fn hold(sale: SaleId, buyer: usize, ticket_type: u32) -> Envelope {
        let mut items = Items::new();
        items.push(Item {
            ticket_type: TicketTypeId(ticket_type),
            quantity: Quantity::new(1).unwrap(),
        });
        Envelope {
            sale,
            command: Command::PlaceHold {
                buyer: BuyerId::parse(&format!("b{buyer}")).unwrap(),
                items,
                idempotency_key: None,
            },
            correlation_id: None,
        }
    }

    /// Reports that arrive together go to the engine as one batch, and each hears its own
    /// answer: one refused report does not refuse the others.
    #[tokio::test(flavor = "current_thread")]
    async fn reports_that_arrive_together_share_one_batch_and_keep_their_own_answers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_support::engine(dir.path());
        let sale = test_support::open_sale(&engine).await;
        let (reporter, task) = Reporter::start(engine.clone());
        let batches_before = engine.stats().batches.load(std::sync::atomic::Ordering::Relaxed);

        // Ticket type 7 does not exist: that one report is refused.
        let reports = (0..50).map(|buyer| reporter.submit(hold(sale, buyer, if buyer == 13 { 7 } else { 0 })));
        let answers = futures_util::future::join_all(reports).await;

        for (buyer, answer) in answers.iter().enumerate() {
            match (buyer, answer) {
                (13, Err(EngineError::Rejected(r))) => assert!(!matches!(r, Rejection::InsufficientInventory { .. })),
                (13, other) => panic!("the report for a missing type was taken: {other:?}"),
                (_, a) => assert!(a.is_ok(), "buyer {buyer}: {a:?}"),
            }
        }
        let batches = engine.stats().batches.load(std::sync::atomic::Ordering::Relaxed) - batches_before;
        assert_eq!(batches, 1, "50 reports sent together make one batch");
        let held = engine.read(sale, |s| s.holds.len()).unwrap();
        assert_eq!(held, 49);
        task.abort();
    }

    /// With the reporter gone, a report is answered `Stopped` (the saga retries it later),
    /// never left waiting.
    #[tokio::test(flavor = "current_thread")]
    async fn a_report_after_the_reporter_stopped_is_answered_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_support::engine(dir.path());
        let sale = test_support::open_sale(&engine).await;
        let (reporter, task) = Reporter::start(engine.clone());
        task.abort();
        let _ = task.await;
        let answer = reporter.submit(hold(sale, 1, 0)).await;
        assert!(matches!(answer, Err(EngineError::Stopped)), "{answer:?}");
    }
}
