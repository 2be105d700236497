//! A circuit breaker per provider: closed → open → half-open → closed.
//!
//! - **Closed**: calls go through; attempts and failures are counted over a sliding window
//!   ([`BREAKER_WINDOW_BUCKETS`] buckets). It opens when the window holds `failures` failures,
//!   or, once it holds `calls_min` attempts, when `failure_rate_percent` of them failed.
//! - **Open**: every call is answered `Unavailable` at once, without calling the provider,
//!   for `cool_down`. [`BreakerHandle::retry_after`] says how long is left (the API's
//!   `Retry-After`).
//! - **Half-open**: after the cool-down, one call (the probe) goes through and the others are
//!   answered `Unavailable`. The probe's success closes the breaker (counts reset); its failure
//!   opens it for another cool-down. A probe abandoned by its caller lets the next call probe.
//!
//! A failure is `Transient` or `Unknown` (a deadline's answer included) or `Unavailable`;
//! `Refused` is the provider working as it should.
//!
//! Our own layer (this file) rather than tower-resilience 0.13's breaker: that one wraps our errors
//! in its own type (we need `ProviderError::Unavailable`), reports state through callbacks
//! rather than the read handle the API needs for `Retry-After`, and brings its crate family
//! for a state machine this size.
//!
//! Metrics: `taquilla_payment_breaker_state` (gauge: 0 closed, 1 half-open, 2 open) and
//! `taquilla_payment_breaker_transitions_total` (labels from, to), both labelled provider.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, Service};

use crate::ReplyFuture;
use crate::limits::{
    BREAKER_CALLS_MIN_DEFAULT, BREAKER_COOL_DOWN_MS_DEFAULT, BREAKER_COOL_DOWN_MS_MAX, BREAKER_COOL_DOWN_MS_MIN,
    BREAKER_FAILURE_RATE_PERCENT_DEFAULT, BREAKER_FAILURES_DEFAULT, BREAKER_WINDOW_BUCKETS,
    BREAKER_WINDOW_SECS_DEFAULT, BREAKER_WINDOW_SECS_MAX,
};
use crate::provider::{PaymentService, ProviderError, ProviderRequest, ProviderResponse};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    pub window: Duration,
    pub failures: u32,
    pub failure_rate_percent: u32,
    pub calls_min: u32,
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(BREAKER_WINDOW_SECS_DEFAULT),
            failures: BREAKER_FAILURES_DEFAULT,
            failure_rate_percent: BREAKER_FAILURE_RATE_PERCENT_DEFAULT,
            calls_min: BREAKER_CALLS_MIN_DEFAULT,
            cool_down: Duration::from_millis(BREAKER_COOL_DOWN_MS_DEFAULT),
        }
    }
}

impl BreakerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let window = Duration::from_secs(BREAKER_WINDOW_BUCKETS as u64)..=Duration::from_secs(BREAKER_WINDOW_SECS_MAX);
        if !window.contains(&self.window) {
            return Err(format!(
                "the breaker's window is {BREAKER_WINDOW_BUCKETS}–{BREAKER_WINDOW_SECS_MAX} s"
            ));
        }
        if self.failures == 0 || self.calls_min == 0 {
            return Err("the breaker's failure and call thresholds must be above 0".into());
        }
        if !(1..=100).contains(&self.failure_rate_percent) {
            return Err("the breaker's failure rate is 1–100 %".into());
        }
        let cool_down =
            Duration::from_millis(BREAKER_COOL_DOWN_MS_MIN)..=Duration::from_millis(BREAKER_COOL_DOWN_MS_MAX);
        if !cool_down.contains(&self.cool_down) {
            return Err(format!(
                "the breaker's cool-down is {BREAKER_COOL_DOWN_MS_MIN}–{BREAKER_COOL_DOWN_MS_MAX} ms"
            ));
        }
        Ok(())
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
enum Mode {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    buckets: [Bucket; BREAKER_WINDOW_BUCKETS],
    current: usize,
    current_started: Instant,
}

#[derive(Debug)]
struct Shared {
    provider: &'static str,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// A read-only view of one breaker, for the API (`503` with `Retry-After` while open).
#[derive(Debug, Clone)]
pub struct BreakerHandle {
    shared: Arc<Shared>,
}

impl BreakerHandle {
    /// Where the breaker stands for a new call: an open breaker past its cool-down reads
    /// half-open (the next call is the probe), though it moves only when a call comes.
    pub fn state(&self) -> BreakerState {
        let inner = self.shared.lock();
        match inner.mode {
            Mode::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            _ => inner.state(),
        }
    }

    /// While open, the time left before a probe is let through; while half-open, the
    /// cool-down (a probe is deciding); closed: `None`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.shared.lock().mode {
            Mode::Closed => None,
            Mode::Open { until } => Some(until.saturating_duration_since(Instant::now())),
            Mode::HalfOpen { .. } => Some(self.shared.config.cool_down),
        }
    }
}

impl Inner {
    fn state(&self) -> BreakerState {
        match self.mode {
            Mode::Closed => BreakerState::Closed,
            Mode::Open { .. } => BreakerState::Open,
            Mode::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Moves the window to `now`: buckets older than the window are emptied.
    fn slide(&mut self, now: Instant, window: Duration) {
        let width = window / BREAKER_WINDOW_BUCKETS as u32;
        let mut moved = 0;
        while now >= self.current_started + width && moved <= BREAKER_WINDOW_BUCKETS {
            self.current = (self.current + 1) % BREAKER_WINDOW_BUCKETS;
            self.buckets[self.current] = Bucket::default();
            self.current_started += width;
            moved += 1;
        }
        if moved > BREAKER_WINDOW_BUCKETS {
            // Idle for longer than the window: everything is empty; restart from now.
            self.current_started = now;
        }
    }

    fn reset_window(&mut self, now: Instant) {
        self.buckets = [Bucket::default(); BREAKER_WINDOW_BUCKETS];
        self.current_started = now;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn transition(&self, inner: &mut Inner, to: Mode) {
        let from = inner.state();
        inner.mode = to;
        let to = inner.state();
        tracing::info!(
            provider = self.provider,
            from = from.name(),
            to = to.name(),
            "payment circuit breaker"
        );
        metrics::counter!("taquilla_payment_breaker_transitions_total",
            "provider" => self.provider, "from" => from.name(), "to" => to.name())
        .increment(1);
        metrics::gauge!("taquilla_payment_breaker_state", "provider" => self.provider).set(to.gauge());
    }

    /// Lets a call through (`Ok(is_probe)`) or answers `Unavailable`.
    fn admit(&self) -> Result<bool, ProviderError> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.mode {
            Mode::Closed => Ok(false),
            Mode::Open { until } if now >= until => {
                self.transition(&mut inner, Mode::HalfOpen { probing: true });
                Ok(true)
            }
            Mode::HalfOpen { probing: false } => {
                inner.mode = Mode::HalfOpen { probing: true };
                Ok(true)
            }
            Mode::Open { until } => Err(self.unavailable(format!(
                "circuit open for {} ms more",
                until.saturating_duration_since(now).as_millis()
            ))),
            Mode::HalfOpen { probing: true } => Err(self.unavailable("circuit half-open, a probe is deciding".into())),
        }
    }

    fn unavailable(&self, message: String) -> ProviderError {
        ProviderError::Unavailable {
            provider: self.provider,
            message,
        }
    }

    fn record(&self, probe: bool, failed: bool) {
        let mut inner = self.lock();
        let now = Instant::now();
        if probe {
            if failed {
                let until = now + self.config.cool_down;
                self.transition(&mut inner, Mode::Open { until });
            } else {
                inner.reset_window(now);
                self.transition(&mut inner, Mode::Closed);
            }
            return;
        }
        if !matches!(inner.mode, Mode::Closed) {
            // Answered after the breaker opened: that outcome is already accounted for.
            return;
        }
        inner.slide(now, self.config.window);
        let current = inner.current;
        inner.buckets[current].calls += 1;
        inner.buckets[current].failures += u32::from(failed);
        let (calls, failures) = inner.buckets.iter().fold((0u64, 0u64), |(c, f), b| {
            (c + u64::from(b.calls), f + u64::from(b.failures))
        });
        let c = &self.config;
        let too_many = failures >= u64::from(c.failures);
        let too_often = calls >= u64::from(c.calls_min) && failures * 100 >= calls * u64::from(c.failure_rate_percent);
        if failed && (too_many || too_often) {
            self.transition(
                &mut inner,
                Mode::Open {
                    until: now + c.cool_down,
                },
            );
        }
    }

    /// A probe's caller went away before it was answered: let the next call probe.
    fn abandon_probe(&self) {
        let mut inner = self.lock();
        if let Mode::HalfOpen { probing: true } = inner.mode {
            inner.mode = Mode::HalfOpen { probing: false };
        }
    }
}

/// Reports an admitted call's outcome; dropped unanswered, it releases a probe.
struct Permit {
    shared: Arc<Shared>,
    probe: bool,
    done: bool,
}

impl Permit {
    fn finish(mut self, failed: bool) {
        self.done = true;
        self.shared.record(self.probe, failed);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.shared.abandon_probe();
        }
    }
}

#[derive(Debug, Clone)]
pub struct BreakerLayer {
    shared: Arc<Shared>,
}

impl BreakerLayer {
    /// One breaker: every service this layer makes shares it. `config` must be valid.
    pub fn new(provider: &'static str, config: BreakerConfig) -> BreakerLayer {
        assert!(config.validate().is_ok(), "invalid breaker config: {config:?}");
        metrics::gauge!("taquilla_payment_breaker_state", "provider" => provider).set(BreakerState::Closed.gauge());
        BreakerLayer {
            shared: Arc::new(Shared {
                provider,
                config,
                inner: Mutex::new(Inner {
                    mode: Mode::Closed,
                    buckets: [Bucket::default(); BREAKER_WINDOW_BUCKETS],
                    current: 0,
                    current_started: Instant::now(),
                }),
            }),
        }
    }

    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Layer<PaymentService> for BreakerLayer {
    type Service = Breaker;

    fn layer(&self, inner: PaymentService) -> Breaker {
        Breaker {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Clone)]
pub struct Breaker {
    inner: PaymentService,
    shared: Arc<Shared>,
}

impl Service<ProviderRequest> for Breaker {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        let probe = match self.shared.admit() {
            Ok(probe) => probe,
            Err(unavailable) => return Box::pin(std::future::ready(Err(unavailable))),
        };
        let permit = Permit {
            shared: Arc::clone(&self.shared),
            probe,
            done: false,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let failed = matches!(
                result,
                Err(ProviderError::Transient { .. }
                    | ProviderError::Unknown { .. }
                    | ProviderError::Unavailable { .. })
            );
            permit.finish(failed);
            result
        })
    }
}
