//! Retries with exponential backoff, full jitter and a retry budget.
//!
//! Only [`ProviderError::is_retryable`] errors are retried (`Transient`, `Unknown`), always
//! with the same request — so the same idempotency key, which is what makes a retry after an
//! unknown outcome safe. Retry `n` (from 0) waits a time drawn uniformly from
//! `0..=min(cap, base · 2ⁿ)` ("full jitter": concurrent callers that failed together do not
//! come back together). The generator is seeded ([`RetryConfig::seed`]), so tests see the
//! same waits for a seed.
//!
//! An unknown outcome is never hidden: once an attempt answered `Unknown`, a later
//! `Transient` or `Unavailable` (the breaker opened meanwhile) would wrongly say that nothing
//! happened, so the call answers that `Unknown` instead; the reconciler then asks.
//!
//! The budget is tower's `TpsBudget` (on tokio's clock): every call deposits, every retry
//! withdraws, and retries may add at most `budget_percent` of the calls made over the last
//! `budget_window`, plus `budget_min_per_sec`. When a provider fails everything, callers get
//! its error after one attempt instead of multiplying the load by the retry count.
//!
//! Metrics: `taquilla_payment_retries_total` and `taquilla_payment_retry_budget_exhausted_total`
//! (labels provider, operation).

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, ServiceExt};

use crate::ReplyFuture;
use crate::limits::{
    BACKOFF_BASE_MS_DEFAULT, BACKOFF_CAP_MS_DEFAULT, BACKOFF_CAP_MS_MAX, RETRIES_DEFAULT, RETRIES_MAX,
    RETRY_BUDGET_MIN_PER_SEC_DEFAULT, RETRY_BUDGET_PERCENT_DEFAULT, RETRY_BUDGET_PERCENT_MAX,
    RETRY_BUDGET_WINDOW_SECS_DEFAULT, RETRY_BUDGET_WINDOW_SECS_MAX, RETRY_BUDGET_WINDOW_SECS_MIN,
};
use crate::provider::{PaymentService, ProviderError, ProviderRequest, ProviderResponse};
use crate::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt, at most.
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub budget_percent: u32,
    pub budget_min_per_sec: u32,
    pub budget_window: Duration,
    /// Seeds the jitter.
    pub seed: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            retries: RETRIES_DEFAULT,
            backoff_base: Duration::from_millis(BACKOFF_BASE_MS_DEFAULT),
            backoff_cap: Duration::from_millis(BACKOFF_CAP_MS_DEFAULT),
            budget_percent: RETRY_BUDGET_PERCENT_DEFAULT,
            budget_min_per_sec: RETRY_BUDGET_MIN_PER_SEC_DEFAULT,
            budget_window: Duration::from_secs(RETRY_BUDGET_WINDOW_SECS_DEFAULT),
            seed: 0,
        }
    }
}

impl RetryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.retries > RETRIES_MAX {
            return Err(format!("at most {RETRIES_MAX} retries"));
        }
        if self.backoff_base.is_zero() || self.backoff_base > self.backoff_cap {
            return Err("the backoff base must be above 0 and at most the cap".into());
        }
        if self.backoff_cap > Duration::from_millis(BACKOFF_CAP_MS_MAX) {
            return Err(format!("the backoff cap is at most {BACKOFF_CAP_MS_MAX} ms"));
        }
        if self.budget_percent > RETRY_BUDGET_PERCENT_MAX {
            return Err(format!("the retry budget is at most {RETRY_BUDGET_PERCENT_MAX} %"));
        }
        let window =
            Duration::from_secs(RETRY_BUDGET_WINDOW_SECS_MIN)..=Duration::from_secs(RETRY_BUDGET_WINDOW_SECS_MAX);
        if !window.contains(&self.budget_window) {
            return Err(format!(
                "the retry budget's window is {RETRY_BUDGET_WINDOW_SECS_MIN}–{RETRY_BUDGET_WINDOW_SECS_MAX} s"
            ));
        }
        Ok(())
    }

    /// The longest wait before retry `n` (from 0): `min(cap, base · 2ⁿ)`.
    pub fn backoff_bound(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.backoff_base.saturating_mul(factor).min(self.backoff_cap)
    }
}

/// The wait before retry `n`: uniform in `0..=backoff_bound(n)`, at millisecond grain.
fn full_jitter(config: &RetryConfig, n: u32, rng: &mut SplitMix64) -> Duration {
    let bound_ms = config.backoff_bound(n).as_millis() as u64;
    Duration::from_millis(rng.between(0, bound_ms))
}

#[derive(Clone)]
pub struct RetryLayer {
    provider: &'static str,
    config: Arc<RetryConfig>,
    budget: Arc<TpsBudget>,
    rng: Arc<Mutex<SplitMix64>>,
}

impl RetryLayer {
    /// `config` must be valid ([`RetryConfig::validate`]). Services made by one layer share
    /// its budget and its generator.
    pub fn new(provider: &'static str, config: RetryConfig) -> RetryLayer {
        assert!(config.validate().is_ok(), "invalid retry config: {config:?}");
        let budget = TpsBudget::new(
            config.budget_window,
            config.budget_min_per_sec,
            config.budget_percent as f32 / 100.0,
        );
        RetryLayer {
            provider,
            rng: Arc::new(Mutex::new(SplitMix64::new(config.seed))),
            config: Arc::new(config),
            budget: Arc::new(budget),
        }
    }
}

impl Layer<PaymentService> for RetryLayer {
    type Service = Retry;

    fn layer(&self, inner: PaymentService) -> Retry {
        Retry {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Retry {
    inner: PaymentService,
    layer: RetryLayer,
}

impl Service<ProviderRequest> for Retry {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        // The service polled ready makes the first attempt; a clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let operation = request.operation();
            let provider = layer.provider;
            layer.budget.deposit();
            let mut result = inner.call(request.clone()).await;
            for n in 0..layer.config.retries {
                match &result {
                    Err(e) if e.is_retryable() => {}
                    _ => break,
                }
                if !layer.budget.withdraw() {
                    metrics::counter!("taquilla_payment_retry_budget_exhausted_total",
                        "provider" => provider, "operation" => operation)
                    .increment(1);
                    break;
                }
                let wait = {
                    let mut rng = layer.rng.lock().unwrap_or_else(|p| p.into_inner());
                    full_jitter(&layer.config, n, &mut rng)
                };
                tokio::time::sleep(wait).await;
                metrics::counter!("taquilla_payment_retries_total", "provider" => provider, "operation" => operation)
                    .increment(1);
                let previous = std::mem::replace(&mut result, inner.ready().await?.call(request.clone()).await);
                if let (
                    Err(ProviderError::Transient { .. } | ProviderError::Unavailable { .. }),
                    Err(e @ ProviderError::Unknown { .. }),
                ) = (&result, previous)
                {
                    result = Err(e);
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap() {
        let c = RetryConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1_000),
            ..RetryConfig::default()
        };
        let bounds: Vec<u128> = (0..6).map(|n| c.backoff_bound(n).as_millis()).collect();
        assert_eq!(bounds, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(c.backoff_bound(40), Duration::from_millis(1_000), "no overflow");
    }

    #[test]
    fn validation() {
        assert_eq!(RetryConfig::default().validate(), Ok(()));
        let too_many = RetryConfig {
            retries: RETRIES_MAX + 1,
            ..RetryConfig::default()
        };
        assert!(too_many.validate().is_err());
        let window = RetryConfig {
            budget_window: Duration::from_secs(RETRY_BUDGET_WINDOW_SECS_MAX + 1),
            ..RetryConfig::default()
        };
        assert!(window.validate().is_err());
    }
}
