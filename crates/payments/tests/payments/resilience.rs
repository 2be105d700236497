//! The resilience layers on tokio's paused time: the deadline, retries with backoff, jitter
//! and a budget, the circuit breaker, the assembled stack, and the metrics they report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use taquilla_domain::MoneyMinor;
use taquilla_payments::resilience::{
    BreakerConfig, BreakerLayer, BreakerState, DeadlineLayer, ResilienceConfig, RetryConfig, RetryLayer, stack,
    stack_with_breaker,
};
use taquilla_payments::{
    IdempotencyKey, IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse,
};
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

/// What the scripted provider does with its `n`-th call (from 0).
#[derive(Clone)]
enum Act {
    Answer(Result<ProviderResponse, ProviderError>),
    Hang,
    After(Duration, Result<ProviderResponse, ProviderError>),
}

type Script = Arc<dyn Fn(usize) -> Act + Send + Sync>;

/// A provider that follows a script and remembers when and with what it was called.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<Script>>,
    calls: Arc<Mutex<Vec<(Instant, ProviderRequest)>>>,
}

impl Scripted {
    fn new(script: impl Fn(usize) -> Act + Send + Sync + 'static) -> Scripted {
        Scripted {
            script: Arc::new(Mutex::new(Arc::new(script))),
            calls: Arc::default(),
        }
    }

    fn set(&self, script: impl Fn(usize) -> Act + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn times(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    fn service(&self) -> PaymentService {
        BoxCloneSyncService::new(self.clone())
    }
}

impl Service<ProviderRequest> for Scripted {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<ProviderResponse, ProviderError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), ProviderError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((Instant::now(), request));
            calls.len() - 1
        };
        let act = (self.script.lock().unwrap())(n);
        Box::pin(async move {
            match act {
                Act::Answer(r) => r,
                Act::Hang => std::future::pending().await,
                Act::After(d, r) => {
                    tokio::time::sleep(d).await;
                    r
                }
            }
        })
    }
}

fn transient() -> Result<ProviderResponse, ProviderError> {
    Err(ProviderError::Transient {
        provider: "scripted",
        message: "down".into(),
    })
}

fn unknown() -> Result<ProviderResponse, ProviderError> {
    Err(ProviderError::Unknown {
        provider: "scripted",
        message: "lost".into(),
    })
}

fn refused() -> Result<ProviderResponse, ProviderError> {
    Err(ProviderError::Refused {
        provider: "scripted",
        message: "no".into(),
    })
}

fn captured() -> Result<ProviderResponse, ProviderError> {
    Ok(ProviderResponse::Status(IntentStatus::Captured))
}

fn capture(n: u32) -> ProviderRequest {
    ProviderRequest::Capture {
        key: IdempotencyKey::new(&format!("ord_{n}"), 1, "capture"),
        intent: IntentId(format!("pi_{n}")),
    }
}

async fn call(svc: &mut PaymentService, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
    svc.ready().await?.call(request).await
}

/// Every call's answer, all sent at once.
async fn storm(svc: &PaymentService, calls: u32) -> Vec<Result<ProviderResponse, ProviderError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..calls {
        let mut svc = svc.clone();
        tasks.spawn(async move { call(&mut svc, capture(n)).await });
    }
    tasks.join_all().await
}

fn recorder() -> (DebuggingRecorder, Seen) {
    let recorder = DebuggingRecorder::new();
    let seen = Seen {
        snapshotter: recorder.snapshotter(),
        counters: Vec::new(),
        gauges: HashMap::new(),
        histograms: HashMap::new(),
    };
    (recorder, seen)
}

type CounterSeen = (String, Vec<(String, String)>, u64);

/// What the recorder saw, accumulated: a snapshot resets its counters, gauges and histograms,
/// so counters and histogram lengths are summed over snapshots, and a gauge reads what was
/// set since the previous query (0 if nothing was).
struct Seen {
    snapshotter: Snapshotter,
    /// (name, labels, value) per snapshot.
    counters: Vec<CounterSeen>,
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, usize>,
}

impl Seen {
    fn refresh(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let name = key.key().name().to_string();
            match value {
                DebugValue::Counter(c) => {
                    let labels = key
                        .key()
                        .labels()
                        .map(|l| (l.key().to_string(), l.value().to_string()))
                        .collect();
                    self.counters.push((name, labels, c));
                }
                DebugValue::Gauge(g) => {
                    self.gauges.insert(name, g.into_inner());
                }
                DebugValue::Histogram(h) => *self.histograms.entry(name).or_insert(0) += h.len(),
            }
        }
    }

    /// The counter `name`, summed over every label set that includes `labels`.
    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        self.counters
            .iter()
            .filter(|(n, ls, _)| n == name && labels.iter().all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(.., c)| c)
            .sum()
    }

    fn gauge(&mut self, name: &str) -> f64 {
        self.refresh();
        *self.gauges.get(name).unwrap_or_else(|| panic!("no gauge {name}"))
    }

    fn histogram_len(&mut self, name: &str) -> usize {
        self.refresh();
        self.histograms.get(name).copied().unwrap_or(0)
    }
}

// --- The deadline --------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_deadline_turns_a_hung_capture_into_unknown_and_a_hung_status_into_transient() {
    let provider = Scripted::new(|_| Act::Hang);
    let mut svc = BoxCloneSyncService::new(DeadlineLayer::new("t", Duration::from_secs(2)).layer(provider.service()));
    let started = Instant::now();
    let r = call(&mut svc, capture(1)).await;
    assert!(matches!(r, Err(ProviderError::Unknown { .. })), "{r:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "answered at the deadline, not before or after"
    );
    let status = ProviderRequest::Status {
        intent: IntentId("pi_1".into()),
    };
    let r = call(&mut svc, status).await;
    assert!(matches!(r, Err(ProviderError::Transient { .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn an_answer_within_the_deadline_passes_through() {
    let provider = Scripted::new(|_| Act::After(Duration::from_millis(1_999), captured()));
    let mut svc = BoxCloneSyncService::new(DeadlineLayer::new("t", Duration::from_secs(2)).layer(provider.service()));
    assert_eq!(call(&mut svc, capture(1)).await, captured());
}

// --- Retries -------------------------------------------------------------------------------

/// A budget large enough never to bind.
fn generous(retries: u32, seed: u64) -> RetryConfig {
    RetryConfig {
        retries,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(1_000),
        budget_percent: 100,
        budget_min_per_sec: 10_000,
        budget_window: Duration::from_secs(10),
        seed,
    }
}

/// The waits before each retry, for `calls` calls that always fail, one after the other.
async fn waits(config: RetryConfig, calls: u32) -> Vec<Vec<Duration>> {
    let retries = config.retries as usize;
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let mut svc = BoxCloneSyncService::new(RetryLayer::new("t", config).layer(provider.service()));
    for n in 0..calls {
        assert_eq!(call(&mut svc, capture(n)).await, transient());
    }
    let times = provider.times();
    assert_eq!(times.len(), calls as usize * (retries + 1), "every retry was made");
    times
        .chunks(retries + 1)
        .map(|c| c.windows(2).map(|w| w[1] - w[0]).collect())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_and_is_jittered_within_bounds() {
    let config = generous(4, 7);
    let per_call = waits(config.clone(), 50).await;
    for n in 0..4u32 {
        let bound = config.backoff_bound(n);
        let waits: Vec<Duration> = per_call.iter().map(|w| w[n as usize]).collect();
        assert!(
            waits.iter().all(|w| *w <= bound),
            "retry {n}: a wait above {bound:?}: {waits:?}"
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 10, "retry {n} is not jittered: {waits:?}");
        assert!(
            waits.iter().any(|w| *w < bound / 2),
            "full jitter reaches low waits: {waits:?}"
        );
        assert!(waits.iter().any(|w| *w > bound / 2), "and high ones: {waits:?}");
    }
    let mean = |n: usize| per_call.iter().map(|w| w[n]).sum::<Duration>() / per_call.len() as u32;
    assert!(
        mean(0) < mean(1) && mean(1) < mean(2) && mean(2) < mean(3),
        "waits grow"
    );
    // The cap binds from retry 4 on (100 ms · 2⁴ > 1 s).
    assert_eq!(config.backoff_bound(4), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn jitter_is_deterministic_for_a_seed() {
    assert_eq!(waits(generous(3, 1), 5).await, waits(generous(3, 1), 5).await);
    assert_ne!(waits(generous(3, 1), 5).await, waits(generous(3, 2), 5).await);
}

#[tokio::test(start_paused = true)]
async fn only_retryable_errors_are_retried_always_with_the_same_request() {
    let provider = Scripted::new(|_| Act::Answer(refused()));
    let mut svc = BoxCloneSyncService::new(RetryLayer::new("t", generous(3, 0)).layer(provider.service()));
    assert_eq!(call(&mut svc, capture(1)).await, refused());
    assert_eq!(provider.count(), 1, "a refusal is not retried");

    let provider = Scripted::new(|n| Act::Answer(if n < 2 { unknown() } else { captured() }));
    let mut svc = BoxCloneSyncService::new(RetryLayer::new("t", generous(3, 0)).layer(provider.service()));
    assert_eq!(call(&mut svc, capture(1)).await, captured());
    let requests: Vec<ProviderRequest> = provider.calls.lock().unwrap().iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        requests,
        vec![capture(1); 3],
        "unknown outcomes retried with the same key"
    );

    let provider = Scripted::new(|_| Act::Answer(unknown()));
    let mut svc = BoxCloneSyncService::new(RetryLayer::new("t", generous(3, 0)).layer(provider.service()));
    assert_eq!(
        call(&mut svc, capture(1)).await,
        unknown(),
        "the last error when retries run out"
    );
    assert_eq!(provider.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_not_hidden_by_later_transient_failures() {
    let provider = Scripted::new(|n| Act::Answer(if n == 1 { unknown() } else { transient() }));
    let mut svc = BoxCloneSyncService::new(RetryLayer::new("t", generous(3, 0)).layer(provider.service()));
    assert_eq!(
        call(&mut svc, capture(1)).await,
        unknown(),
        "the capture may have happened"
    );
    assert_eq!(provider.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_retry_storm() {
    let (recorder, mut seen) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let budgeted = RetryConfig {
        retries: 3,
        budget_percent: 10,
        budget_min_per_sec: 1,
        budget_window: Duration::from_secs(10),
        ..generous(3, 0)
    };
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let svc = BoxCloneSyncService::new(RetryLayer::new("t", budgeted).layer(provider.service()));
    let answers = storm(&svc, 1_000).await;
    assert!(answers.iter().all(|a| *a == transient()));
    // 10 % of 1,000 calls, plus the reserve of 1 per second over the 10 s window.
    let retries = provider.count() - 1_000;
    assert!(retries <= 100 + 10, "{retries} retries for 1,000 calls");
    assert!(retries >= 50, "the budget allows some retries: {retries}");
    assert_eq!(seen.counter("taquilla_payment_retries_total", &[]), retries as u64);
    assert!(seen.counter("taquilla_payment_retry_budget_exhausted_total", &[("provider", "t")]) >= 890);

    // The same storm without a binding budget: three retries per call.
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let svc = BoxCloneSyncService::new(RetryLayer::new("t", generous(3, 0)).layer(provider.service()));
    storm(&svc, 1_000).await;
    assert_eq!(provider.count(), 4_000);
}

// --- The circuit breaker -------------------------------------------------------------------

fn breaker_config() -> BreakerConfig {
    BreakerConfig {
        window: Duration::from_secs(10),
        failures: 5,
        failure_rate_percent: 100,
        calls_min: 1_000,
        cool_down: Duration::from_secs(30),
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_answers_at_once_half_opens_and_closes_on_a_good_probe() {
    let (recorder, mut seen) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let layer = BreakerLayer::new("b", breaker_config());
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..4 {
        assert_eq!(call(&mut svc, capture(n)).await, transient());
        assert_eq!(handle.state(), BreakerState::Closed, "after {} failures", n + 1);
    }
    assert_eq!(call(&mut svc, capture(4)).await, transient());
    assert_eq!(handle.state(), BreakerState::Open, "the fifth failure opens it");
    assert_eq!(seen.gauge("taquilla_payment_breaker_state"), 2.0);

    let started = Instant::now();
    for n in 0..100 {
        let r = call(&mut svc, capture(n)).await;
        assert!(matches!(r, Err(ProviderError::Unavailable { .. })), "{r:?}");
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "answered at once");
    assert_eq!(provider.count(), 5, "the provider was not called while open");
    assert_eq!(handle.retry_after(), Some(Duration::from_secs(30)));

    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(matches!(
        call(&mut svc, capture(9)).await,
        Err(ProviderError::Unavailable { .. })
    ));
    assert_eq!(handle.retry_after(), Some(Duration::from_secs(1)));
    tokio::time::advance(Duration::from_secs(1)).await;

    provider.set(|_| Act::Answer(captured()));
    assert_eq!(call(&mut svc, capture(10)).await, captured(), "the probe goes through");
    assert_eq!(provider.count(), 6);
    assert_eq!(handle.state(), BreakerState::Closed, "a good probe closes it");
    assert_eq!(handle.retry_after(), None);
    assert_eq!(call(&mut svc, capture(11)).await, captured());
    for (from, to) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")] {
        let labels = [("provider", "b"), ("from", from), ("to", to)];
        assert_eq!(
            seen.counter("taquilla_payment_breaker_transitions_total", &labels),
            1,
            "{from} → {to}"
        );
    }
    assert_eq!(seen.gauge("taquilla_payment_breaker_state"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn one_probe_at_a_time_and_a_failed_probe_reopens() {
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let layer = BreakerLayer::new("b", breaker_config());
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..5 {
        let _ = call(&mut svc, capture(n)).await;
    }
    assert_eq!(handle.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        (handle.state(), handle.retry_after()),
        (BreakerState::HalfOpen, Some(Duration::ZERO)),
        "past the cool-down it reads half-open before any call: new payments may come"
    );

    provider.set(|_| Act::After(Duration::from_secs(1), transient()));
    let mut probe_svc = svc.clone();
    let probe = tokio::spawn(async move { call(&mut probe_svc, capture(100)).await });
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    let r = call(&mut svc, capture(101)).await;
    assert!(
        matches!(r, Err(ProviderError::Unavailable { .. })),
        "a second call while probing: {r:?}"
    );
    assert_eq!(probe.await.unwrap(), transient());
    assert_eq!(provider.count(), 6, "only the probe reached the provider");
    assert_eq!(handle.state(), BreakerState::Open, "a failed probe reopens it");
    assert_eq!(
        handle.retry_after(),
        Some(Duration::from_secs(30)),
        "for a whole cool-down"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_probe_lets_the_next_call_probe() {
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let layer = BreakerLayer::new("b", breaker_config());
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..5 {
        let _ = call(&mut svc, capture(n)).await;
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    provider.set(|n| if n == 5 { Act::Hang } else { Act::Answer(captured()) });
    let abandoned = tokio::time::timeout(Duration::from_secs(1), call(&mut svc, capture(5))).await;
    assert!(abandoned.is_err(), "the probe's caller gave up");
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    assert_eq!(call(&mut svc, capture(6)).await, captured(), "the next call probes");
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_opens_it_refusals_do_not_and_old_failures_slide_out() {
    let rate = BreakerConfig {
        failures: 1_000,
        failure_rate_percent: 50,
        calls_min: 10,
        ..breaker_config()
    };
    // Alternating good and bad: 50 % once ten attempts are in the window.
    let provider = Scripted::new(|n| Act::Answer(if n % 2 == 1 { transient() } else { captured() }));
    let layer = BreakerLayer::new("b", rate.clone());
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..9 {
        let _ = call(&mut svc, capture(n)).await;
    }
    assert_eq!(
        handle.state(),
        BreakerState::Closed,
        "nine attempts are below calls_min"
    );
    let _ = call(&mut svc, capture(9)).await;
    assert_eq!(handle.state(), BreakerState::Open, "5 failures of 10");

    let provider = Scripted::new(|_| Act::Answer(refused()));
    let layer = BreakerLayer::new("b", rate);
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..50 {
        assert_eq!(call(&mut svc, capture(n)).await, refused());
    }
    assert_eq!(
        handle.state(),
        BreakerState::Closed,
        "refusals are the provider working"
    );

    let provider = Scripted::new(|_| Act::Answer(unknown()));
    let layer = BreakerLayer::new("b", breaker_config());
    let handle = layer.handle();
    let mut svc = BoxCloneSyncService::new(layer.layer(provider.service()));
    for n in 0..4 {
        let _ = call(&mut svc, capture(n)).await;
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    for n in 0..4 {
        let _ = call(&mut svc, capture(n)).await;
    }
    assert_eq!(
        handle.state(),
        BreakerState::Closed,
        "the first four left the 10 s window"
    );
    let _ = call(&mut svc, capture(9)).await;
    assert_eq!(
        handle.state(),
        BreakerState::Open,
        "five unknown outcomes within the window"
    );
}

// --- The stack -----------------------------------------------------------------------------

fn quick() -> ResilienceConfig {
    ResilienceConfig {
        deadline: Duration::from_secs(2),
        retry: RetryConfig {
            retries: 3,
            ..RetryConfig::default()
        },
        breaker: BreakerConfig {
            failures: 20,
            failure_rate_percent: 50,
            calls_min: 10,
            ..BreakerConfig::default()
        },
    }
}

#[tokio::test(start_paused = true)]
async fn in_an_outage_the_breaker_opens_and_the_stack_answers_at_once() {
    let provider = Scripted::new(|_| Act::Answer(transient()));
    let (mut svc, handle) = stack_with_breaker("s", provider.service(), &quick());
    let mut n = 0;
    while handle.state() == BreakerState::Closed {
        // The call during which it opens ends `Unavailable` (its next attempt was refused).
        let r = call(&mut svc, capture(n)).await;
        assert!(
            matches!(
                r,
                Err(ProviderError::Transient { .. } | ProviderError::Unavailable { .. })
            ),
            "{r:?}"
        );
        n += 1;
        assert!(n < 20, "the breaker never opened");
    }
    // Every attempt counted, retries included: ten attempts, all failed (the rate rule: ≥ 50 %
    // of at least 10), opened it after fewer than ten calls.
    assert_eq!(provider.count(), 10);
    assert!(n < 10, "{n} calls");
    let started = Instant::now();
    for n in 0..1_000 {
        let r = call(&mut svc, capture(n)).await;
        assert!(matches!(r, Err(ProviderError::Unavailable { .. })), "{r:?}");
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff sleeps while open");
    assert_eq!(provider.count(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_flaky_provider_is_retried_to_success_and_metered() {
    let (recorder, mut seen) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    // The first attempt hangs (the deadline ends it), the second answers.
    let provider = Scripted::new(|n| if n == 0 { Act::Hang } else { Act::Answer(captured()) });
    let mut svc = stack("s", provider.service(), &quick());
    let started = Instant::now();
    assert_eq!(call(&mut svc, capture(1)).await, captured());
    assert!(started.elapsed() >= Duration::from_secs(2), "waited for the deadline");
    let op = ("operation", "capture");
    assert_eq!(
        seen.counter("taquilla_payment_calls_total", &[op, ("outcome", "ok")]),
        1
    );
    assert_eq!(seen.counter("taquilla_payment_calls_total", &[]), 1);
    assert_eq!(
        seen.counter("taquilla_payment_attempts_total", &[op, ("outcome", "unknown")]),
        1
    );
    assert_eq!(
        seen.counter("taquilla_payment_attempts_total", &[op, ("outcome", "ok")]),
        1
    );
    assert_eq!(seen.counter("taquilla_payment_retries_total", &[("provider", "s")]), 1);
    assert_eq!(seen.histogram_len("taquilla_payment_call_seconds"), 1);
    assert_eq!(seen.histogram_len("taquilla_payment_attempt_seconds"), 2);
    let refund = ProviderRequest::Refund {
        key: IdempotencyKey::new("ord_1", 1, "refund"),
        intent: IntentId("pi_1".into()),
        amount: MoneyMinor::new(1).unwrap(),
    };
    assert_eq!(call(&mut svc, refund).await, captured());
}

#[test]
fn the_defaults_are_valid_and_bad_values_are_named() {
    assert_eq!(ResilienceConfig::default().validate(), Ok(()));
    let slow = ResilienceConfig {
        deadline: Duration::from_secs(3_600),
        ..ResilienceConfig::default()
    };
    assert!(slow.validate().unwrap_err().contains("deadline"));
}
