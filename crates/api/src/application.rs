//! The whole HTTP application as one value (zero2prod's `Application::build` shape), used by
//! `taquilla serve` and by the API tests alike: bind the listener, answer `/healthz` at once,
//! recover the engine in the background (every other route answers `503 unavailable` until it
//! is done), start the payment saga, serve until told to stop, then shut down gracefully —
//! stop accepting, finish the requests in flight, stop the saga, drain the engine's queues
//! durably and snapshot.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use taquilla_engine::{Clock, Engine, EngineConfig, EngineError};
use taquilla_followers::{Providers, SagaConfig, SagaHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connections::{LimitedListener, MakeConnService};
use crate::keys::KeyStore;
use crate::{ApiSettings, AppState, Secrets};

/// Everything the application needs, resolved (the binary applies flags > environment >
/// config file > defaults; tests build it directly).
pub struct AppConfig {
    /// `host:port`; port 0 picks a free one (see [`Application::local_addr`]).
    pub listen: String,
    pub data_dir: PathBuf,
    pub secrets: Secrets,
    pub engine: EngineConfig,
    pub api: ApiSettings,
    pub clock: Arc<dyn Clock>,
    /// Serves `/metrics` when set (the recorder is process-global; the binary installs it).
    pub prometheus: Option<PrometheusHandle>,
    /// The payment providers the saga calls, by method (with their resilience layers).
    pub providers: Providers,
    pub saga: SagaConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {listen}: {source}")]
    Listen { listen: String, source: std::io::Error },
    #[error("recovery failed: {0}")]
    Engine(#[from] EngineError),
    #[error("the recovery task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("the payment namespace of the data directory: {0}")]
    Namespace(std::io::Error),
    #[error("the payment saga cannot start: {0}")]
    Saga(#[from] taquilla_log::cursor::CursorError),
    #[error("the keys: {0}")]
    Keys(#[from] crate::keys::KeysError),
}

/// Why [`RunningApp::run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The stop signal came: a clean shutdown.
    Stopped,
    /// The engine stopped after a storage failure; the process should exit non-zero.
    StorageFailed,
}

/// A bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    data_dir: PathBuf,
    engine_config: EngineConfig,
    providers: Providers,
    saga: SagaConfig,
}

/// How often the running application checks whether the engine has failed.
const FAILURE_POLL: Duration = Duration::from_millis(200);

impl Application {
    /// Binds the listener. Nothing is served and nothing recovered until [`Application::start`].
    pub async fn build(config: AppConfig) -> Result<Application, AppError> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|source| AppError::Listen {
                listen: config.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AppError::Listen {
            listen: config.listen.clone(),
            source,
        })?;
        let keys = KeyStore::open(
            &config.data_dir,
            &config.secrets.admin_token,
            &config.secrets.buyer_secret,
        )?;
        let state = AppState::new(
            config.secrets,
            config.api,
            config.clock,
            config.prometheus,
            config.providers.clone(),
            Arc::new(keys),
        );
        Ok(Application {
            listener,
            addr,
            state,
            data_dir: config.data_dir,
            engine_config: config.engine,
            providers: config.providers,
            saga: config.saga,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving (`/healthz` answers at once) and recovering in the background.
    pub fn start(self) -> RunningApp {
        let Application {
            listener,
            addr,
            state,
            data_dir,
            engine_config,
            providers,
            saga,
        } = self;
        let saga_dir = data_dir.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, state.clone(), stop_rx));
        let keys_poll = tokio::spawn(crate::keys::poll(state.keys.clone()));
        let clock = state.clock.clone();
        // Recovery reads the whole log: off the async workers.
        let recovery = tokio::task::spawn_blocking(move || Engine::open(&data_dir, engine_config, clock));
        RunningApp {
            addr,
            state,
            server,
            recovery: Some(recovery),
            engine: None,
            stop_tx,
            saga: None,
            saga_start: Some((providers, saga, saga_dir)),
            keys_poll,
        }
    }
}

async fn serve(listener: TcpListener, state: AppState, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let listener = LimitedListener::new(listener, state.settings.connections);
    // hyper's own answers to requests it cannot parse, in our JSON error shape.
    let listener = crate::protocol_errors::JsonErrorsListener(listener);
    let app = crate::app(state);
    axum::serve(listener, MakeConnService::new(app))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// A serving application.
pub struct RunningApp {
    addr: SocketAddr,
    state: AppState,
    server: JoinHandle<std::io::Result<()>>,
    recovery: Option<JoinHandle<Result<Engine, EngineError>>>,
    engine: Option<Arc<Engine>>,
    stop_tx: watch::Sender<bool>,
    saga: Option<SagaHandle>,
    /// What the saga starts with, once the engine has recovered (and the data directory).
    saga_start: Option<(Providers, SagaConfig, PathBuf)>,
    /// Re-reads the keys file (see `keys`); aborted at shutdown.
    keys_poll: JoinHandle<()>,
}

impl RunningApp {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Orders with payment-saga work not done yet (0 before recovery).
    pub fn saga_pending(&self) -> usize {
        self.saga.as_ref().map_or(0, SagaHandle::pending)
    }

    /// Waits for recovery to finish and opens the API (`/readyz` 200 from then on).
    pub async fn ready(&mut self) -> Result<Arc<Engine>, AppError> {
        if let Some(engine) = &self.engine {
            return Ok(engine.clone());
        }
        let Some(recovery) = self.recovery.take() else {
            unreachable!("recovery is taken only here, and then the engine is set");
        };
        let engine = Arc::new(recovery.await??);
        let r = engine.recovery();
        tracing::info!(
            sales = r.sales,
            records = r.records_scanned,
            replayed = r.records_replayed,
            ms = r.duration.as_millis() as u64,
            "recovered"
        );
        if let Some((providers, config, data_dir)) = self.saga_start.take() {
            // The engine holds the data directory's lock: the namespace is drawn once.
            let namespace = taquilla_followers::saga::namespace(&data_dir).map_err(AppError::Namespace)?;
            self.state.set_payment_namespace(namespace.clone());
            let cursors = data_dir.join("cursors");
            self.saga = Some(SagaHandle::start(
                engine.clone(),
                providers,
                &cursors,
                namespace,
                config,
                self.state.order_watch.clone(),
            )?);
        }
        tokio::spawn(watch_free_space(
            Arc::downgrade(&engine),
            self.state.settings.disk_free_warn_bytes,
        ));
        self.state.set_engine(engine.clone());
        self.engine = Some(engine.clone());
        Ok(engine)
    }

    /// Serves until `stop` resolves or the engine fails, then shuts down gracefully.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Result<Exit, AppError> {
        let engine = self.ready().await?;
        let exit = tokio::select! {
            _ = stop => Exit::Stopped,
            _ = async { while !engine.has_failed() { tokio::time::sleep(FAILURE_POLL).await } } => {
                tracing::error!("the engine stopped after a storage failure; shutting down");
                Exit::StorageFailed
            }
        };
        drop(engine);
        self.shutdown().await?;
        Ok(exit)
    }

    /// Stops accepting, finishes the requests in flight, then stops the engine: it drains what
    /// is queued (durably) and snapshots. Every reply was sent after its fsync.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = self.stop_tx.send(true);
        // Event streams never end by themselves: end them, or the drain would wait forever.
        self.state.push.close();
        let served = (&mut self.server).await;
        self.keys_poll.abort();
        if let Some(saga) = self.saga.take() {
            saga.stop().await;
        }
        let engine = match self.engine.take() {
            Some(e) => Some(e),
            // Stopped before recovery finished: wait for it, so the data dir is released.
            None => match self.recovery.take() {
                Some(r) => r.await?.ok().map(Arc::new),
                None => None,
            },
        };
        if let Some(engine) = engine {
            drop(self.state);
            tokio::task::spawn_blocking(move || engine.stop()).await?;
        }
        tracing::info!("stopped");
        served?.map_err(AppError::Serve)
    }
}

/// Looks at the data directory's free space every `DISK_FREE_CHECK_INTERVAL` while the engine
/// lives: a warning when it falls below `warn_bytes`, a note when it is back above (once per
/// crossing, not per look), and the `taquilla_data_dir_free_*` gauges.
async fn watch_free_space(engine: std::sync::Weak<Engine>, warn_bytes: u64) {
    metrics::gauge!("taquilla_data_dir_free_warn_bytes").set(warn_bytes as f64);
    let mut low = false;
    loop {
        let Some(free) = engine.upgrade().map(|e| e.data_dir_free_bytes()) else {
            return;
        };
        if let Some(free) = free {
            metrics::gauge!("taquilla_data_dir_free_bytes").set(free as f64);
            if free < warn_bytes && !low {
                tracing::warn!(
                    free_bytes = free,
                    warn_bytes,
                    "the data directory's disk is nearly full: at 0, writes are refused (503 storage_full)"
                );
            } else if free >= warn_bytes && low {
                tracing::info!(
                    free_bytes = free,
                    warn_bytes,
                    "the data directory's disk has space again"
                );
            }
            low = free < warn_bytes;
        }
        tokio::time::sleep(crate::limits::DISK_FREE_CHECK_INTERVAL).await;
    }
}
