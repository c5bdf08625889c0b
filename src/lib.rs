//! Encore: a concert-ticketing backend. Fans wait in a fair virtual queue, see dates and seats,
//! hold a seat for a few minutes, top up a prepaid wallet and pay, over GraphQL on MariaDB.
//!
//! Layers, arrows pointing down only:
//! - [`transport`]: the axum router (HTTP, GraphiQL, health, metrics);
//! - [`graphql`]: schema, resolvers, the error edge;
//! - [`domain`]: the rules and use cases, plus the background tasks that serve them;
//! - [`db`]: diesel-async on MariaDB: schema, rows, typed ids and states, one storage module per
//!   table, the pool and its cancellation rule, retrying transactions, migrations;
//! - beside them, [`background`]: the loops an instance runs, and their owner.

pub mod background;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod graphql;
pub mod startup;
pub mod telemetry;
pub mod transport;
