//! What the followers' unit tests share: an engine on a temporary data directory and a sale.

use std::path::Path;
use std::sync::Arc;

use taquilla_domain::{Command, CreateSale, Currency, MoneyMinor, Name, SaleId, SaleStatus, TicketTypeId, Timestamp};
use taquilla_engine::{Engine, EngineConfig, ManualClock};

/// An engine on `data_dir`, on a manual clock.
pub(crate) fn engine(data_dir: &Path) -> Arc<Engine> {
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    Arc::new(Engine::open(data_dir, EngineConfig::default(), clock).unwrap())
}

/// A draft sale named `name` in EUR.
pub(crate) fn sale_spec(name: &str) -> CreateSale {
    CreateSale {
        name: Name::parse(name).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        hold_ttl_ms: 60_000,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    }
}

/// An open sale with one ticket type (0) in one quota of 1,000.
pub(crate) async fn open_sale(engine: &Engine) -> SaleId {
    let setup = vec![
        Command::AddTicketType {
            name: Name::parse("ga").unwrap(),
            price: MoneyMinor::new(1000).unwrap(),
            max_per_order: None,
        },
        Command::AddQuota {
            name: Name::parse("all").unwrap(),
            capacity: 1000,
            ticket_types: vec![TicketTypeId(0)],
        },
        Command::SetStatus(SaleStatus::Open),
    ];
    engine.create_sale_with(sale_spec("s"), setup, None).await.unwrap()
}
