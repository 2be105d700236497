//! `taquilla serve`'s settings: flags > environment > config file (`--config`, TOML with the
//! same snake_case keys) > defaults, each checked against its bounds with a message naming it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use taquilla_api::{ApiSettings, Bucket, ConnectionLimits, CorsSettings, PushLimits, RateLimitSettings, limits};
use taquilla_engine::EngineConfig;
use taquilla_followers::SagaConfig;
use taquilla_followers::limits::{RECONCILE_AFTER_MAX, RECONCILE_AFTER_MIN, SAGA_CONCURRENCY_MAX};
use taquilla_payments::config::{PaymentFlags, PaymentSettings};

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// A TOML file with any of the settings below (snake_case keys); flags and environment win.
    #[arg(long, env = "TAQUILLA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TAQUILLA_LISTEN")]
    listen: Option<String>,
    /// Where the event log and snapshots live [default: ./data].
    #[arg(long, env = "TAQUILLA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Bearer token of the admin API [default: generated once and kept in the data dir].
    #[arg(long, env = "TAQUILLA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Secret that signs buyer tokens [default: generated once and kept in the data dir].
    #[arg(long, env = "TAQUILLA_BUYER_SECRET", hide_env_values = true)]
    buyer_secret: Option<String>,
    /// Commands each shard's queue holds before answering 503 overloaded [default: 65536].
    #[arg(long, env = "TAQUILLA_QUEUE_CAPACITY")]
    queue_capacity: Option<usize>,
    /// Commands per group commit at most [default: 8192].
    #[arg(long, env = "TAQUILLA_BATCH_MAX")]
    batch_max: Option<usize>,
    /// Shard writer threads [default: 1].
    #[arg(long, env = "TAQUILLA_SHARDS")]
    shards: Option<usize>,
    /// How long an Idempotency-Key is remembered, in seconds (60 to 604800) [default: 86400].
    #[arg(long, env = "TAQUILLA_IDEMPOTENCY_TTL_SECS")]
    idempotency_ttl_secs: Option<u64>,
    /// Largest request body in bytes [default: 16384].
    #[arg(long, env = "TAQUILLA_BODY_LIMIT_BYTES")]
    body_limit_bytes: Option<usize>,
    /// Log a warning when the data directory's disk has fewer free bytes than this
    /// [default: 1073741824].
    #[arg(long, env = "TAQUILLA_DISK_FREE_WARN_BYTES")]
    disk_free_warn_bytes: Option<u64>,
    /// Log segment size in bytes (tests on small file systems) [default: 67108864].
    #[arg(long, env = "TAQUILLA_SEGMENT_SIZE_BYTES", hide = true)]
    segment_size_bytes: Option<u64>,
    /// HTTP worker threads [default: one per available core].
    #[arg(long, env = "TAQUILLA_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Pin the process to these cores, e.g. "0" or "0-1".
    #[arg(long, env = "TAQUILLA_CPU")]
    cpu: Option<String>,
    /// Create a demo sale if there is none, take test and simulated payments, print how to use it.
    #[arg(long, env = "TAQUILLA_DEMO")]
    demo: bool,
    /// Take `{"method": "test"}` payments (same as adding `test` to --payment-methods).
    #[arg(long, env = "TAQUILLA_ALLOW_TEST_PAYMENTS")]
    allow_test_payments: bool,
    #[command(flatten)]
    payments: PaymentArgs,
    /// Boxed: `Cmd::Serve` stays about the size of the other commands.
    #[command(flatten)]
    limits: Box<LimitArgs>,
}

/// Rate limits, connection limits, CORS (see `taquilla_api::limits` for the defaults' reasons).
#[derive(clap::Args, Debug, Default)]
struct LimitArgs {
    /// Requests a second per buyer (buyer token), or `off` (also `0`) [default: 10].
    #[arg(long, env = "TAQUILLA_RATE_LIMIT_BUYER")]
    rate_limit_buyer: Option<String>,
    /// Requests a buyer may send at once before the rate applies [default: 30].
    #[arg(long, env = "TAQUILLA_RATE_LIMIT_BUYER_BURST")]
    rate_limit_buyer_burst: Option<u32>,
    /// Requests a second per client address (IPv6: per /64), or `off` (also `0`) [default: 200].
    #[arg(long, env = "TAQUILLA_RATE_LIMIT_ADDRESS")]
    rate_limit_address: Option<String>,
    /// Requests an address may send at once before the rate applies [default: 1000].
    #[arg(long, env = "TAQUILLA_RATE_LIMIT_ADDRESS_BURST")]
    rate_limit_address_burst: Option<u32>,
    /// Buyers (and addresses) each rate-limit table tracks at most [default: 100000].
    #[arg(long, env = "TAQUILLA_RATE_LIMIT_KEYS_MAX")]
    rate_limit_keys_max: Option<usize>,
    /// Reverse proxies (IP addresses) whose X-Forwarded-For names the client; repeated or
    /// comma-separated [default: none: the peer is the client].
    #[arg(long, env = "TAQUILLA_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<String>,
    /// Open connections at most; more wait in the accept backlog [default: 10000].
    #[arg(long, env = "TAQUILLA_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds for a request's head from its first byte, else the connection closes [default: 10].
    #[arg(long, env = "TAQUILLA_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may wait for its next request before it closes [default: 60].
    #[arg(long, env = "TAQUILLA_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Seconds a write may wait for the client to read before the connection closes (a stalled
    /// reader) [default: 30].
    #[arg(long, env = "TAQUILLA_WRITE_TIMEOUT_SECS")]
    write_timeout_secs: Option<u64>,
    /// Live-push subscribers (GET /v1/events/{id}/stream) at once, in total [default: 5000].
    #[arg(long, env = "TAQUILLA_PUSH_SUBSCRIBERS_MAX")]
    push_subscribers_max: Option<usize>,
    /// Live-push subscribers of one sale at once [default: 5000].
    #[arg(long, env = "TAQUILLA_PUSH_SUBSCRIBERS_PER_SALE_MAX")]
    push_subscribers_per_sale_max: Option<usize>,
    /// Browser origins allowed to call the API (CORS), e.g. https://shop.example; repeated or
    /// comma-separated, or `*` [default: none, no CORS headers].
    #[arg(long, env = "TAQUILLA_CORS_ALLOW_ORIGIN")]
    cors_allow_origin: Vec<String>,
}

/// A rate in the config file: a number, or `"off"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RateValue {
    Number(u64),
    Text(String),
}

/// The payment providers (see `taquilla_payments::config`).
#[derive(clap::Args, Debug, Default)]
struct PaymentArgs {
    /// Payment providers to take: comma-separated `test`, `simulated`, `stripe` [default: none].
    #[arg(long, env = "TAQUILLA_PAYMENT_METHODS")]
    payment_methods: Option<String>,
    /// Stripe secret key (`sk_…` or `rk_…`); required with `stripe`.
    #[arg(long, env = "TAQUILLA_STRIPE_SECRET_KEY", hide_env_values = true)]
    stripe_secret_key: Option<String>,
    /// Stripe webhook signing secret(s) (`whsec_…`), comma-separated while one is rolled.
    #[arg(long, env = "TAQUILLA_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    stripe_webhook_secret: Vec<String>,
    /// Stripe's API base URL [default: https://api.stripe.com].
    #[arg(long, env = "TAQUILLA_STRIPE_API_BASE")]
    stripe_api_base: Option<String>,
    /// The simulated provider's latency, `MIN..MAX` or `MS` [default: 50..300].
    #[arg(long, env = "TAQUILLA_SIMULATED_LATENCY_MS")]
    simulated_latency_ms: Option<String>,
    /// Share of simulated payments declined [default: 2].
    #[arg(long, env = "TAQUILLA_SIMULATED_DECLINE_PERCENT")]
    simulated_decline_percent: Option<f64>,
    /// Share of simulated calls failing before taking effect [default: 0].
    #[arg(long, env = "TAQUILLA_SIMULATED_TRANSIENT_PERCENT")]
    simulated_transient_percent: Option<f64>,
    /// Share of simulated calls whose outcome is unknown (taken effect, answer lost) [default: 0].
    #[arg(long, env = "TAQUILLA_SIMULATED_UNKNOWN_PERCENT")]
    simulated_unknown_percent: Option<f64>,
    /// Share of simulated calls that hang past the deadline [default: 0].
    #[arg(long, env = "TAQUILLA_SIMULATED_TIMEOUT_PERCENT")]
    simulated_timeout_percent: Option<f64>,
    /// Seed of the simulated provider's draws [default: 0].
    #[arg(long, env = "TAQUILLA_SIMULATED_SEED")]
    simulated_seed: Option<u64>,
    /// How long a payment may await its buyer's confirmation (Stripe) with no word from the
    /// provider before the saga asks the provider where it stands [default: 60].
    #[arg(long, env = "TAQUILLA_PAYMENT_RECONCILE_AFTER_SECS")]
    payment_reconcile_after_secs: Option<u64>,
    /// Provider calls the payment saga makes at once (1..=4096) [default: 256]. Paid orders
    /// per second are at most this over the provider's mean latency per call, halved (a
    /// payment is two calls: authorise, capture).
    #[arg(long, env = "TAQUILLA_SAGA_CONCURRENCY")]
    saga_concurrency: Option<usize>,
}

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    admin_token: Option<String>,
    buyer_secret: Option<String>,
    queue_capacity: Option<usize>,
    batch_max: Option<usize>,
    shards: Option<usize>,
    idempotency_ttl_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    disk_free_warn_bytes: Option<u64>,
    worker_threads: Option<usize>,
    cpu: Option<String>,
    demo: Option<bool>,
    allow_test_payments: Option<bool>,
    payment_methods: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_webhook_secret: Option<Vec<String>>,
    stripe_api_base: Option<String>,
    simulated_latency_ms: Option<String>,
    simulated_decline_percent: Option<f64>,
    simulated_transient_percent: Option<f64>,
    simulated_unknown_percent: Option<f64>,
    simulated_timeout_percent: Option<f64>,
    simulated_seed: Option<u64>,
    payment_reconcile_after_secs: Option<u64>,
    saga_concurrency: Option<usize>,
    rate_limit_buyer: Option<RateValue>,
    rate_limit_buyer_burst: Option<u32>,
    rate_limit_address: Option<RateValue>,
    rate_limit_address_burst: Option<u32>,
    rate_limit_keys_max: Option<usize>,
    trusted_proxy: Option<Vec<String>>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
    push_subscribers_max: Option<usize>,
    push_subscribers_per_sale_max: Option<usize>,
    cors_allow_origin: Option<Vec<String>>,
}

/// Settings after precedence was applied.
#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub admin_token: Option<String>,
    pub buyer_secret: Option<String>,
    pub engine: EngineConfig,
    pub api: ApiSettings,
    pub payments: PaymentSettings,
    pub saga: SagaConfig,
    pub worker_threads: Option<usize>,
    pub cpu: Option<String>,
    pub demo: bool,
}

impl Args {
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let engine = engine_config(&self, &file)?;
        let api = api_settings(&self, &file)?;
        let demo = self.demo || file.demo.unwrap_or(false);
        let allow_test = self.allow_test_payments || file.allow_test_payments.unwrap_or(false);
        let saga = saga_config(&self.payments, &file)?;
        let payments = payment_flags(self.payments, &file, demo, allow_test)
            .resolve()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Settings {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            admin_token: self.admin_token.or(file.admin_token),
            buyer_secret: self.buyer_secret.or(file.buyer_secret),
            engine,
            api,
            payments,
            saga,
            worker_threads: self.worker_threads.or(file.worker_threads),
            cpu: self.cpu.or(file.cpu),
            demo,
        })
    }
}

fn engine_config(args: &Args, file: &FileConfig) -> anyhow::Result<EngineConfig> {
    let defaults = EngineConfig::default();
    let engine = EngineConfig {
        shards: args.shards.or(file.shards).unwrap_or(defaults.shards),
        segment_size_bytes: args.segment_size_bytes.unwrap_or(defaults.segment_size_bytes),
        queue_capacity: args
            .queue_capacity
            .or(file.queue_capacity)
            .unwrap_or(defaults.queue_capacity),
        batch_max: args.batch_max.or(file.batch_max).unwrap_or(defaults.batch_max),
        idempotency_ttl_ms: args
            .idempotency_ttl_secs
            .or(file.idempotency_ttl_secs)
            .map_or(defaults.idempotency_ttl_ms, |s| s.saturating_mul(1000)),
        ..defaults
    };
    engine.validate()?;
    Ok(engine)
}

fn api_settings(args: &Args, file: &FileConfig) -> anyhow::Result<ApiSettings> {
    let connections = connection_limits(&args.limits, file)?;
    let api = ApiSettings {
        body_limit_bytes: args
            .body_limit_bytes
            .or(file.body_limit_bytes)
            .unwrap_or(limits::BODY_LIMIT_BYTES_DEFAULT),
        disk_free_warn_bytes: args
            .disk_free_warn_bytes
            .or(file.disk_free_warn_bytes)
            .unwrap_or(limits::DISK_FREE_WARN_BYTES_DEFAULT),
        rate_limits: rate_limits(&args.limits, file)?,
        connections,
        cors: cors(&args.limits, file)?,
        push: push_limits(&args.limits, file, connections.max_connections)?,
        ..ApiSettings::default()
    };
    if !(limits::BODY_LIMIT_BYTES_MIN..=limits::BODY_LIMIT_BYTES_MAX).contains(&api.body_limit_bytes) {
        bail!(
            "body_limit_bytes must be between {} and {}",
            limits::BODY_LIMIT_BYTES_MIN,
            limits::BODY_LIMIT_BYTES_MAX
        );
    }
    Ok(api)
}

fn rate_limits(args: &LimitArgs, file: &FileConfig) -> anyhow::Result<RateLimitSettings> {
    let buyer = bucket(
        "rate_limit_buyer",
        args.rate_limit_buyer
            .clone()
            .map(RateValue::Text)
            .or(file.rate_limit_buyer.clone()),
        args.rate_limit_buyer_burst.or(file.rate_limit_buyer_burst),
        limits::RATE_LIMIT_BUYER_DEFAULT,
    )?;
    let address = bucket(
        "rate_limit_address",
        args.rate_limit_address
            .clone()
            .map(RateValue::Text)
            .or(file.rate_limit_address.clone()),
        args.rate_limit_address_burst.or(file.rate_limit_address_burst),
        limits::RATE_LIMIT_ADDRESS_DEFAULT,
    )?;
    let keys_max = args
        .rate_limit_keys_max
        .or(file.rate_limit_keys_max)
        .unwrap_or(limits::RATE_LIMIT_KEYS_MAX_DEFAULT);
    within(
        "rate_limit_keys_max",
        keys_max,
        limits::RATE_LIMIT_KEYS_MAX_MIN,
        limits::RATE_LIMIT_KEYS_MAX_MAX,
    )?;
    let proxies = if args.trusted_proxy.is_empty() {
        file.trusted_proxy.clone().unwrap_or_default()
    } else {
        args.trusted_proxy.clone()
    };
    let trusted_proxies = proxies
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpAddr>()
                .with_context(|| format!("trusted_proxy {p:?}: expected an IP address"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RateLimitSettings {
        buyer,
        address,
        keys_max,
        trusted_proxies,
        ..RateLimitSettings::default()
    })
}

/// A token bucket from its rate (`off` or `0`: none) and burst.
fn bucket(name: &str, rate: Option<RateValue>, burst: Option<u32>, default: Bucket) -> anyhow::Result<Option<Bucket>> {
    let per_sec = match rate {
        None => default.per_sec.get(),
        Some(RateValue::Number(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(RateValue::Text(t)) if t.trim().eq_ignore_ascii_case("off") => 0,
        Some(RateValue::Text(t)) => t
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be requests a second or `off`, not {t:?}"))?,
    };
    let Some(per_sec) = NonZeroU32::new(per_sec) else {
        return Ok(None);
    };
    within(name, per_sec.get(), 1, limits::RATE_LIMIT_MAX)?;
    let burst = burst.unwrap_or(default.burst.get());
    within(&format!("{name}_burst"), burst, 1, limits::RATE_LIMIT_MAX)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Ok(Some(Bucket { per_sec, burst }))
}

fn connection_limits(args: &LimitArgs, file: &FileConfig) -> anyhow::Result<ConnectionLimits> {
    let defaults = ConnectionLimits::default();
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(defaults.max_connections);
    within("max_connections", max_connections, 1, limits::MAX_CONNECTIONS_MAX)?;
    let timeout = |name: &str, value: Option<u64>, default: Duration| -> anyhow::Result<Duration> {
        let Some(secs) = value else {
            return Ok(default);
        };
        within(
            name,
            secs,
            limits::CONNECTION_TIMEOUT_MIN.as_secs(),
            limits::CONNECTION_TIMEOUT_MAX.as_secs(),
        )?;
        Ok(Duration::from_secs(secs))
    };
    Ok(ConnectionLimits {
        max_connections,
        header_read_timeout: timeout(
            "header_read_timeout_secs",
            args.header_read_timeout_secs.or(file.header_read_timeout_secs),
            defaults.header_read_timeout,
        )?,
        idle_timeout: timeout(
            "idle_timeout_secs",
            args.idle_timeout_secs.or(file.idle_timeout_secs),
            defaults.idle_timeout,
        )?,
        write_timeout: timeout(
            "write_timeout_secs",
            args.write_timeout_secs.or(file.write_timeout_secs),
            defaults.write_timeout,
        )?,
    })
}

/// Subscribers hold connections: by default at most half of them, and never all.
fn push_limits(args: &LimitArgs, file: &FileConfig, max_connections: usize) -> anyhow::Result<PushLimits> {
    let defaults = PushLimits::default();
    let subscribers_max = args
        .push_subscribers_max
        .or(file.push_subscribers_max)
        .unwrap_or(defaults.subscribers_max.min(max_connections / 2));
    within(
        "push_subscribers_max",
        subscribers_max,
        0,
        limits::PUSH_SUBSCRIBERS_MAX_MAX.min(max_connections.saturating_sub(1)),
    )?;
    let subscribers_per_sale_max = args
        .push_subscribers_per_sale_max
        .or(file.push_subscribers_per_sale_max)
        .unwrap_or(defaults.subscribers_per_sale_max.min(subscribers_max));
    within(
        "push_subscribers_per_sale_max",
        subscribers_per_sale_max,
        0,
        subscribers_max,
    )?;
    Ok(PushLimits {
        subscribers_max,
        subscribers_per_sale_max,
    })
}

fn cors(args: &LimitArgs, file: &FileConfig) -> anyhow::Result<CorsSettings> {
    let origins = if args.cors_allow_origin.is_empty() {
        file.cors_allow_origin.clone().unwrap_or_default()
    } else {
        args.cors_allow_origin.clone()
    };
    CorsSettings::parse(&origins).map_err(anyhow::Error::msg)
}

fn within<T: PartialOrd + std::fmt::Display>(name: &str, value: T, min: T, max: T) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{name} must be between {min} and {max}");
    }
    Ok(())
}

fn saga_config(args: &PaymentArgs, file: &FileConfig) -> anyhow::Result<SagaConfig> {
    let defaults = SagaConfig::default();
    let reconcile_after = match args.payment_reconcile_after_secs.or(file.payment_reconcile_after_secs) {
        None => defaults.reconcile_after,
        Some(secs) => {
            let bounds = RECONCILE_AFTER_MIN.as_secs()..=RECONCILE_AFTER_MAX.as_secs();
            if !bounds.contains(&secs) {
                bail!(
                    "payment_reconcile_after_secs must be between {} and {}",
                    bounds.start(),
                    bounds.end()
                );
            }
            Duration::from_secs(secs)
        }
    };
    let concurrency = args
        .saga_concurrency
        .or(file.saga_concurrency)
        .unwrap_or(defaults.concurrency);
    if !(1..=SAGA_CONCURRENCY_MAX).contains(&concurrency) {
        bail!("saga_concurrency must be between 1 and {SAGA_CONCURRENCY_MAX}");
    }
    Ok(SagaConfig {
        reconcile_after,
        concurrency,
        ..defaults
    })
}

/// The payment flags after precedence; `--demo` adds `test` and `simulated`,
/// `--allow-test-payments` adds `test`.
fn payment_flags(args: PaymentArgs, file: &FileConfig, demo: bool, allow_test: bool) -> PaymentFlags {
    let mut methods: Vec<String> = args
        .payment_methods
        .or(file.payment_methods.clone())
        .map(|m| m.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let mut add = |m: &str| {
        if !methods.iter().any(|x| x == m) {
            methods.push(m.to_string());
        }
    };
    if demo || allow_test {
        add("test");
    }
    if demo {
        add("simulated");
    }
    let webhook_secrets = if args.stripe_webhook_secret.is_empty() {
        file.stripe_webhook_secret.clone().unwrap_or_default()
    } else {
        args.stripe_webhook_secret
    };
    PaymentFlags {
        payment_methods: (!methods.is_empty()).then(|| methods.join(",")),
        stripe_secret_key: args.stripe_secret_key.or(file.stripe_secret_key.clone()),
        stripe_webhook_secrets: webhook_secrets,
        stripe_api_base: args.stripe_api_base.or(file.stripe_api_base.clone()),
        simulated_latency_ms: args.simulated_latency_ms.or(file.simulated_latency_ms.clone()),
        simulated_decline_percent: args.simulated_decline_percent.or(file.simulated_decline_percent),
        simulated_transient_percent: args.simulated_transient_percent.or(file.simulated_transient_percent),
        simulated_unknown_percent: args.simulated_unknown_percent.or(file.simulated_unknown_percent),
        simulated_timeout_percent: args.simulated_timeout_percent.or(file.simulated_timeout_percent),
        simulated_seed: args.simulated_seed.or(file.simulated_seed),
    }
}

#[cfg(test)]
mod tests {
    use taquilla_domain::PaymentMethod;

    use super::*;

    fn with_limits(limits: LimitArgs) -> anyhow::Result<Settings> {
        Args {
            limits: Box::new(limits),
            ..Args::default()
        }
        .resolve()
    }

    #[test]
    fn limits_resolve_with_their_defaults_and_bounds() {
        let s = with_limits(LimitArgs::default()).unwrap();
        assert_eq!(s.api.rate_limits.buyer, Some(limits::RATE_LIMIT_BUYER_DEFAULT));
        assert_eq!(s.api.rate_limits.address, Some(limits::RATE_LIMIT_ADDRESS_DEFAULT));
        assert_eq!(s.api.connections, ConnectionLimits::default());
        assert_eq!(s.api.push, PushLimits::default());
        assert!(s.api.cors.allow_origins.is_empty(), "no CORS unless asked");

        let s = with_limits(LimitArgs {
            rate_limit_buyer: Some("off".into()),
            rate_limit_address: Some("5".into()),
            rate_limit_address_burst: Some(7),
            trusted_proxy: vec!["10.0.0.1, ::1".into()],
            max_connections: Some(3),
            header_read_timeout_secs: Some(2),
            idle_timeout_secs: Some(4),
            write_timeout_secs: Some(5),
            cors_allow_origin: vec!["https://shop.example".into()],
            ..LimitArgs::default()
        })
        .unwrap();
        assert_eq!(s.api.rate_limits.buyer, None);
        let address = s.api.rate_limits.address.unwrap();
        assert_eq!((address.per_sec.get(), address.burst.get()), (5, 7));
        assert_eq!(s.api.rate_limits.trusted_proxies.len(), 2);
        assert_eq!(
            s.api.connections,
            ConnectionLimits {
                max_connections: 3,
                header_read_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(4),
                write_timeout: Duration::from_secs(5),
            }
        );
        // Subscribers take at most half the connections unless told otherwise.
        assert_eq!(s.api.push.subscribers_max, 1);
        assert_eq!(s.api.push.subscribers_per_sale_max, 1);
        assert_eq!(s.api.cors.allow_origins, ["https://shop.example"]);
        let zero = with_limits(LimitArgs {
            rate_limit_address: Some("0".into()),
            ..LimitArgs::default()
        })
        .unwrap();
        assert_eq!(zero.api.rate_limits.address, None, "0 turns a limit off");

        let bad = [
            LimitArgs {
                rate_limit_buyer: Some("fast".into()),
                ..LimitArgs::default()
            },
            LimitArgs {
                rate_limit_buyer_burst: Some(0),
                ..LimitArgs::default()
            },
            LimitArgs {
                rate_limit_keys_max: Some(10),
                ..LimitArgs::default()
            },
            LimitArgs {
                trusted_proxy: vec!["proxy.local".into()],
                ..LimitArgs::default()
            },
            LimitArgs {
                max_connections: Some(0),
                ..LimitArgs::default()
            },
            LimitArgs {
                header_read_timeout_secs: Some(0),
                ..LimitArgs::default()
            },
            LimitArgs {
                idle_timeout_secs: Some(3_601),
                ..LimitArgs::default()
            },
            LimitArgs {
                cors_allow_origin: vec!["shop.example".into()],
                ..LimitArgs::default()
            },
            LimitArgs {
                write_timeout_secs: Some(0),
                ..LimitArgs::default()
            },
            LimitArgs {
                max_connections: Some(100),
                push_subscribers_max: Some(100),
                ..LimitArgs::default()
            },
            LimitArgs {
                push_subscribers_max: Some(10),
                push_subscribers_per_sale_max: Some(11),
                ..LimitArgs::default()
            },
        ];
        let names = [
            "rate_limit_buyer",
            "rate_limit_buyer_burst",
            "rate_limit_keys_max",
            "trusted_proxy",
            "max_connections",
            "header_read_timeout_secs",
            "idle_timeout_secs",
            "cors_allow_origin",
            "write_timeout_secs",
            "push_subscribers_max",
            "push_subscribers_per_sale_max",
        ];
        for (args, name) in bad.into_iter().zip(names) {
            let e = with_limits(args).unwrap_err();
            assert!(format!("{e:#}").contains(name), "{name}: {e:#}");
        }
    }

    #[test]
    fn limits_come_from_the_config_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taquilla.toml");
        std::fs::write(
            &path,
            "rate_limit_buyer = 3\nrate_limit_address = \"off\"\nmax_connections = 9\ncors_allow_origin = [\"*\"]\n",
        )
        .unwrap();
        let s = Args {
            config: Some(path),
            ..Args::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.api.rate_limits.buyer.unwrap().per_sec.get(), 3);
        assert_eq!(s.api.rate_limits.address, None);
        assert_eq!(s.api.connections.max_connections, 9);
        assert_eq!(s.api.cors.allow_origins, ["*"]);
    }

    fn with_payments(payments: PaymentArgs) -> Args {
        Args {
            payments,
            ..Args::default()
        }
    }

    #[test]
    fn payment_settings_resolve_with_their_bounds() {
        let s = with_payments(PaymentArgs {
            payment_reconcile_after_secs: Some(5),
            ..PaymentArgs::default()
        })
        .resolve()
        .unwrap();
        assert_eq!(s.saga.reconcile_after, Duration::from_secs(5));
        assert!(s.payments.methods.is_empty(), "no payment method unless asked");

        for secs in [0, 3601] {
            let e = with_payments(PaymentArgs {
                payment_reconcile_after_secs: Some(secs),
                ..PaymentArgs::default()
            })
            .resolve()
            .unwrap_err();
            assert!(e.to_string().contains("payment_reconcile_after_secs"), "{e}");
        }

        let demo = Args {
            demo: true,
            ..Args::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(demo.payments.methods, [PaymentMethod::Test, PaymentMethod::Simulated]);
        assert_eq!(demo.saga.reconcile_after, SagaConfig::default().reconcile_after);
        assert_eq!(demo.saga.concurrency, SagaConfig::default().concurrency);

        let s = with_payments(PaymentArgs {
            saga_concurrency: Some(SAGA_CONCURRENCY_MAX),
            ..PaymentArgs::default()
        })
        .resolve()
        .unwrap();
        assert_eq!(s.saga.concurrency, SAGA_CONCURRENCY_MAX);
        for n in [0, SAGA_CONCURRENCY_MAX + 1] {
            let e = with_payments(PaymentArgs {
                saga_concurrency: Some(n),
                ..PaymentArgs::default()
            })
            .resolve()
            .unwrap_err();
            assert!(e.to_string().contains("saga_concurrency"), "{e}");
        }

        let e = with_payments(PaymentArgs {
            payment_methods: Some("stripe".into()),
            ..PaymentArgs::default()
        })
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("--stripe-secret-key"), "{e}");
    }
}
