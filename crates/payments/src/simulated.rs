//! The `simulated` provider: the `test` provider's ledger behind a seeded model of a real
//! provider's misbehaviour — a latency drawn uniformly from `latency_ms_min..=latency_ms_max`,
//! and shares of declines, transient errors (nothing happened), unknown outcomes (it happened,
//! the answer was lost) and timeouts (it may have happened, and the answer hangs for
//! [`SIMULATED_HANG_MS`], past any deadline).
//!
//! Waiting is on tokio's clock, so tests run it on paused time. Deterministic for a seed: each
//! call's draws come from a generator seeded by (seed, the call's key, how many times that key
//! was sent before), not from a shared sequence, so concurrent calls interleaving differently
//! still get the same outcomes. Whether an `Authorise` is declined depends on its key alone.
//! With every rate at 0 and no latency it behaves as the `test` provider (the conformance
//! suite runs it so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::ReplyFuture;
use crate::ledger::{Authorisation, Ledger, Reply};
use crate::limits::{LEDGER_KEYS_MAX, SIMULATED_HANG_MS, SIMULATED_LATENCY_MS_MAX};
use crate::provider::{IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest};
use crate::rng::{SplitMix64, stable_hash};

/// The provider's name in errors and metrics.
pub const NAME: &str = "simulated";

const PPM: u32 = 1_000_000;

/// A share of calls, in parts per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rate(u32);

impl Rate {
    pub const ZERO: Rate = Rate(0);

    /// `percent` in `0.0..=100.0`.
    pub fn from_percent(percent: f64) -> Result<Rate, String> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!("{percent} is not a percentage between 0 and 100"));
        }
        Ok(Rate((percent * f64::from(PPM) / 100.0).round() as u32))
    }

    pub fn ppm(self) -> u32 {
        self.0
    }

    pub fn percent(self) -> f64 {
        f64::from(self.0) * 100.0 / f64::from(PPM)
    }

    /// Whether a draw uniform in `0..1_000_000` falls within this share.
    pub(crate) fn hit(self, draw_ppm: u32) -> bool {
        draw_ppm < self.0
    }
}

/// How the simulated provider behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedConfig {
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
    /// Share of new `Authorise` calls answered with a payment in `Declined`.
    pub decline: Rate,
    /// Share of calls answered `Transient` without taking effect.
    pub transient: Rate,
    /// Share of calls that take effect but answer `Unknown` (the reply was lost).
    pub unknown: Rate,
    /// Share of calls that hang, having taken effect or not (a coin flip), then answer
    /// `Unknown`.
    pub timeout: Rate,
    pub seed: u64,
}

impl Default for SimulatedConfig {
    /// No latency and no faults: the `test` provider's behaviour.
    fn default() -> Self {
        SimulatedConfig {
            latency_ms_min: 0,
            latency_ms_max: 0,
            decline: Rate::ZERO,
            transient: Rate::ZERO,
            unknown: Rate::ZERO,
            timeout: Rate::ZERO,
            seed: 0,
        }
    }
}

impl SimulatedConfig {
    /// The flash-sale bench's provider: 50–300 ms, 2 % declines, no errors.
    pub fn bench(seed: u64) -> SimulatedConfig {
        SimulatedConfig {
            latency_ms_min: 50,
            latency_ms_max: 300,
            decline: Rate(20_000),
            seed,
            ..SimulatedConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms_min > self.latency_ms_max {
            return Err(format!(
                "latency min {} ms is above max {} ms",
                self.latency_ms_min, self.latency_ms_max
            ));
        }
        if self.latency_ms_max > SIMULATED_LATENCY_MS_MAX {
            return Err(format!("latency is at most {SIMULATED_LATENCY_MS_MAX} ms"));
        }
        let faults = u64::from(self.transient.0) + u64::from(self.unknown.0) + u64::from(self.timeout.0);
        if faults > u64::from(PPM) {
            return Err("transient, unknown and timeout shares add up to more than 100 %".into());
        }
        Ok(())
    }
}

/// The `simulated` provider. Clones share one ledger.
#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    config: Arc<SimulatedConfig>,
    ledger: Arc<Ledger>,
    /// Times each call identity was sent, to seed its next draw. Bounded: cleared when full
    /// (determinism past [`LEDGER_KEYS_MAX`] identities is not worth the memory).
    sent: Arc<Mutex<HashMap<String, u32>>>,
}

/// What a call's draw decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Transient,
    Unknown,
    Timeout { applied: bool },
}

impl SimulatedProvider {
    pub fn new(config: SimulatedConfig) -> Result<SimulatedProvider, String> {
        config.validate()?;
        Ok(SimulatedProvider {
            config: Arc::new(config),
            ledger: Arc::new(Ledger::new(NAME)),
            sent: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// This provider as the port's boxed service (put it through
    /// [`crate::resilience::stack`]: it fails on purpose).
    pub fn service(&self) -> PaymentService {
        BoxCloneSyncService::new(self.clone())
    }

    /// Test control: the buyer paid with another card after a decline (→ `Authorised`).
    pub fn confirm(&self, intent: &IntentId) -> Result<(), String> {
        self.ledger.confirm(intent)
    }

    /// Test control: from now on, `Authorise` for `order_ref` is declined.
    pub fn decline_order(&self, order_ref: &str) {
        self.ledger.decline_order(order_ref);
    }

    /// The payments made for `order_ref`, oldest first, with their status.
    pub fn payments_of(&self, order_ref: &str) -> Vec<(IntentId, IntentStatus)> {
        self.ledger.payments_of(order_ref)
    }

    fn identity(request: &ProviderRequest) -> String {
        match request {
            ProviderRequest::Status { intent } => format!("status:{}", intent.0),
            other => other.key().map(|k| k.as_str().to_string()).unwrap_or_default(),
        }
    }

    fn times_sent(&self, identity: &str) -> u32 {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() >= LEDGER_KEYS_MAX && !sent.contains_key(identity) {
            sent.clear();
        }
        let n = sent.entry(identity.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    async fn answer(self, request: ProviderRequest) -> Reply {
        let c = &*self.config;
        let identity = Self::identity(&request);
        let n = self.times_sent(&identity);
        let mut rng = SplitMix64::new(stable_hash(c.seed, &[identity.as_bytes(), &n.to_le_bytes()]));
        let latency_ms = rng.between(c.latency_ms_min, c.latency_ms_max);
        if latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        let fault = self.draw_fault(&mut rng);
        let declined = match &request {
            ProviderRequest::Authorise { order_ref, .. } => {
                let draw = stable_hash(c.seed, &[b"decline", identity.as_bytes()]) % u64::from(PPM);
                self.ledger.order_declined(order_ref) || c.decline.hit(draw as u32)
            }
            _ => false,
        };
        let authorisation = if declined {
            Authorisation::Declined
        } else {
            Authorisation::Approved
        };
        match fault {
            Fault::None => self.ledger.apply(&request, authorisation),
            Fault::Transient => Err(ProviderError::Transient {
                provider: NAME,
                message: "simulated transient failure".into(),
            }),
            Fault::Unknown => {
                // Applied, then the answer is lost: the key's next call replays the result.
                let _ = self.ledger.apply(&request, authorisation);
                Err(unknown("simulated lost reply"))
            }
            Fault::Timeout { applied } => {
                if applied {
                    let _ = self.ledger.apply(&request, authorisation);
                }
                tokio::time::sleep(Duration::from_millis(SIMULATED_HANG_MS)).await;
                Err(unknown("simulated timeout"))
            }
        }
    }

    fn draw_fault(&self, rng: &mut SplitMix64) -> Fault {
        let c = &*self.config;
        let draw = rng.between(0, u64::from(PPM) - 1) as u32;
        let (t, u, h) = (c.transient.0, c.unknown.0, c.timeout.0);
        if draw < t {
            Fault::Transient
        } else if draw < t + u {
            Fault::Unknown
        } else if draw < t + u + h {
            Fault::Timeout {
                applied: rng.next_u64() & 1 == 1,
            }
        } else {
            Fault::None
        }
    }
}

fn unknown(message: &str) -> ProviderError {
    ProviderError::Unknown {
        provider: NAME,
        message: message.into(),
    }
}

impl Service<ProviderRequest> for SimulatedProvider {
    type Response = crate::provider::ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        Box::pin(self.clone().answer(request))
    }
}

#[cfg(test)]
mod tests {
    use taquilla_domain::{Currency, MoneyMinor};
    use tokio::time::Instant;

    use super::*;
    use crate::provider::{IdempotencyKey, ProviderResponse};

    fn authorise(order: &str) -> ProviderRequest {
        ProviderRequest::Authorise {
            key: IdempotencyKey::new(order, 1, "authorise"),
            amount: MoneyMinor::new(1_000).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            order_ref: order.into(),
            description: "test".into(),
        }
    }

    async fn outcomes(config: SimulatedConfig, calls: usize) -> Vec<String> {
        let mut svc = SimulatedProvider::new(config).unwrap().service();
        let mut out = Vec::new();
        for i in 0..calls {
            let r = tower::ServiceExt::ready(&mut svc)
                .await
                .unwrap()
                .call(authorise(&format!("o{i}")))
                .await;
            out.push(match r {
                Ok(ProviderResponse::Payment { status, .. }) => format!("{status:?}"),
                Ok(other) => format!("{other:?}"),
                Err(e) => e.kind().to_string(),
            });
        }
        out
    }

    fn faulty(seed: u64) -> SimulatedConfig {
        SimulatedConfig {
            latency_ms_min: 50,
            latency_ms_max: 300,
            decline: Rate::from_percent(10.0).unwrap(),
            transient: Rate::from_percent(10.0).unwrap(),
            unknown: Rate::from_percent(10.0).unwrap(),
            timeout: Rate::from_percent(10.0).unwrap(),
            seed,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_outcomes_other_seed_others() {
        let a = outcomes(faulty(1), 200).await;
        let b = outcomes(faulty(1), 200).await;
        let c = outcomes(faulty(2), 200).await;
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Every kind of outcome shows up at these rates, in roughly its share.
        for kind in ["transient", "unknown", "Authorised"] {
            assert!(a.iter().any(|o| o == kind), "no {kind} in {a:?}");
        }
        let declined = a.iter().filter(|o| o.starts_with("Declined")).count();
        assert!((5..=40).contains(&declined), "{declined} declines of 200 at 10 %");
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_drawn_within_bounds() {
        let config = SimulatedConfig {
            latency_ms_min: 50,
            latency_ms_max: 300,
            ..SimulatedConfig::default()
        };
        let mut svc = SimulatedProvider::new(config).unwrap().service();
        let mut seen = Vec::new();
        for i in 0..100 {
            let started = Instant::now();
            let r = tower::ServiceExt::ready(&mut svc)
                .await
                .unwrap()
                .call(authorise(&format!("o{i}")))
                .await;
            assert!(r.is_ok());
            seen.push(started.elapsed());
        }
        assert!(
            seen.iter()
                .all(|d| *d >= Duration::from_millis(50) && *d <= Duration::from_millis(300))
        );
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert!(distinct.len() > 50, "latency barely varies: {distinct:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_reply_took_effect_and_the_same_key_replays_it() {
        let config = SimulatedConfig {
            unknown: Rate::from_percent(100.0).unwrap(),
            ..SimulatedConfig::default()
        };
        let provider = SimulatedProvider::new(config).unwrap();
        let mut svc = provider.service();
        let r = tower::ServiceExt::ready(&mut svc)
            .await
            .unwrap()
            .call(authorise("o1"))
            .await;
        assert_eq!(r.unwrap_err().kind(), "unknown");
        assert_eq!(provider.payments_of("o1").len(), 1, "the lost call took effect");
        let again = tower::ServiceExt::ready(&mut svc)
            .await
            .unwrap()
            .call(authorise("o1"))
            .await;
        assert_eq!(again.unwrap_err().kind(), "unknown");
        assert_eq!(
            provider.payments_of("o1").len(),
            1,
            "a repeated key made no second payment"
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = SimulatedConfig {
            latency_ms_min: 10,
            latency_ms_max: 5,
            ..SimulatedConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("above max"));
        let too_many = SimulatedConfig {
            transient: Rate::from_percent(60.0).unwrap(),
            unknown: Rate::from_percent(60.0).unwrap(),
            ..SimulatedConfig::default()
        };
        assert!(too_many.validate().unwrap_err().contains("100 %"));
        assert!(Rate::from_percent(101.0).is_err());
        assert_eq!(Rate::from_percent(2.0).unwrap().ppm(), 20_000);
    }
}
