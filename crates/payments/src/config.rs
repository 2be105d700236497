//! Payment settings from the command line, and the providers they make.
//!
//! The binary gathers the raw values with its own precedence (flags > environment > config
//! file) into [`PaymentFlags`]; [`PaymentFlags::resolve`] checks them and names the flag at
//! fault in every error; [`Providers::build`] makes one resilient [`PaymentService`] per
//! enabled method, plus the webhook verifier when Stripe is on.
//!
//! | flag | meaning |
//! |---|---|
//! | `--payment-methods` | comma-separated: `test`, `simulated`, `stripe` (none by default) |
//! | `--stripe-secret-key` | `sk_…` or `rk_…`; required with `stripe` |
//! | `--stripe-webhook-secret` | `whsec_…`, repeatable or comma-separated (rotation); required with `stripe` |
//! | `--stripe-api-base` | default `https://api.stripe.com` |
//! | `--simulated-latency-ms` | `MIN..MAX` or `MS` (default `50..300`) |
//! | `--simulated-decline-percent` | default 2 |
//! | `--simulated-transient-percent`, `--simulated-unknown-percent`, `--simulated-timeout-percent` | default 0 |
//! | `--simulated-seed` | default 0 |

use std::collections::BTreeMap;
use std::fmt;

use taquilla_domain::PaymentMethod;

use crate::limits::WEBHOOK_SECRETS_MAX;
use crate::provider::PaymentService;
use crate::resilience::{BreakerHandle, ResilienceConfig, stack_with_breaker};
use crate::simulated::{Rate, SimulatedConfig, SimulatedProvider};
use crate::stripe::webhook::WebhookVerifier;
use crate::stripe::{StripeConfig, StripeProvider};
use crate::test_provider::TestProvider;

/// The flags' names, for error messages and the binary's `#[arg(long = …)]`.
pub mod flags {
    pub const PAYMENT_METHODS: &str = "--payment-methods";
    pub const STRIPE_SECRET_KEY: &str = "--stripe-secret-key";
    pub const STRIPE_WEBHOOK_SECRET: &str = "--stripe-webhook-secret";
    pub const STRIPE_API_BASE: &str = "--stripe-api-base";
    pub const SIMULATED_LATENCY_MS: &str = "--simulated-latency-ms";
    pub const SIMULATED_DECLINE_PERCENT: &str = "--simulated-decline-percent";
    pub const SIMULATED_TRANSIENT_PERCENT: &str = "--simulated-transient-percent";
    pub const SIMULATED_UNKNOWN_PERCENT: &str = "--simulated-unknown-percent";
    pub const SIMULATED_TIMEOUT_PERCENT: &str = "--simulated-timeout-percent";
}

/// A provider method, as the API names it (`{"method": "stripe"}`): the domain's
/// [`PaymentMethod`] but `offline`, which no provider serves.
fn provider_method(name: &str) -> Option<PaymentMethod> {
    PaymentMethod::parse(name).filter(|m| m.is_provider())
}

/// The name of each provider method's adapter (its metrics label).
fn adapter_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Test => crate::test_provider::NAME,
        PaymentMethod::Simulated => crate::simulated::NAME,
        _ => crate::stripe::NAME,
    }
}

/// Raw payment settings, after the binary's precedence.
#[derive(Debug, Clone, Default)]
pub struct PaymentFlags {
    pub payment_methods: Option<String>,
    pub stripe_secret_key: Option<String>,
    /// Each entry may itself be comma-separated.
    pub stripe_webhook_secrets: Vec<String>,
    pub stripe_api_base: Option<String>,
    pub simulated_latency_ms: Option<String>,
    pub simulated_decline_percent: Option<f64>,
    pub simulated_transient_percent: Option<f64>,
    pub simulated_unknown_percent: Option<f64>,
    pub simulated_timeout_percent: Option<f64>,
    pub simulated_seed: Option<u64>,
}

/// A flag's value is wrong; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn bad(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

/// Checked payment settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSettings {
    /// Enabled methods, each once, in the order of [`PaymentMethod::ALL`].
    pub methods: Vec<PaymentMethod>,
    /// Present exactly when `stripe` is enabled.
    pub stripe: Option<StripeSettings>,
    pub simulated: SimulatedConfig,
}

#[derive(Clone, PartialEq, Eq)]
pub struct StripeSettings {
    pub api: StripeConfig,
    pub webhook_secrets: Vec<String>,
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api", &self.api)
            .field("webhook_secrets", &format!("<{} redacted>", self.webhook_secrets.len()))
            .finish()
    }
}

impl PaymentFlags {
    pub fn resolve(&self) -> Result<PaymentSettings, ConfigError> {
        let methods = self.methods()?;
        let stripe = if methods.contains(&PaymentMethod::Stripe) {
            Some(self.stripe()?)
        } else {
            let given = [
                (flags::STRIPE_SECRET_KEY, self.stripe_secret_key.is_some()),
                (flags::STRIPE_WEBHOOK_SECRET, !self.stripe_webhook_secrets.is_empty()),
                (flags::STRIPE_API_BASE, self.stripe_api_base.is_some()),
            ];
            if let Some((flag, _)) = given.into_iter().find(|(_, given)| *given) {
                return Err(bad(
                    flag,
                    format!("given, but stripe is not in {}", flags::PAYMENT_METHODS),
                ));
            }
            None
        };
        Ok(PaymentSettings {
            methods,
            stripe,
            simulated: self.simulated()?,
        })
    }

    fn methods(&self) -> Result<Vec<PaymentMethod>, ConfigError> {
        let mut methods = Vec::new();
        for name in self.payment_methods.iter().flat_map(|s| s.split(',')).map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let method = provider_method(name).ok_or_else(|| {
                bad(
                    flags::PAYMENT_METHODS,
                    format!("unknown method {name:?} (known: test, simulated, stripe)"),
                )
            })?;
            methods.push(method);
        }
        methods.sort();
        methods.dedup();
        Ok(methods)
    }

    fn stripe(&self) -> Result<StripeSettings, ConfigError> {
        let key = self
            .stripe_secret_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| bad(flags::STRIPE_SECRET_KEY, "required when stripe is enabled"))?;
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(bad(
                flags::STRIPE_SECRET_KEY,
                "a secret key starts with sk_ (or rk_ if restricted)",
            ));
        }
        let secrets: Vec<String> = self
            .stripe_webhook_secrets
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if secrets.is_empty() {
            return Err(bad(flags::STRIPE_WEBHOOK_SECRET, "required when stripe is enabled"));
        }
        if secrets.len() > WEBHOOK_SECRETS_MAX {
            return Err(bad(
                flags::STRIPE_WEBHOOK_SECRET,
                format!("at most {WEBHOOK_SECRETS_MAX} secrets"),
            ));
        }
        let mut api = StripeConfig::new(key);
        if let Some(base) = &self.stripe_api_base {
            let base = base.trim();
            let rest = base
                .strip_prefix("https://")
                .or_else(|| base.strip_prefix("http://"))
                .ok_or_else(|| bad(flags::STRIPE_API_BASE, "must start with https:// or http://"))?;
            if rest.trim_end_matches('/').is_empty() || rest.contains(['?', '#', ' ']) {
                return Err(bad(
                    flags::STRIPE_API_BASE,
                    "must be a scheme and a host, e.g. http://127.0.0.1:12111",
                ));
            }
            api = api.with_api_base(base);
        }
        Ok(StripeSettings {
            api,
            webhook_secrets: secrets,
        })
    }

    fn simulated(&self) -> Result<SimulatedConfig, ConfigError> {
        let mut c = SimulatedConfig::bench(self.simulated_seed.unwrap_or(0));
        if let Some(latency) = &self.simulated_latency_ms {
            let (min, max) = parse_range(latency).ok_or_else(|| {
                bad(
                    flags::SIMULATED_LATENCY_MS,
                    format!("{latency:?} is not MIN..MAX or MS"),
                )
            })?;
            c.latency_ms_min = min;
            c.latency_ms_max = max;
        }
        let rate = |flag: &'static str, value: Option<f64>, default: Rate| -> Result<Rate, ConfigError> {
            match value {
                None => Ok(default),
                Some(p) => Rate::from_percent(p).map_err(|e| bad(flag, e)),
            }
        };
        c.decline = rate(
            flags::SIMULATED_DECLINE_PERCENT,
            self.simulated_decline_percent,
            c.decline,
        )?;
        c.transient = rate(
            flags::SIMULATED_TRANSIENT_PERCENT,
            self.simulated_transient_percent,
            c.transient,
        )?;
        c.unknown = rate(
            flags::SIMULATED_UNKNOWN_PERCENT,
            self.simulated_unknown_percent,
            c.unknown,
        )?;
        c.timeout = rate(
            flags::SIMULATED_TIMEOUT_PERCENT,
            self.simulated_timeout_percent,
            c.timeout,
        )?;
        c.validate().map_err(|e| {
            let flag = if e.contains("latency") {
                flags::SIMULATED_LATENCY_MS
            } else {
                flags::SIMULATED_TRANSIENT_PERCENT
            };
            bad(flag, e)
        })?;
        Ok(c)
    }
}

/// `MIN..MAX`, `MIN-MAX` or `MS`.
fn parse_range(s: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let (a, b) = s.split_once("..").or_else(|| s.split_once('-')).unwrap_or((s, s));
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// One provider, resilient, with its breaker.
#[derive(Clone)]
struct Enabled {
    service: PaymentService,
    breaker: BreakerHandle,
}

/// The providers of the enabled methods, each behind [`crate::resilience::stack`].
#[derive(Clone, Default)]
pub struct Providers {
    enabled: BTreeMap<PaymentMethod, Enabled>,
    webhook: Option<WebhookVerifier>,
    test: Option<TestProvider>,
    simulated: Option<SimulatedProvider>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("enabled", &self.enabled.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Providers {
    /// Errors name the flag at fault. `resilience` must be valid.
    pub fn build(settings: &PaymentSettings, resilience: &ResilienceConfig) -> Result<Providers, ConfigError> {
        let mut providers = Providers::default();
        for method in &settings.methods {
            let raw = match method {
                PaymentMethod::Test => {
                    let p = TestProvider::new();
                    providers.test = Some(p.clone());
                    p.service()
                }
                PaymentMethod::Simulated => {
                    let p = SimulatedProvider::new(settings.simulated.clone())
                        .map_err(|e| bad(flags::SIMULATED_LATENCY_MS, e))?;
                    providers.simulated = Some(p.clone());
                    p.service()
                }
                PaymentMethod::Stripe | PaymentMethod::Offline => {
                    let s = settings
                        .stripe
                        .as_ref()
                        .ok_or_else(|| bad(flags::STRIPE_SECRET_KEY, "required when stripe is enabled"))?;
                    providers.webhook = Some(
                        WebhookVerifier::new(&s.webhook_secrets)
                            .map_err(|e| bad(flags::STRIPE_WEBHOOK_SECRET, e.to_string()))?,
                    );
                    StripeProvider::new(&s.api)
                        .map_err(|e| bad(flags::STRIPE_API_BASE, e.to_string()))?
                        .service()
                }
            };
            let (service, breaker) = stack_with_breaker(adapter_name(*method), raw, resilience);
            providers.enabled.insert(*method, Enabled { service, breaker });
        }
        Ok(providers)
    }

    pub fn methods(&self) -> impl Iterator<Item = PaymentMethod> + '_ {
        self.enabled.keys().copied()
    }

    /// The method's resilient service (clone it per task), if enabled.
    pub fn service(&self, method: PaymentMethod) -> Option<PaymentService> {
        self.enabled.get(&method).map(|e| e.service.clone())
    }

    /// The method's circuit breaker, if enabled: open means new payments answer `503
    /// payment_unavailable` with `Retry-After: retry_after()`.
    pub fn breaker(&self, method: PaymentMethod) -> Option<&BreakerHandle> {
        self.enabled.get(&method).map(|e| &e.breaker)
    }

    /// The Stripe webhook verifier, when `stripe` is enabled.
    pub fn webhook_verifier(&self) -> Option<&WebhookVerifier> {
        self.webhook.as_ref()
    }

    /// The `test` provider itself, for its test controls (declines).
    pub fn test_provider(&self) -> Option<&TestProvider> {
        self.test.as_ref()
    }

    /// The `simulated` provider itself, for its test controls and audits.
    pub fn simulated_provider(&self) -> Option<&SimulatedProvider> {
        self.simulated.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::BreakerState;

    fn stripe_flags() -> PaymentFlags {
        PaymentFlags {
            payment_methods: Some("stripe, test".into()),
            stripe_secret_key: Some("sk_test_1".into()),
            stripe_webhook_secrets: vec!["whsec_a,whsec_b".into(), "whsec_c".into()],
            stripe_api_base: Some("http://127.0.0.1:9/".into()),
            ..PaymentFlags::default()
        }
    }

    #[test]
    fn flags_resolve_to_settings() {
        let s = stripe_flags().resolve().unwrap();
        assert_eq!(s.methods, [PaymentMethod::Test, PaymentMethod::Stripe]);
        let stripe = s.stripe.unwrap();
        assert_eq!(stripe.api.api_base, "http://127.0.0.1:9");
        assert_eq!(stripe.webhook_secrets, ["whsec_a", "whsec_b", "whsec_c"]);
        assert!(!format!("{stripe:?}").contains("sk_test_1"), "secrets stay out of logs");
        assert!(!format!("{stripe:?}").contains("whsec_a"));
        assert_eq!(
            s.simulated,
            SimulatedConfig::bench(0),
            "the bench's provider by default"
        );

        let none = PaymentFlags::default().resolve().unwrap();
        assert!(none.methods.is_empty() && none.stripe.is_none());

        let sim = PaymentFlags {
            payment_methods: Some("simulated,simulated".into()),
            simulated_latency_ms: Some("10..20".into()),
            simulated_decline_percent: Some(0.0),
            simulated_timeout_percent: Some(1.5),
            simulated_seed: Some(9),
            ..PaymentFlags::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(sim.methods, [PaymentMethod::Simulated]);
        assert_eq!((sim.simulated.latency_ms_min, sim.simulated.latency_ms_max), (10, 20));
        assert_eq!(sim.simulated.decline, Rate::ZERO);
        assert_eq!(sim.simulated.timeout.ppm(), 15_000);
        assert_eq!(sim.simulated.seed, 9);
        assert_eq!(parse_range("7"), Some((7, 7)));
        assert_eq!(parse_range("5-8"), Some((5, 8)));
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: Vec<(PaymentFlags, &str)> = vec![
            (
                PaymentFlags {
                    payment_methods: Some("test,paypal".into()),
                    ..PaymentFlags::default()
                },
                flags::PAYMENT_METHODS,
            ),
            (
                PaymentFlags {
                    stripe_secret_key: None,
                    ..stripe_flags()
                },
                flags::STRIPE_SECRET_KEY,
            ),
            (
                PaymentFlags {
                    stripe_secret_key: Some("pk_test_public".into()),
                    ..stripe_flags()
                },
                flags::STRIPE_SECRET_KEY,
            ),
            (
                PaymentFlags {
                    stripe_webhook_secrets: vec![" , ".into()],
                    ..stripe_flags()
                },
                flags::STRIPE_WEBHOOK_SECRET,
            ),
            (
                PaymentFlags {
                    stripe_webhook_secrets: vec!["a,b,c,d,e".into()],
                    ..stripe_flags()
                },
                flags::STRIPE_WEBHOOK_SECRET,
            ),
            (
                PaymentFlags {
                    stripe_api_base: Some("api.stripe.com".into()),
                    ..stripe_flags()
                },
                flags::STRIPE_API_BASE,
            ),
            (
                PaymentFlags {
                    payment_methods: Some("test".into()),
                    ..stripe_flags()
                },
                flags::STRIPE_SECRET_KEY,
            ),
            (
                PaymentFlags {
                    simulated_latency_ms: Some("fast".into()),
                    ..PaymentFlags::default()
                },
                flags::SIMULATED_LATENCY_MS,
            ),
            (
                PaymentFlags {
                    simulated_latency_ms: Some("300..50".into()),
                    ..PaymentFlags::default()
                },
                flags::SIMULATED_LATENCY_MS,
            ),
            (
                PaymentFlags {
                    simulated_decline_percent: Some(150.0),
                    ..PaymentFlags::default()
                },
                flags::SIMULATED_DECLINE_PERCENT,
            ),
            (
                PaymentFlags {
                    simulated_transient_percent: Some(60.0),
                    simulated_unknown_percent: Some(60.0),
                    ..PaymentFlags::default()
                },
                flags::SIMULATED_TRANSIENT_PERCENT,
            ),
        ];
        for (flags, flag) in cases {
            let e = flags.resolve().unwrap_err();
            assert_eq!(e.flag, flag, "{e}");
            assert!(e.to_string().starts_with(flag));
        }
    }

    #[tokio::test]
    async fn providers_are_built_for_the_enabled_methods() {
        let settings = stripe_flags().resolve().unwrap();
        let providers = Providers::build(&settings, &ResilienceConfig::default()).unwrap();
        assert_eq!(
            providers.methods().collect::<Vec<_>>(),
            [PaymentMethod::Test, PaymentMethod::Stripe]
        );
        assert!(providers.service(PaymentMethod::Simulated).is_none());
        assert!(providers.service(PaymentMethod::Stripe).is_some());
        assert_eq!(
            providers.breaker(PaymentMethod::Stripe).unwrap().state(),
            BreakerState::Closed
        );
        assert!(providers.webhook_verifier().is_some());
        assert!(providers.test_provider().is_some() && providers.simulated_provider().is_none());
    }
}
