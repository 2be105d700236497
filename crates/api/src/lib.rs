//! HTTP API v1 of taquilla (axum). This crate turns HTTP into engine commands and engine state
//! into JSON; it holds no sales state of its own.
//!
//! Request path: keep-alive check (`Connection: close` when the body was left unread) →
//! correlation middleware (id, metrics, error rendering) → router → extractors
//! (auth, JSON with our error codes) → handler → `Engine::submit` (bounded queue; full =
//! `503 overloaded`) → reply after the command is durable → view built from the engine's
//! in-memory state.

pub mod auth;
pub mod correlation;
pub mod error;
mod extract;
pub mod ids;
mod keepalive;
pub mod openapi;
mod routes;
pub mod views;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use metrics_exporter_prometheus::PrometheusHandle;
use taquilla_domain::Timestamp;
use taquilla_engine::{Clock, Engine};

pub use auth::{Secrets, mint_buyer_token, verify_buyer_token};
pub use error::{ApiError, Code};

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Enables `POST /v1/orders/{id}/pay {"method": "test"}`.
    pub allow_test_payments: bool,
    /// Longest a request may take before `503`; the engine bounds its own waits, this is
    /// the last line.
    pub request_timeout: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            body_limit_bytes: 16 * 1024,
            allow_test_payments: false,
            request_timeout: Duration::from_secs(30),
        }
    }
}

pub struct Inner {
    /// Set once recovery finished; until then every route but `/healthz` answers 503.
    engine: OnceLock<Arc<Engine>>,
    pub secrets: Secrets,
    pub settings: ApiSettings,
    pub clock: Arc<dyn Clock>,
    pub prometheus: Option<PrometheusHandle>,
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        secrets: Secrets,
        settings: ApiSettings,
        clock: Arc<dyn Clock>,
        prometheus: Option<PrometheusHandle>,
    ) -> AppState {
        AppState(Arc::new(Inner {
            engine: OnceLock::new(),
            secrets,
            settings,
            clock,
            prometheus,
        }))
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
}

/// The whole application: every route, the fallbacks, and the layers.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    let body_limit = state.settings.body_limit_bytes;
    routes::routes()
        .route_layer(middleware::from_fn(correlation::record_route))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(routes::panic_response))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(correlation::middleware))
        // Outermost: the correlation middleware renders errors into fresh responses.
        .layer(middleware::from_fn(keepalive::middleware))
        .with_state(state)
}
