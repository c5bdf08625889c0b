//! The accept loop: HTTP/1.1 with websocket upgrades, with the connection hygiene
//! `axum::serve` does not offer. (No cleartext HTTP/2: browsers speak it only over TLS, which a
//! proxy in front terminates; and hyper's protocol sniffing would read bytes with no deadline.)
//!
//! - A connection must send a request's complete headers within `header_timeout`, so slow or
//!   silent clients (slowloris, idle keep-alive sockets) cannot pile up file descriptors.
//! - When accepting fails because the process is out of file descriptors, the loop logs it (at
//!   most once a second) and backs off instead of spinning; existing connections keep working.
//! - On shutdown the listener is closed at once, every connection is asked to finish its
//!   in-flight request and close; one with no request in flight (idle, or half-way through its
//!   headers) is dropped at once. The caller waits on the connection tracker up to a deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// How often a draining connection is checked for a request still in flight.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

/// Counts a request of a connection as in flight until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts and serves connections until `stop` is cancelled, then returns; the connections it
/// started are tracked by `connections` (closed when this returns).
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    connections: TaskTracker,
) {
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut last_fd_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                backoff_after_accept_error(&err, &mut last_fd_warning).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Requests of this connection being handled now: at shutdown a connection with none is
        // closed at once, even one half-way through sending headers.
        let busy = Arc::new(AtomicUsize::new(0));
        let service = {
            let (app, busy) = (app.clone(), Arc::clone(&busy));
            tower::service_fn(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let handling = Busy::start(&busy);
                let app = app.clone();
                async move {
                    let response = app.oneshot(req).await;
                    drop(handling);
                    response
                }
            })
        };
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::trace!(error = %err, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.cancelled() => {}
            }
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    () = tokio::time::sleep(DRAIN_CHECK) => {
                        if busy.load(Ordering::Relaxed) == 0 {
                            break; // nothing in flight: drop it
                        }
                    }
                }
            }
        });
    }
    connections.close();
}

async fn backoff_after_accept_error(err: &io::Error, last_warning: &mut Option<Instant>) {
    // EMFILE (24): this process is out of descriptors; ENFILE (23): the whole system is.
    let out_of_fds = matches!(err.raw_os_error(), Some(23 | 24));
    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
        *last_warning = Some(Instant::now());
        if out_of_fds {
            metrics::counter!("http_accept_fd_exhausted_total").increment(1);
            tracing::warn!(error = %err, "accept failed: out of file descriptors; backing off");
        } else {
            tracing::warn!(error = %err, "accept failed");
        }
    }
    let pause = if out_of_fds { 100 } else { 5 };
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// Raises the soft open-file limit to the hard limit (each websocket subscriber is a descriptor)
/// and logs both.
pub fn raise_fd_limit() {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE);
    match (before, rlimit::increase_nofile_limit(u64::MAX)) {
        (Ok((soft, hard)), Ok(now)) if now > soft => {
            tracing::info!(
                soft_before = soft,
                soft = now,
                hard,
                "open-file limit raised to {now} (was {soft}, hard limit {hard})"
            );
        }
        (Ok((soft, hard)), Ok(_)) => {
            tracing::info!(
                soft,
                hard,
                "open-file limit already at {soft} (hard limit {hard}); nothing to raise"
            );
        }
        (_, Err(err)) | (Err(err), _) => {
            tracing::warn!(error = %err, "could not read or raise the open-file limit");
        }
    }
}
