//! One look at an order: read the next call from the sale's state, make it, read the answer,
//! report it. Everything here runs on the saga's tasks, never on a shard thread.

use std::time::Duration;

use compact_str::CompactString;
use taquilla_domain::{Command, Order, OrderId, PaymentMethod, PaymentRef, SaleId};
use taquilla_engine::{EngineError, Envelope};
use taquilla_payments::{PaymentService, ProviderError, ProviderRequest};
use tokio::time::Instant;
use tower::ServiceExt;

use super::Inner;
use super::step::{self, Action, Step, Verdict};
use super::work::{Look, Progress, WorkKey};

impl Inner {
    /// Looks at one order and makes its next provider call, if any.
    pub(super) async fn advance(&self, look: Look) -> Progress {
        let (sale, order) = look.key;
        let next = self
            .engine
            .read(sale, |s| step::next(&self.namespace, sale, s, order, look.round))
            .flatten();
        match next {
            None => Progress::Done,
            Some(Action::Call { method, request, step }) => self.call(look, method, request, step).await,
            Some(Action::AwaitBuyer {
                method,
                attempt,
                intent,
                since,
            }) => {
                let now = self.engine.clock().now();
                let due_ms = since.0.saturating_add(self.config.reconcile_after.as_millis() as i64);
                if now.0 < due_ms {
                    let wait = Duration::from_millis((due_ms - now.0) as u64);
                    return Progress::WaitUntil(Instant::now() + wait);
                }
                let status = ProviderRequest::Status { intent };
                self.call(look, method, status, Step::Status { attempt }).await
            }
        }
    }

    async fn call(&self, look: Look, method: PaymentMethod, request: ProviderRequest, step: Step) -> Progress {
        let Some(service) = self.providers.service(method) else {
            tracing::error!(
                method = method.as_str(),
                "saga: no provider configured for a pending payment"
            );
            return Progress::Retry { unknown: false };
        };
        let reply = service.clone().oneshot(request.clone()).await;
        let error = reply.as_ref().err().cloned();
        let unknown = matches!(error, Some(ProviderError::Unknown { .. }));
        let mut verdict = step::verdict(look.key.1, step, &request, reply);
        if unknown && verdict == Verdict::Retry {
            let refund_age = self.refund_age(look.key, step);
            if let Some(v) = step::after_unknowns(look.key.1, step, look.unknowns + 1, refund_age) {
                verdict = v;
            }
        }
        if verdict == Verdict::AskStatus {
            verdict = self.ask_status(look.key, service, step, &request, error).await;
        }
        metrics::counter!("taquilla_saga_steps_total", "step" => step.name(), "verdict" => verdict.name()).increment(1);
        match verdict {
            Verdict::Report(commands) => self.report(look.key, step, commands).await,
            Verdict::Retry | Verdict::AskStatus => Progress::Retry { unknown },
            Verdict::RetryFreshKey => Progress::RetryFreshKey,
            Verdict::StillAwaitingBuyer => Progress::WaitUntil(Instant::now() + self.config.reconcile_after),
        }
    }

    /// Settles a capture or void whose outcome is unknown, or that was refused, by the
    /// payment's status at the provider.
    async fn ask_status(
        &self,
        key: WorkKey,
        service: PaymentService,
        step: Step,
        request: &ProviderRequest,
        error: Option<ProviderError>,
    ) -> Verdict {
        let (ProviderRequest::Void { intent, .. } | ProviderRequest::Capture { intent, .. }) = request else {
            return Verdict::Retry;
        };
        let (Some(error), Ok(intent_ref)) = (error, PaymentRef::parse(&intent.0)) else {
            return Verdict::Retry;
        };
        let status = service
            .oneshot(ProviderRequest::Status { intent: intent.clone() })
            .await;
        step::verdict_on_status(key.1, step, &intent_ref, &error, status)
    }

    /// How long ago the refund a step is about was requested (engine clock).
    fn refund_age(&self, (sale, order): WorkKey, step: Step) -> Option<Duration> {
        let Step::Refund { refund } = step else {
            return None;
        };
        let now = self.engine.clock().now();
        let requested = self
            .engine
            .read(sale, |s| {
                let o = s.orders.get(&order)?;
                o.refunds.iter().find(|r| r.number == refund).map(|r| r.requested_at)
            })
            .flatten()?;
        Some(Duration::from_millis(now.0.saturating_sub(requested.0).max(0) as u64))
    }

    /// Submits the reports in order, each durable before the next (through the
    /// [`Reporter`](super::report::Reporter), which batches them with other orders' reports). `Again` only if the order
    /// moved: a report that changed nothing (a provider answer the domain has already taken
    /// into account) must not make the saga call again at once, or it would spin.
    async fn report(&self, (sale, order): WorkKey, step: Step, commands: Vec<Command>) -> Progress {
        let before = self.order_progress(sale, order);
        let correlation = correlation_id(sale, order, step);
        for command in commands {
            let env = Envelope {
                sale,
                command,
                correlation_id: Some(correlation.clone()),
            };
            match self.reporter.submit(env).await {
                Ok(_) => {}
                // The state moved on: the report no longer applies.
                Err(EngineError::Rejected(r)) => {
                    tracing::warn!(sale = sale.0, order = order.0, rejection = %r, "saga: report refused");
                    break;
                }
                Err(e) => {
                    tracing::warn!(sale = sale.0, order = order.0, error = %e, "saga: report not taken");
                    return Progress::Retry { unknown: false };
                }
            }
        }
        self.watch.moved(sale, order);
        if self.order_progress(sale, order) == before {
            Progress::Retry { unknown: false }
        } else {
            Progress::Again
        }
    }

    /// What the saga's reports can move: the order's state, its payments' histories, its
    /// refunds and how many are settled.
    fn order_progress(&self, sale: SaleId, order: OrderId) -> Option<(taquilla_domain::OrderState, usize)> {
        self.engine
            .read(sale, |s| s.orders.get(&order).map(|o| (o.state, steps(o))))
            .flatten()
    }
}

fn steps(o: &Order) -> usize {
    let payments: usize = o.payments.iter().map(|p| p.steps.len()).sum();
    let settled = o.refunds.iter().filter(|r| r.settled_at.is_some()).count();
    payments + o.refunds.len() + settled
}

/// `saga:ord_<sale>_<order>:<step>`: the correlation id of the saga's reports.
fn correlation_id(sale: SaleId, order: OrderId, step: Step) -> CompactString {
    compact_str::format_compact!("saga:ord_{}_{}:{}", sale.0, order.0, step.name())
}
