//! Building and running the application. `serve` is what the binary runs; `spawn` is the same
//! thing on an already-bound listener, returning a handle, which is how tests run the real server.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::db;
use crate::domain::{Services, booking, live, seed};
use crate::{telemetry, transport};

/// A running server with its background tasks. Dropping it stops them.
pub struct Running {
    pub addr: SocketAddr,
    pub services: Services,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, stops the background tasks.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.server).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What runs beside the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct Background {
    pub admission_ticker: bool,
    pub hold_sweeper: bool,
    /// Reads watched rooms and dates once per tick for this instance's subscribers.
    pub live_ticker: bool,
}

impl Background {
    pub const ALL: Self = Self {
        admission_ticker: true,
        hold_sweeper: true,
        live_ticker: true,
    };
    pub const NONE: Self = Self {
        admission_ticker: false,
        hold_sweeper: false,
        live_ticker: false,
    };
}

/// Serves on `listener` until the returned handle is stopped or dropped.
pub fn spawn(
    listener: TcpListener,
    services: Services,
    background: Background,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    if background.admission_ticker || background.live_ticker {
        tokio::spawn(live::run_queue_ticker(
            services.clone(),
            background.admission_ticker,
            background.live_ticker,
            shutdown.child_token(),
        ));
    }
    if background.hold_sweeper {
        tokio::spawn(booking::run_hold_sweeper(
            services.clone(),
            shutdown.child_token(),
        ));
    }
    let app = transport::router(services.clone(), telemetry::metrics());
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "server stopped with an error");
        }
    });
    Ok(Running {
        addr,
        services,
        shutdown,
        server,
    })
}

/// `encore serve`: migrate, optionally seed, serve until SIGINT/SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let url = &config.database.database_url;
    db::migrate(url).await.context("running migrations")?;
    let database = db::connect(url, config.database.database_pool_size.into())?;
    let services = Services::new(
        database,
        config.rules.clone(),
        config.jwt_secret.expose().as_bytes(),
    );
    if config.seed
        && seed::seed_if_empty(&services)
            .await
            .context("seeding demo data")?
    {
        tracing::info!(
            email = seed::DEMO_EMAIL,
            password = seed::DEMO_PASSWORD,
            "seeded demo data"
        );
    }
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let running = spawn(listener, services, Background::ALL)?;
    tracing::info!(database = %db::redact(url), "listening on {}", running.addr);
    println!("GraphiQL: {}/graphql", running.url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
