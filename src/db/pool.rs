//! The connection pool, and the one way to use a pooled connection: a [`Lease`] for one unit of
//! database work.
//!
//! # The cancellation rule
//!
//! Any future may be dropped at any await: the client hung up, the request timeout fired, a
//! websocket closed, the process is stopping. MySQL's wire protocol cannot abandon a statement
//! half-way, so a connection whose statement (or whose row stream) was interrupted is out of step
//! with the server: reused, it hands the next caller the previous caller's rows. A ping does not
//! reliably tell: it can read a stale reply and pass.
//!
//! So the rule is: **a connection goes back to the pool only when the unit of work that leased it
//! ran to its end.** A [`Lease`] starts unfinished; the `with_conn!` and `transaction!` macros of
//! the domain mark it finished after the body's future completed (with a value or an error).
//! Dropped unfinished, the lease detaches the connection from the pool and closes it at once:
//! the server then rolls back whatever transaction was open and releases its row locks, so a
//! mutation commits or rolls back whole whatever the client does, and a client that disconnects
//! after the commit loses only the response. If a statement was executing at that moment, a
//! `KILL QUERY` is sent on a separate, unpooled connection (at most a few at once; past that the
//! connection is only closed) so a statement waiting on a row lock does not keep its
//! transaction's locks until the lock-wait timeout.
//!
//! We chose this over "run every unit of work to completion in a spawned task" because it holds
//! by construction for every caller without making each body `'static`, costs nothing on the
//! normal path (one flag), and also covers futures the runtime itself drops at shutdown. The
//! price is a reconnect per interrupted unit of work, which only aborted requests pay.
//!
//! The other rules kept here:
//! - A connection that saw an I/O-level error (server gone, connection killed) is discarded, so
//!   is every connection opened before the last such error, and one idle for a while is pinged
//!   before reuse: after a database restart the pool heals itself without handing anyone a dead
//!   connection.
//! - A checkout is bounded as a whole (`wait_timeout + connect_timeout`), and a health probe on a
//!   busy pool opens at most one connection of its own at a time, reusing its answer for a second.
//! - No code holds one lease while waiting for another: a pool of N would deadlock at N callers.
//!   The suite runs every operation on a pool of one to prove it.
//! - Waiting for a connection and opening one are bounded ([`PoolConfig`]); past the bound the
//!   caller gets a pool error, which the API reports as `SERVICE_UNAVAILABLE`.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use diesel::ConnectionError;
use diesel::connection::InstrumentationEvent;
use diesel_async::{AsyncConnection, SimpleAsyncConnection, TransactionManager};
use tokio::sync::Semaphore;

use super::nodes::{self, Node};
use super::{Conn, is_connection_error};

/// Pool errors as callers see them.
pub type PoolError = deadpool::managed::PoolError<ConnectionError>;
type Object = deadpool::managed::Object<Manager>;
type TransactionManagerOf = <Conn as AsyncConnection>::TransactionManager;

const SESSION_SETUP: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Galera's `wsrep_sync_wait`: reads (1), UPDATE and DELETE (2), INSERT and REPLACE (4).
const CAUSAL_READS: &str = "SET SESSION wsrep_sync_wait = 7";

/// Whether a Galera node is ready for work (in the primary component): `ON`; always `ON` for a
/// server that does not replicate with wsrep (a plain server listed as a node).
const NODE_READY: &str = "SELECT IF(@@wsrep_on, (SELECT VARIABLE_VALUE \
     FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'), 'ON') AS value";

#[derive(diesel::QueryableByName)]
struct NodeReady {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// A connection unused for longer than this is pinged before it is handed out: the server may
/// have restarted or closed it (`wait_timeout`) meanwhile. Busy connections are never pinged.
const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(2);

/// A busy pool's health is checked on a connection of its own at most this often.
const DIRECT_PROBE_REUSE: Duration = Duration::from_secs(1);

/// At most this many `KILL QUERY` connections at once; past it an interrupted statement is left
/// to end by itself (its connection is closed regardless).
const CONCURRENT_KILLS: usize = 4;

/// Bounds of the pool, from configuration.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub size: usize,
    /// How long a caller waits for a free connection before `SERVICE_UNAVAILABLE`.
    pub wait_timeout: Duration,
    /// How long opening a connection (or verifying an idle one) may take.
    pub connect_timeout: Duration,
}

impl PoolConfig {
    pub fn with_size(size: usize) -> Self {
        Self {
            size,
            wait_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// A shared count: the SQL statements a pool's connections start (the cost model of live updates
/// is "statements per tick"), or the leases it hands out ("checkouts per operation").
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sizes of the pool right now, for `/health` and `/metrics`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolStatus {
    pub size: usize,
    pub max: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// The pools of the database nodes this instance reaches (one for a single server), and the
/// order units of work try them in (see `nodes`). Cheap to clone.
#[derive(Clone)]
pub struct Database {
    nodes: Arc<[Node]>,
    /// Indexes into `nodes`, first choice first: the instance's own node, or a key's home.
    order: Arc<[usize]>,
    pub statements: Counter,
    /// Leases handed out: the cost model of a request is "checkouts per operation".
    leases: Counter,
    kills: Arc<Kills>,
    /// The longest a checkout may take in all: waiting for a slot, then checking idle
    /// connections or opening one. deadpool bounds each step, not their sum.
    checkout_limit: Duration,
}

/// Sends `KILL QUERY` for statements interrupted mid-flight, a few at a time.
struct Kills {
    permits: Semaphore,
    connect_timeout: Duration,
}

impl Database {
    /// A pool of `config.size` connections to `url`, opened lazily.
    pub fn connect(url: &str, config: &PoolConfig) -> anyhow::Result<Self> {
        Self::connect_nodes(url, &[], config)
    }

    /// Pools to `url` (this instance's own node, tried first for everything without a home) and
    /// to every other node of its cluster in `others`, `config.size` connections each.
    pub fn connect_nodes(
        url: &str,
        others: &[String],
        config: &PoolConfig,
    ) -> anyhow::Result<Self> {
        let statements = Counter::default();
        let cluster = !others.is_empty();
        let mut urls: Vec<&str> = vec![url];
        for other in others {
            let address = nodes::address_of(other);
            if !urls.iter().any(|u| nodes::address_of(u) == address) {
                urls.push(other);
            }
        }
        let mut built = Vec::with_capacity(urls.len());
        for url in urls {
            let manager = Manager {
                url: url.to_owned(),
                statements: statements.clone(),
                epoch: Arc::new(AtomicU64::new(0)),
                connect_timeout: config.connect_timeout,
                cluster,
            };
            let pool = deadpool::managed::Pool::builder(manager)
                .max_size(config.size)
                .wait_timeout(Some(config.wait_timeout))
                .create_timeout(Some(config.connect_timeout))
                .recycle_timeout(Some(config.connect_timeout))
                .runtime(deadpool::Runtime::Tokio1)
                .build()?;
            built.push(Node::new(pool, url));
        }
        let order: Arc<[usize]> = (0..built.len()).collect();
        Ok(Self {
            nodes: built.into(),
            order,
            statements,
            leases: Counter::default(),
            kills: Arc::new(Kills {
                permits: Semaphore::new(CONCURRENT_KILLS),
                connect_timeout: config.connect_timeout,
            }),
            checkout_limit: config.wait_timeout + config.connect_timeout,
        })
    }

    /// The same pools, trying `key`'s home node first: for writes that serialise on the row
    /// `key` names (a room, a wallet). With one node, the database itself.
    pub fn home(&self, key: &[u8]) -> Self {
        if self.nodes.len() < 2 {
            return self.clone();
        }
        let addresses: Vec<&str> = self.nodes.iter().map(|n| n.address.as_str()).collect();
        Self {
            order: nodes::home_order(&addresses, key).into(),
            ..self.clone()
        }
    }

    /// Writes to a room (its counters, its tickets, its seats) go to the room's home node.
    pub fn room_home(&self, concert: &super::ids::ConcertId) -> Self {
        self.home(concert.as_str().as_bytes())
    }

    /// Writes to a fan's wallet (charges, payments, refunds) go to the wallet's home node.
    pub fn wallet_home(&self, user: &super::ids::UserId) -> Self {
        self.home(user.as_str().as_bytes())
    }

    /// A connection for one unit of work. Call [`Lease::finish`] when the work has completed;
    /// the domain's `with_conn!` and `transaction!` do. Tries the nodes in order: a node that
    /// cannot be connected to is marked down and the next one asked; a node whose pool is busy
    /// answers with that (a busy node is not a lost one).
    pub async fn lease(&self) -> Result<Lease, PoolError> {
        let mut result = Err(PoolError::Closed);
        for index in nodes::candidates(&self.nodes, &self.order) {
            let node = &self.nodes[index];
            result = tokio::time::timeout(self.checkout_limit, node.pool.get())
                .await
                .unwrap_or(Err(PoolError::Timeout(
                    deadpool::managed::TimeoutType::Wait,
                )));
            match &result {
                Ok(_) | Err(PoolError::Timeout(deadpool::managed::TimeoutType::Wait)) => break,
                Err(PoolError::Closed) => break,
                Err(_) if self.nodes.len() > 1 => node.mark_down(),
                Err(_) => {}
            }
        }
        if let Err(err) = &result {
            let kind = match err {
                PoolError::Timeout(deadpool::managed::TimeoutType::Wait) => "wait_timeout",
                PoolError::Timeout(_) => "connect_timeout",
                PoolError::Backend(_) => "connect_failed",
                _ => "closed",
            };
            metrics::counter!("db_pool_errors_total", "kind" => kind).increment(1);
        }
        let lease = self.wrap(result?);
        self.leases.0.fetch_add(1, Ordering::Relaxed);
        Ok(lease)
    }

    /// How many leases this pool has handed out.
    pub fn leases(&self) -> u64 {
        self.leases.get()
    }

    fn wrap(&self, object: Object) -> Lease {
        Lease {
            object: Some(object),
            finished: false,
            kills: Arc::clone(&self.kills),
        }
    }

    /// Whether the database answers within `limit`, without queueing behind a busy pool: it
    /// uses an idle pooled connection (or opens one) when it can, else a short-lived connection
    /// of its own. So an exhausted pool does not read as a database outage. On a cluster, any
    /// node answering will do.
    pub async fn probe(&self, limit: Duration) -> bool {
        let probes = async {
            for index in nodes::candidates(&self.nodes, &self.order) {
                if self.probe_node(&self.nodes[index], limit).await {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(limit, probes).await.unwrap_or(false)
    }

    async fn probe_node(&self, node: &Node, limit: Duration) -> bool {
        let no_wait = deadpool::managed::Timeouts {
            wait: Some(Duration::ZERO),
            create: Some(limit),
            recycle: Some(limit),
        };
        match node.pool.timeout_get(&no_wait).await {
            Ok(object) => {
                let mut lease = self.wrap(object);
                let ping =
                    diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut *lease);
                let up = matches!(tokio::time::timeout(limit, ping).await, Ok(Ok(_)));
                if up {
                    lease.finish();
                }
                up
            }
            Err(PoolError::Timeout(deadpool::managed::TimeoutType::Wait)) => {
                let mut last = node.direct_probe.lock().await;
                if let Some((at, up)) = *last
                    && at.elapsed() < DIRECT_PROBE_REUSE
                {
                    return up;
                }
                let url = &node.pool.manager().url;
                let direct = async {
                    let mut conn = Conn::establish(url).await.ok()?;
                    diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut conn)
                        .await
                        .ok()
                };
                metrics::counter!("db_direct_probes_total").increment(1);
                let up = matches!(tokio::time::timeout(limit, direct).await, Ok(Some(_)));
                *last = Some((std::time::Instant::now(), up));
                up
            }
            Err(_) => false,
        }
    }

    /// The pools' sizes, added up over the nodes.
    pub fn status(&self) -> PoolStatus {
        let mut total = PoolStatus {
            size: 0,
            max: 0,
            idle: 0,
            waiting: 0,
        };
        for node in self.nodes.iter() {
            let status = node.pool.status();
            total.size += status.size;
            total.max += status.max_size;
            total.idle += status.available;
            total.waiting += status.waiting;
        }
        total
    }

    /// Refuses new leases and closes idle connections; leases still out close when dropped.
    pub fn close(&self) {
        for node in self.nodes.iter() {
            node.pool.close();
        }
    }
}

/// A pooled connection leased for one unit of work. Dereferences to the connection.
pub struct Lease {
    object: Option<Object>,
    finished: bool,
    kills: Arc<Kills>,
}

impl Lease {
    /// The unit of work ran to its end: the connection is in step and may serve someone else.
    pub fn finish(mut self) {
        self.finished = true;
    }

    fn pooled(&self) -> &PooledConnection {
        // `object` is only taken in `drop`.
        self.object.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl Deref for Lease {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.pooled().conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self
            .object
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!())
            .conn
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut object) = self.object.take() else {
            return;
        };
        // A finished body whose last statement never reported its end: diesel-async announces a
        // statement before serialising its binds, so one that failed there (nothing sent) looks
        // in flight. The connection is very likely in step; it is discarded anyway, cheaply,
        // and without a KILL (inputs are validated at the edge, so this is rare).
        let reason = if !self.finished {
            "interrupted"
        } else if object.state.broken.load(Ordering::Relaxed) {
            "connection_error"
        } else if object.state.in_flight.load(Ordering::Relaxed) {
            "statement_in_flight"
        } else if <TransactionManagerOf as TransactionManager<Conn>>::is_broken_transaction_manager(
            &mut object.conn,
        ) {
            "transaction_left_open"
        } else {
            return; // back to the pool
        };
        metrics::counter!("db_connections_discarded_total", "reason" => reason).increment(1);
        let statement_running = !self.finished && object.state.in_flight.load(Ordering::Relaxed);
        let pooled = Object::take(object);
        if statement_running {
            kill_query(Arc::clone(&self.kills), &pooled.conn);
        }
        // Dropping a connection that left its pool sends COM_QUIT and closes the socket.
        drop(pooled);
    }
}

/// Asks the server, on a connection of its own, to stop the statement `conn` is running, so an
/// interrupted statement waiting on a row lock does not keep its transaction's locks until the
/// lock-wait timeout. Best effort: skipped when enough kills are already under way.
fn kill_query(kills: Arc<Kills>, conn: &Conn) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let cancel = conn.cancel_token();
    runtime.spawn(async move {
        let Ok(_permit) = kills.permits.try_acquire() else {
            return;
        };
        metrics::counter!("db_statements_killed_total").increment(1);
        let _ = tokio::time::timeout(kills.connect_timeout, cancel.cancel_query()).await;
    });
}

/// A connection plus what the pool knows about it.
pub struct PooledConnection {
    conn: Conn,
    state: Arc<ConnState>,
    /// The pool's error epoch when this connection was last known good.
    verified_epoch: u64,
}

/// Written by the connection's instrumentation, read by the pool.
#[derive(Default)]
struct ConnState {
    /// A statement started and has not finished (its result may still be streaming).
    in_flight: AtomicBool,
    /// The connection reported an I/O-level error: its socket cannot be trusted again.
    broken: AtomicBool,
}

/// Opens and checks connections for deadpool.
pub struct Manager {
    url: String,
    statements: Counter,
    /// Bumped whenever any connection sees an I/O-level error: connections verified before it
    /// are pinged before their next use, as the database may have restarted under all of them.
    epoch: Arc<AtomicU64>,
    connect_timeout: Duration,
    /// A node of a Galera cluster: a new connection must find the node ready (in the primary
    /// component, synced) or the node is passed over.
    cluster: bool,
}

impl deadpool::managed::Manager for Manager {
    type Type = PooledConnection;
    type Error = ConnectionError;

    async fn create(&self) -> Result<PooledConnection, ConnectionError> {
        let mut conn = Conn::establish(&self.url).await.inspect_err(|_| {
            self.epoch.fetch_add(1, Ordering::Relaxed);
        })?;
        conn.batch_execute(SESSION_SETUP)
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        if self.cluster {
            // Causal reads: a statement first waits until this node has applied every write the
            // cluster committed before it began, so a fan whose hold was written on the room's
            // home node finds it when paying through the wallet's.
            conn.batch_execute(CAUSAL_READS)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            // A node cut off from its cluster accepts connections but refuses work (1047).
            let ready: Vec<NodeReady> =
                diesel_async::RunQueryDsl::load(diesel::sql_query(NODE_READY), &mut conn)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            if !ready.iter().any(|r| r.value.eq_ignore_ascii_case("ON")) {
                return Err(ConnectionError::BadConnection(
                    "the Galera node is not ready (wsrep_ready is not ON)".into(),
                ));
            }
        }
        let state = Arc::new(ConnState::default());
        let events = Arc::clone(&state);
        let counter = self.statements.clone();
        let epoch = Arc::clone(&self.epoch);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartQuery { .. } => {
                events.in_flight.store(true, Ordering::Relaxed);
                counter.0.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("db_statements_total").increment(1);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                events.in_flight.store(false, Ordering::Relaxed);
                if let Some(error) = error {
                    let kind = super::error_kind(error);
                    metrics::counter!("db_errors_total", "kind" => kind).increment(1);
                    if is_connection_error(error) {
                        events.broken.store(true, Ordering::Relaxed);
                        epoch.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => {}
        });
        metrics::counter!("db_connections_opened_total").increment(1);
        Ok(PooledConnection {
            conn,
            state,
            verified_epoch: self.epoch.load(Ordering::Relaxed),
        })
    }

    async fn recycle(
        &self,
        obj: &mut PooledConnection,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<ConnectionError> {
        // Leases discard such connections already; this is the second line.
        if obj.state.broken.load(Ordering::Relaxed) || obj.state.in_flight.load(Ordering::Relaxed) {
            return Err(deadpool::managed::RecycleError::message(
                "broken connection",
            ));
        }
        // A connection older than the last I/O-level failure is dropped unchecked: after a
        // restart they are all dead, and pinging each in turn would make one checkout wait a
        // connect timeout per idle connection. Opening a new one costs a millisecond.
        if obj.verified_epoch != self.epoch.load(Ordering::Relaxed) {
            return Err(deadpool::managed::RecycleError::message(
                "connection older than the last connection failure",
            ));
        }
        if metrics.last_used() > VERIFY_AFTER_IDLE {
            let ping =
                diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut obj.conn);
            if !matches!(
                tokio::time::timeout(self.connect_timeout, ping).await,
                Ok(Ok(_))
            ) {
                obj.state.broken.store(true, Ordering::Relaxed);
                self.epoch.fetch_add(1, Ordering::Relaxed);
                return Err(deadpool::managed::RecycleError::message(
                    "connection failed its check",
                ));
            }
        }
        Ok(())
    }
}
