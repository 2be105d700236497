//! HTTP API v1 of taquilla (axum). This crate turns HTTP into engine commands and engine state
//! into JSON; it holds no sales state of its own.
//!
//! Request path: [`connections`] (at most `max_connections`, header read and idle timeouts, the
//! peer's address) → [`request_layer`] (correlation id, error rendering, panic and timeout,
//! keep-alive check, metrics) → router (CORS when configured; route label, address rate limit,
//! body limit) → extractors (auth and the buyer rate limit, JSON with our error codes) →
//! handler → `Engine::submit` (bounded queue; full = `503 overloaded`) → reply after the
//! command is durable → view built from the engine's in-memory state.

pub mod admission;
pub mod application;
pub mod auth;
pub mod connections;
pub mod constraints;
pub mod correlation;
pub mod cors;
pub mod error;
mod extract;
pub mod ids;
pub mod json;
mod keepalive;
pub mod keys;
pub mod limits;
pub mod named;
pub mod openapi;
pub mod order_search;
mod pages;
pub mod prometheus;
pub mod protocol_errors;
pub mod push;
pub mod rate_limit;
pub mod request_layer;
pub mod requests;
mod routes;
pub mod time;
pub mod views;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use taquilla_domain::Timestamp;
use taquilla_engine::{Clock, Engine};
use taquilla_followers::Providers;
use tower::Layer;

pub use application::{AppConfig, AppError, Application, Exit, RunningApp};
pub use auth::{Secrets, mint_buyer_token, mint_buyer_token_with_kid, verify_buyer_token};
pub use connections::ConnectionLimits;
pub use cors::CorsSettings;
pub use error::{ApiError, Code};
pub use push::PushLimits;
pub use rate_limit::{Bucket, LimitClock, RateLimitSettings};

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Longest a request may take before `503`; the engine bounds its own waits, this is
    /// the last line.
    pub request_timeout: Duration,
    /// Below this many free bytes on the data directory's file system, a warning is logged
    /// (once per crossing); `/metrics` shows both figures.
    pub disk_free_warn_bytes: u64,
    /// Token buckets per buyer and per client address.
    pub rate_limits: RateLimitSettings,
    /// Open connections, header and idle timeouts.
    pub connections: ConnectionLimits,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors: CorsSettings,
    /// Live-push subscribers at most (`GET /v1/events/{id}/stream`).
    pub push: PushLimits,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            body_limit_bytes: limits::BODY_LIMIT_BYTES_DEFAULT,
            request_timeout: limits::REQUEST_TIMEOUT,
            disk_free_warn_bytes: limits::DISK_FREE_WARN_BYTES_DEFAULT,
            rate_limits: RateLimitSettings::default(),
            connections: ConnectionLimits::default(),
            cors: CorsSettings::default(),
            push: PushLimits::default(),
        }
    }
}

/// What every handler shares: the engine (once recovered), secrets, settings, clock.
pub struct AppContext {
    /// Set once recovery finished; until then every route but `/healthz` answers 503.
    engine: OnceLock<Arc<Engine>>,
    pub secrets: Secrets,
    pub settings: ApiSettings,
    pub clock: Arc<dyn Clock>,
    pub prometheus: Option<PrometheusHandle>,
    /// Rendered sale pages, by sale version.
    pages: pages::SalePages,
    /// Live push: each sale's subscribers and the task that renders for them.
    pub push: Arc<push::PushHub>,
    /// The admin API keys and the buyer signing keys (see [`keys`]).
    pub keys: Arc<keys::KeyStore>,
    /// The rate limiters (buyer, address).
    pub(crate) rate_limits: Arc<rate_limit::RateLimits>,
    /// The payment providers: which methods `POST /v1/orders/{id}/pay` takes, their circuit
    /// breakers, and Stripe's webhook verifier.
    pub providers: Providers,
    /// Stripe notifications seen lately (redeliveries are answered without work).
    webhooks_seen: routes::webhooks::SeenNotifications,
    /// This deployment's namespace at the payment providers, once recovered.
    payment_namespace: OnceLock<String>,
    /// Pay requests waiting for the saga, woken by its reports.
    pub(crate) order_watch: Arc<taquilla_followers::OrderWatch>,
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl std::ops::Deref for AppState {
    type Target = AppContext;
    fn deref(&self) -> &AppContext {
        &self.0
    }
}

impl AppState {
    pub fn new(
        secrets: Secrets,
        settings: ApiSettings,
        clock: Arc<dyn Clock>,
        prometheus: Option<PrometheusHandle>,
        providers: Providers,
        keys: Arc<keys::KeyStore>,
    ) -> AppState {
        // `room` events: the buyer's status in the sale's waiting room.
        let room = push::room::WaitingRoom {
            keys: keys.clone(),
            clock: clock.clone(),
        };
        let push = Arc::new(push::PushHub::new(settings.push, Box::new(room)));
        AppState(Arc::new(AppContext {
            engine: OnceLock::new(),
            keys,
            rate_limits: Arc::new(rate_limit::RateLimits::new(&settings.rate_limits)),
            secrets,
            settings,
            clock,
            prometheus,
            pages: pages::SalePages::default(),
            push,
            providers,
            webhooks_seen: Default::default(),
            payment_namespace: OnceLock::new(),
            order_watch: Default::default(),
        }))
    }

    /// This deployment's namespace at the payment providers (set once recovery is done).
    pub(crate) fn set_payment_namespace(&self, namespace: String) {
        let _ = self.0.payment_namespace.set(namespace);
    }

    /// See [`AppState::set_payment_namespace`]; `None` before recovery.
    pub(crate) fn payment_namespace(&self) -> Option<&str> {
        self.0.payment_namespace.get().map(String::as_str)
    }

    /// Marks the server ready: recovery is done and commands can flow.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.0.engine.set(engine);
    }

    pub fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        match self.0.engine.get() {
            Some(e) if !e.has_failed() => Ok(e),
            Some(_) => Err(ApiError::new(
                Code::Unavailable,
                "the engine stopped after a storage failure",
            )),
            None => Err(ApiError::new(Code::Unavailable, "recovering; not ready yet")),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Keys the rate limiters track now: (buyers, addresses).
    pub fn rate_limit_keys(&self) -> (usize, usize) {
        self.rate_limits.tracked()
    }
}

/// The whole application as a service: [`request_layer::RequestService`] around the router (every route and
/// the fallbacks). Serve it with `axum::serve(listener, app.into_make_service())` (through
/// `axum::ServiceExt`), or call it directly in tests.
pub fn app(state: AppState) -> App {
    let timeout = state.settings.request_timeout;
    let body_limit = state.settings.body_limit_bytes;
    let cors = cors::layer(&state.settings.cors);
    let (router, _) = routes::router().split_for_parts();
    let mut router = router
        // One route layer (one boxed level per route): the route label, the address limit
        // (after routing: it knows the route) and the body limit.
        .route_layer(
            tower::ServiceBuilder::new()
                .layer(request_layer::RouteLabelLayer)
                .layer(rate_limit::AddressLimitLayer::new(state.rate_limits.clone()))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state);
    // Outside the route layer, so that its answers (a 429 too) carry the CORS headers, and
    // only when origins are allowed: no cost otherwise.
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    request_layer::RequestLayer::new(timeout).layer(router)
}

/// The type [`app`] returns.
pub type App = request_layer::RequestService<Router>;
