//! `taquilla serve`: settings (flags > environment > config file > defaults), the HTTP server,
//! recovery in the background (`/readyz` is 503 until it finishes), the optional demo sale,
//! and graceful shutdown on SIGTERM/SIGINT (stop accepting, finish in-flight requests, drain
//! the engine's queues durably, snapshot, exit 0).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::Rng;
use taquilla_api::{AppConfig, Application, Exit, Secrets, limits};
use taquilla_domain::{BuyerId, Command, CreateSale, Currency, MoneyMinor, Name, SaleId, SaleStatus, TicketTypeId};
use taquilla_engine::{Clock, Engine, PacedClock};
use taquilla_followers::Providers;
use taquilla_log::fsutil::replace_file;
use taquilla_payments::resilience::ResilienceConfig;

pub use crate::settings::{Args, Settings};

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
    let files = settings.api.connections.max_connections + limits::FILES_RESERVED;
    if let Err(e) = taquilla_os::process::raise_open_files(files as u64) {
        // Past the file limit, accepting fails (and is retried each second) instead of waiting.
        tracing::warn!(max_connections = settings.api.connections.max_connections, "{e}");
    }
    let clock: Arc<dyn Clock> = Arc::new(PacedClock::system());
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
        providers: Providers::build(&settings.payments, &ResilienceConfig::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        saga: settings.saga.clone(),
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
    let demo_token = demo_sale.map(|sale| {
        let buyer = BuyerId::parse("demo-buyer").unwrap_or_else(|_| unreachable!("a valid literal"));
        let expires_at_secs = clock.now().0.div_euclid(1000) + 86_400;
        (sale, running.state().keys.mint_buyer_token(&buyer, expires_at_secs))
    });
    print_banner(Banner {
        addr,
        admin_token: &admin_token,
        demo: demo_token,
        payment_methods: &settings.payments.methods,
    });
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

/// What the start-up banner tells the user.
struct Banner<'a> {
    addr: SocketAddr,
    admin_token: &'a str,
    /// The demo sale and a buyer token for it.
    demo: Option<(SaleId, String)>,
    payment_methods: &'a [taquilla_domain::PaymentMethod],
}

fn print_banner(banner: Banner<'_>) {
    let Banner {
        addr,
        admin_token,
        demo,
        payment_methods,
    } = banner;
    let url = format!("http://{addr}");
    // Written whole, and a closed stdout (a reader that took the first line and left) is not
    // a reason to die: `println!` would panic on it.
    let mut out = String::new();
    macro_rules! line {
        ($($t:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!(out, $($t)*);
        }};
    }
    line!("taquilla listening on {url}");
    line!("  admin token: {admin_token}");
    line!("  OpenAPI:     {url}/openapi.json");
    let methods: Vec<&str> = payment_methods.iter().map(|m| m.as_str()).collect();
    if methods.is_empty() {
        line!("  payments:    none (free orders only; see --payment-methods)");
    } else {
        line!("  payments:    {} (POST /v1/orders/{{id}}/pay)", methods.join(", "));
    }
    if let Some((sale, token)) = demo {
        let event = taquilla_api::ids::PublicSaleId(sale);
        line!("  demo sale:   {url}/v1/events/{event}");
        line!("  buyer token for \"demo-buyer\" (24 h): {token}");
        line!("  hold two tickets:");
        line!(
            "    curl -s -X POST {url}/v1/events/{event}/holds -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"items\":[{{\"ticket_type_id\":0,\"quantity\":2}}]}}'"
        );
        line!(
            "  then check out (POST /v1/holds/<hold id>/checkout) and pay with {{\"method\":\"test\"}} or {{\"method\":\"simulated\"}}"
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
