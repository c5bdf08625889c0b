//! Building and running the application. `serve` is what the binary runs; `spawn` is the same
//! thing on an already-bound listener, returning a handle, which is how tests run the real server.
//!
//! [`Running`] owns everything the instance started: the accept loop, the connections and
//! websocket sessions it serves, and the background tasks. [`Running::stop`] is the graceful
//! shutdown: stop accepting at once, let in-flight requests finish and close websockets with 1001
//! within the grace period, stop and await the background tasks, close the pool.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::background::Background;
use crate::background::Tasks;
use crate::config::{ServeConfig, ServerLimits};
use crate::db::Database;
use crate::domain::seed;
use crate::domain::services::Services;
use crate::transport::{self, RouterParts, server};
use crate::{db, telemetry};

/// Background tasks stop at their next await once cancelled; this bounds the wait regardless.
const BACKGROUND_STOP_LIMIT: Duration = Duration::from_secs(5);

/// A running server with its background tasks. Dropping it stops them without waiting.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`METRICS_BIND`), when it is.
    pub metrics_addr: Option<SocketAddr>,
    pub services: Services,
    shutdown: CancellationToken,
    grace: Duration,
    accept_loop: JoinHandle<()>,
    connections: TaskTracker,
    sessions: TaskTracker,
    background: Tasks,
    /// The metrics listener's task; it stops with the shutdown token.
    metrics: Option<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://host:port/metrics`, when metrics are served.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_addr
            .map(|addr| format!("http://{addr}/metrics"))
    }

    /// Graceful shutdown. Returns false when connections were still open at the end of the grace
    /// period (they are abandoned; their database work rolls back).
    pub async fn stop(mut self) -> bool {
        self.shutdown.cancel();
        let deadline = Instant::now() + self.grace;
        let _ = (&mut self.accept_loop).await;
        self.sessions.close();
        let drained = tokio::time::timeout_at(deadline, async {
            self.connections.wait().await;
            self.sessions.wait().await;
        })
        .await
        .is_ok();
        if let Some(metrics) = self.metrics.take() {
            let _ = tokio::time::timeout(BACKGROUND_STOP_LIMIT, metrics).await;
        }
        self.services.entries.drain(BACKGROUND_STOP_LIMIT).await;
        self.background.stop(BACKGROUND_STOP_LIMIT).await;
        self.services.db.close();
        drained
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves on `listener` until the returned handle is stopped or dropped.
pub fn spawn(
    listener: TcpListener,
    services: Services,
    background: Background,
    limits: ServerLimits,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let background = Tasks::start(&services, background, shutdown.child_token());
    let connections = TaskTracker::new();
    let sessions = TaskTracker::new();
    let grace = limits.shutdown_grace;
    let header_timeout = limits.header_timeout;
    let persisted = std::sync::Arc::new(crate::graphql::persisted_queries::Store::from_config(
        &limits,
    )?);
    let (metrics_addr, metrics) = match serve_metrics(&limits, &services, &shutdown) {
        Some((addr, task)) => (Some(addr), Some(task)),
        None => (None, None),
    };
    let app = transport::router(
        services.clone(),
        RouterParts {
            persisted,
            limits,
            shutdown: shutdown.clone(),
            sessions: sessions.clone(),
        },
    );
    let accept_loop = tokio::spawn(server::accept_loop(
        listener,
        app,
        header_timeout,
        shutdown.clone(),
        connections.clone(),
    ));
    Ok(Running {
        addr,
        metrics_addr,
        metrics,
        services,
        shutdown,
        grace,
        accept_loop,
        connections,
        sessions,
        background,
    })
}

/// Starts the metrics listener (`METRICS_BIND`), unless it is off. An address that cannot be
/// bound leaves the instance without metrics, said in the log: the service matters more than
/// its counters.
fn serve_metrics(
    limits: &ServerLimits,
    services: &Services,
    shutdown: &CancellationToken,
) -> Option<(SocketAddr, JoinHandle<()>)> {
    let addr = limits.metrics_bind.0?;
    let bound = std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .and_then(TcpListener::from_std);
    let listener = match bound {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "metrics not served: cannot bind METRICS_BIND");
            return None;
        }
    };
    let addr = listener.local_addr().ok()?;
    let router = transport::metrics_router(services.clone(), telemetry::metrics());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Some((addr, task))
}

/// Applies pending migrations, then rewrites stored e-mails that are not in their normalised
/// form (rows from before normalisation existed, or written by an older instance during a
/// rolling upgrade), reporting (and leaving alone) any that would collide with another account
/// or cannot be normalised. Never merges accounts. Runs at every start, so an interrupted
/// rewrite finishes next time; it reads only rows that can differ (non-ASCII, upper case or
/// control characters), which a plain lower-case ASCII table has none of.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    use diesel_async::AsyncConnection;
    db::migrate(url).await.context("running migrations")?;
    {
        let mut conn = db::Conn::establish(url)
            .await
            .context("connecting to normalise e-mails")?;
        let report = crate::domain::accounts::normalise_stored_emails(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("normalising stored e-mails: {e:?}"))?;
        if report.normalised + report.collisions.len() + report.invalid.len() > 0 {
            tracing::info!(
                normalised = report.normalised,
                collisions = report.collisions.len(),
                invalid = report.invalid.len(),
                "stored e-mails normalised"
            );
        }
        for id in report.collisions.iter().chain(&report.invalid) {
            tracing::warn!(
                user = %id,
                "this account's e-mail was left as stored: normalised it collides with another \
                 account's, or it cannot be normalised; it cannot sign in until an operator \
                 changes one of them"
            );
        }
    }
    Ok(())
}

/// `encore serve`: migrate, optionally seed, serve until SIGINT/SIGTERM, then shut down
/// gracefully.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let stop_requested = shutdown_signal()?;
    server::raise_fd_limit();
    let url = &config.database.database_url;
    migrate(url).await?;
    let nodes: Vec<String> = config
        .database
        .database_nodes
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().to_owned())
        .collect();
    let database = Database::connect_nodes(url, &nodes, &config.database.pool())?;
    let services = Services::new(
        database,
        config.rules.clone(),
        config.jwt_secret.expose().as_bytes(),
    )?;
    if config.seed
        && seed::seed_if_empty(&services)
            .await
            .context("seeding demo data")?
    {
        tracing::info!(
            email = seed::DEMO_EMAIL,
            password = seed::DEMO_PASSWORD,
            operator_email = seed::OPERATOR_EMAIL,
            operator_password = seed::OPERATOR_PASSWORD,
            "seeded demo data"
        );
    }
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let grace = config.limits.shutdown_grace;
    let app_built = config.limits.web_dir.join("app/dist/index.html").is_file();
    let running = spawn(listener, services, Background::ALL, config.limits)?;
    tracing::info!(database = %db::redact(url), "listening on {}", running.addr);
    if let Some(metrics) = running.metrics_url() {
        tracing::info!("metrics at {metrics} (METRICS_BIND; keep it off the public network)");
    }
    println!("GraphiQL: {}/graphql", running.url());
    if app_built {
        println!("Web app: {}/app/", running.url());
    } else {
        println!(
            "Web app: not built (npm ci && npm run build in web/app; scripts/run does it with Node.js)"
        );
    }
    stop_requested.await;
    tracing::info!(
        grace = %humantime::format_duration(grace),
        "shutting down: no new connections, finishing requests in flight"
    );
    if running.stop().await {
        tracing::info!("shut down cleanly");
    } else {
        tracing::warn!("grace period over with connections still open; exiting anyway");
    }
    Ok(())
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not when it is first
/// awaited: a signal that arrives between "listening" and the wait must not kill the process
/// with the default action.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
