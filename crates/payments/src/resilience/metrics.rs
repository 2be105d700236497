//! Per-provider metrics (through the `metrics` facade): calls by operation and outcome, and
//! their latency. The stack puts one instance outside the retries (`Scope::Call`: what the
//! saga saw) and one inside the breaker (`Scope::Attempt`: what the provider was asked), so
//! `attempts - calls` is what retries added and a breaker's refusals are not attempts.
//!
//! | name | labels |
//! |---|---|
//! | `taquilla_payment_calls_total`, `taquilla_payment_attempts_total` | provider, operation, outcome (`ok`, `transient`, `unknown`, `refused`, `unavailable`) |
//! | `taquilla_payment_call_seconds`, `taquilla_payment_attempt_seconds` (histograms) | provider, operation |
//!
//! The breaker and the retries have their own (see their modules).

use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::{Layer, Service};

use crate::ReplyFuture;
use crate::provider::{PaymentService, ProviderError, ProviderRequest, ProviderResponse};

/// Which side of the retries the metrics are taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Call,
    Attempt,
}

impl Scope {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Scope::Call => ("taquilla_payment_calls_total", "taquilla_payment_call_seconds"),
            Scope::Attempt => ("taquilla_payment_attempts_total", "taquilla_payment_attempt_seconds"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsLayer {
    provider: &'static str,
    scope: Scope,
}

impl MetricsLayer {
    pub fn new(provider: &'static str, scope: Scope) -> MetricsLayer {
        MetricsLayer { provider, scope }
    }
}

impl Layer<PaymentService> for MetricsLayer {
    type Service = Metered;

    fn layer(&self, inner: PaymentService) -> Metered {
        Metered {
            inner,
            provider: self.provider,
            scope: self.scope,
        }
    }
}

#[derive(Clone)]
pub struct Metered {
    inner: PaymentService,
    provider: &'static str,
    scope: Scope,
}

impl Service<ProviderRequest> for Metered {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        let operation = request.operation();
        let provider = self.provider;
        let (calls, seconds) = self.scope.names();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            metrics::counter!(calls, "provider" => provider, "operation" => operation, "outcome" => outcome)
                .increment(1);
            metrics::histogram!(seconds, "provider" => provider, "operation" => operation)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
