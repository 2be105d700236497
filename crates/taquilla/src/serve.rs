//! `taquilla serve`: settings (flags > environment > config file > defaults), the HTTP server,
//! recovery in the background (`/readyz` is 503 until it finishes), the optional demo sale,
//! and graceful shutdown on SIGTERM/SIGINT (stop accepting, finish in-flight requests, drain
//! the engine's queues durably, snapshot, exit 0).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::Rng;
use serde::Deserialize;
use taquilla_api::{ApiSettings, AppConfig, Application, Exit, Secrets, limits};
use taquilla_domain::{BuyerId, Command, CreateSale, Currency, MoneyMinor, Name, SaleId, SaleStatus, TicketTypeId};
use taquilla_engine::{Clock, Engine, EngineConfig, SystemClock};
use taquilla_log::fsutil::replace_file;

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
    /// Largest request body in bytes [default: 16384].
    #[arg(long, env = "TAQUILLA_BODY_LIMIT_BYTES")]
    body_limit_bytes: Option<usize>,
    /// HTTP worker threads [default: one per available core].
    #[arg(long, env = "TAQUILLA_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Pin the process to these cores, e.g. "0" or "0-1".
    #[arg(long, env = "TAQUILLA_CPU")]
    cpu: Option<String>,
    /// Create a demo sale if there is none, enable test payments, print how to use it.
    #[arg(long, env = "TAQUILLA_DEMO")]
    demo: bool,
    /// Enable `POST /v1/orders/{id}/pay {"method": "test"}`.
    #[arg(long, env = "TAQUILLA_ALLOW_TEST_PAYMENTS")]
    allow_test_payments: bool,
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
    body_limit_bytes: Option<usize>,
    worker_threads: Option<usize>,
    cpu: Option<String>,
    demo: Option<bool>,
    allow_test_payments: Option<bool>,
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
        let defaults = EngineConfig::default();
        let engine = EngineConfig {
            shards: self.shards.or(file.shards).unwrap_or(defaults.shards),
            queue_capacity: self
                .queue_capacity
                .or(file.queue_capacity)
                .unwrap_or(defaults.queue_capacity),
            batch_max: self.batch_max.or(file.batch_max).unwrap_or(defaults.batch_max),
            ..defaults
        };
        engine.validate()?;
        let demo = self.demo || file.demo.unwrap_or(false);
        let api = ApiSettings {
            body_limit_bytes: self
                .body_limit_bytes
                .or(file.body_limit_bytes)
                .unwrap_or(limits::BODY_LIMIT_BYTES_DEFAULT),
            allow_test_payments: demo || self.allow_test_payments || file.allow_test_payments.unwrap_or(false),
            ..ApiSettings::default()
        };
        if !(limits::BODY_LIMIT_BYTES_MIN..=limits::BODY_LIMIT_BYTES_MAX).contains(&api.body_limit_bytes) {
            bail!(
                "body_limit_bytes must be between {} and {}",
                limits::BODY_LIMIT_BYTES_MIN,
                limits::BODY_LIMIT_BYTES_MAX
            );
        }
        Ok(Settings {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            admin_token: self.admin_token.or(file.admin_token),
            buyer_secret: self.buyer_secret.or(file.buyer_secret),
            engine,
            api,
            worker_threads: self.worker_threads.or(file.worker_threads),
            cpu: self.cpu.or(file.cpu),
            demo,
        })
    }
}

/// Owner read and write only.
const SECRET_FILE_MODE: u32 = 0o600;

/// Secrets not given in the settings are generated on first start and kept in the data dir
/// (mode 0600), so tokens stay valid across restarts.
fn load_or_create_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let v: u128 = rand::rng().random();
    let secret = format!("{v:032x}");
    // Atomically: a crash mid-write never leaves an empty or partial secret behind.
    replace_file(&path, secret.as_bytes(), SECRET_FILE_MODE).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    if let Some(cpu) = &settings.cpu {
        let cores = taquilla_os::affinity::parse_cores(cpu).map_err(anyhow::Error::msg)?;
        taquilla_os::affinity::pin_process(&cores).context("pinning to cores")?;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("taquilla-http");
    if let Some(n) = settings.worker_threads {
        rt.worker_threads(n.clamp(1, limits::WORKER_THREADS_MAX));
    }
    rt.build()?.block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let admin_token = match settings.admin_token.clone() {
        Some(t) => t,
        None => load_or_create_secret(&settings.data_dir, "admin-token")?,
    };
    let buyer_secret = match settings.buyer_secret.clone() {
        Some(s) => s,
        None => load_or_create_secret(&settings.data_dir, "buyer-secret")?,
    };
    if admin_token.len() < limits::SECRET_MIN_BYTES || buyer_secret.len() < limits::SECRET_MIN_BYTES {
        bail!(
            "the admin token and the buyer secret must be at least {} characters",
            limits::SECRET_MIN_BYTES
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = AppConfig {
        listen: settings.listen.clone(),
        data_dir: settings.data_dir.clone(),
        secrets: Secrets {
            admin_token: admin_token.clone(),
            buyer_secret: buyer_secret.clone().into_bytes(),
        },
        engine: settings.engine.clone(),
        api: settings.api.clone(),
        clock: clock.clone(),
        prometheus: Some(taquilla_api::prometheus::install_recorder().context("installing the metrics recorder")?),
    };
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, "listening; recovering");
    let mut running = app.start();
    let engine = running.ready().await?;
    let demo_sale = if settings.demo {
        Some(ensure_demo_sale(&engine).await?)
    } else {
        None
    };
    drop(engine);
    print_banner(addr, &admin_token, &buyer_secret, demo_sale, clock.now().0);
    match running.run_until(shutdown_signal()).await? {
        Exit::Stopped => Ok(()),
        Exit::StorageFailed => std::process::exit(1),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The demo: 20,000 tickets, two ticket types over two overlapping quotas, open.
async fn ensure_demo_sale(engine: &Engine) -> anyhow::Result<SaleId> {
    if let Some(s) = engine.sales().first() {
        return Ok(*s);
    }
    let sale = CreateSale {
        name: Name::parse("Demo festival")?,
        currency: Currency::parse("EUR")?,
        hold_ttl_ms: 10 * 60_000,
        max_tickets_per_buyer: Some(6),
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    let setup = vec![
        Command::AddTicketType {
            name: Name::parse("General admission")?,
            price: MoneyMinor::new(3_500)?,
            max_per_order: Some(6),
        },
        Command::AddTicketType {
            name: Name::parse("VIP")?,
            price: MoneyMinor::new(12_000)?,
            max_per_order: Some(4),
        },
        Command::AddQuota {
            name: Name::parse("Venue")?,
            capacity: 20_000,
            ticket_types: vec![TicketTypeId(0), TicketTypeId(1)],
        },
        Command::AddQuota {
            name: Name::parse("VIP area")?,
            capacity: 2_000,
            ticket_types: vec![TicketTypeId(1)],
        },
        Command::SetStatus(SaleStatus::Open),
    ];
    Ok(engine.create_sale_with(sale, setup, None).await?)
}

fn print_banner(addr: SocketAddr, admin_token: &str, buyer_secret: &str, demo: Option<SaleId>, now_ms: i64) {
    let url = format!("http://{addr}");
    println!("taquilla listening on {url}");
    println!("  admin token: {admin_token}");
    println!("  OpenAPI:     {url}/openapi.json");
    if let Some(sale) = demo {
        let buyer = BuyerId::parse("demo-buyer").unwrap_or_else(|_| unreachable!("a valid literal"));
        let token = taquilla_api::mint_buyer_token(buyer_secret.as_bytes(), &buyer, now_ms / 1000 + 86_400);
        let event = taquilla_api::ids::PublicSaleId(sale);
        println!("  demo sale:   {url}/v1/events/{event}");
        println!("  buyer token for \"demo-buyer\" (24 h): {token}");
        println!("  hold two tickets:");
        println!(
            "    curl -s -X POST {url}/v1/events/{event}/holds -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"items\":[{{\"ticket_type_id\":0,\"quantity\":2}}]}}'"
        );
    }
    let _ = std::io::stdout().flush();
}
