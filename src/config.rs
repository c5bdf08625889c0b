//! Configuration: flags with environment fallbacks (clap). Every value is validated while parsing,
//! so a bad value stops the process at start with a message naming the flag and the variable.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::db::PoolConfig;
pub use crate::domain::rules::Rules;
use crate::domain::rules::positive_duration;

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// MySQL/MariaDB URL, e.g. mysql://user:pass@127.0.0.1:3407/encore
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Every node of a Galera cluster (comma-separated URLs like DATABASE_URL's, which names this
    /// instance's own node): writes that serialise on one row (a room, a wallet) go to that
    /// row's home node, and a node that cannot be reached is passed over. Empty: one server.
    #[arg(
        long,
        env = "DATABASE_NODES",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub database_nodes: Vec<String>,

    /// Connections in the pool of this instance (per node on a cluster).
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub database_pool_size: u16,

    /// Longest wait for a free pooled connection; past it the request gets SERVICE_UNAVAILABLE.
    #[arg(long, env = "DATABASE_POOL_WAIT", default_value = "3s", value_parser = positive_duration)]
    pub database_pool_wait: Duration,

    /// Longest time to open a connection (or check an idle one) before SERVICE_UNAVAILABLE.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT", default_value = "3s", value_parser = positive_duration)]
    pub database_connect_timeout: Duration,
}

impl DatabaseConfig {
    pub fn pool(&self) -> PoolConfig {
        PoolConfig {
            size: self.database_pool_size.into(),
            wait_timeout: self.database_pool_wait,
            connect_timeout: self.database_connect_timeout,
        }
    }
}

/// What one instance lets a connection or request cost in time and sockets.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ServerLimits {
    /// A request still running after this is answered with a TIMEOUT error (HTTP 504); its
    /// transaction rolls back.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub request_timeout: Duration,

    /// A connection that has not sent a request's complete headers within this is closed
    /// (slow clients, idle keep-alive connections).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub header_timeout: Duration,

    /// A websocket that sends no `connection_init` within this is closed with 4408.
    #[arg(long, env = "WS_INIT_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub ws_init_timeout: Duration,

    /// Most open websocket connections on this instance; more are refused with HTTP 503.
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_connections: u32,

    /// Most subscriptions one websocket connection may run at once; one more is refused with an
    /// `error` message (code TOO_MANY_SUBSCRIPTIONS).
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_subscriptions: u32,

    /// Operations one websocket may have refused by the request budget
    /// (RATE_LIMIT_REQUESTS_PER_SEC) within 10 s; one more closes the socket with 4429.
    #[arg(long, env = "WS_MAX_RATE_LIMITED", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_rate_limited: u32,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before the process
    /// exits anyway.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = positive_duration)]
    pub shutdown_grace: Duration,

    /// A header carrying the client's address, written by a proxy in front of this instance
    /// (e.g. `X-Forwarded-For` or `X-Real-IP`). Read only from `TRUSTED_PROXIES`.
    #[arg(long, env = "CLIENT_ADDRESS_HEADER")]
    pub client_address_header: Option<String>,

    /// Addresses of the proxies allowed to set `CLIENT_ADDRESS_HEADER`, comma-separated.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Persisted queries: `apq` (Apollo's automatic persisted queries), `allowlist` (only the
    /// operations in TRUSTED_DOCUMENTS run) or `off`.
    #[arg(long, env = "PERSISTED_QUERIES", value_enum, default_value = "apq")]
    pub persisted_queries: PersistedQueryMode,

    /// With PERSISTED_QUERIES=allowlist: an Apollo persisted-query manifest (JSON) listing the
    /// operations that may run.
    #[arg(long, env = "TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<std::path::PathBuf>,

    /// Queries one instance remembers by hash for automatic persisted queries (least recently
    /// used out).
    #[arg(long, env = "PERSISTED_QUERY_CACHE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub persisted_query_cache: u32,

    /// Where the web assets are: `graphiql/` (GraphiQL's pinned builds, `npm ci` there) and
    /// `app/dist/` (the reference web app, built). Relative to the working directory.
    #[arg(long, env = "WEB_DIR", default_value = "web")]
    pub web_dir: std::path::PathBuf,

    /// Where `/metrics` (Prometheus text) is served: its own listener, apart from the service
    /// port, loopback by default so only the machine (or a scraper an operator points at it)
    /// reads it. `off` serves no metrics. If the address cannot be bound the service still
    /// starts, without metrics, and says so in its log.
    #[arg(long, env = "METRICS_BIND", default_value = "127.0.0.1:9464")]
    pub metrics_bind: MetricsBind,

    /// Production: no GraphiQL page and no introspection (the schema is published as
    /// `schema.graphql` instead). Off for development.
    #[arg(long, env = "PRODUCTION")]
    pub production: bool,

    #[command(flatten)]
    pub query: QueryLimits,
}

/// How persisted queries work on this instance (`PERSISTED_QUERIES`; the GraphQL layer builds
/// its store from it, `graphql::persisted_queries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersistedQueryMode {
    /// Apollo's automatic persisted queries: clients register a query by hash once.
    Apq,
    /// Trusted documents: only the operations in `TRUSTED_DOCUMENTS` run.
    Allowlist,
    /// Queries are only sent in full.
    Off,
}

/// What one GraphQL request may cost, checked before any of it runs. Each refusal has a code:
/// `PAYLOAD_TOO_LARGE` for the body, `GRAPHQL_VALIDATION_FAILED` for the document.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct QueryLimits {
    /// Largest HTTP request body, in bytes (the query and its variables); larger ones are refused
    /// with HTTP 413 before they are read.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_body_bytes: u32,

    /// Deepest nesting of brackets (`{`, `[`, `(`) in a document, outside strings and comments,
    /// measured before the document is parsed (`graphql::document_guard`): deeper documents are
    /// refused with GRAPHQL_VALIDATION_FAILED before any recursive code sees them. Keep it above
    /// QUERY_MAX_DEPTH plus the nesting of argument values.
    #[arg(long, env = "QUERY_MAX_NESTING", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_nesting: u32,

    /// Most tokens in a document (names, punctuation, strings, numbers), counted before it is
    /// parsed; longer ones are refused with GRAPHQL_VALIDATION_FAILED.
    #[arg(long, env = "QUERY_MAX_TOKENS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: u32,

    /// Most fields an operation may select, counted after expanding every fragment spread (the
    /// same fragment spread twice counts twice).
    #[arg(long, env = "QUERY_MAX_FIELDS", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_fields: u32,

    /// Most aliased fields an operation may have, after fragment expansion.
    #[arg(long, env = "QUERY_MAX_ALIASES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..))]
    pub max_aliases: u32,

    /// Deepest nesting of fields. GraphiQL's introspection query needs 13.
    #[arg(long, env = "QUERY_MAX_DEPTH", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_depth: u32,

    /// Highest complexity (one per field, after expansion).
    #[arg(long, env = "QUERY_MAX_COMPLEXITY", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_complexity: u32,

    /// Most directives on one field.
    #[arg(long, env = "QUERY_MAX_DIRECTIVES", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..))]
    pub max_directives: u32,

    /// Most errors one response lists; the rest are summarised in one last error.
    #[arg(long, env = "MAX_ERRORS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_errors: u32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_nesting: 32,
            max_tokens: 10_000,
            max_fields: 2000,
            max_aliases: 100,
            max_depth: 16,
            max_complexity: 500,
            max_directives: 4,
            max_errors: 20,
        }
    }
}

impl Default for ServerLimits {
    /// The same values as the flags' defaults (a unit test keeps the two in step).
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            ws_init_timeout: Duration::from_secs(10),
            ws_max_connections: 20_000,
            ws_max_subscriptions: 20,
            ws_max_rate_limited: 20,
            shutdown_grace: Duration::from_secs(10),
            client_address_header: None,
            trusted_proxies: Vec::new(),
            persisted_queries: PersistedQueryMode::Apq,
            trusted_documents: None,
            persisted_query_cache: 1000,
            web_dir: "web".into(),
            metrics_bind: MetricsBind(Some(SocketAddr::from(([127, 0, 0, 1], 9464)))),
            production: false,
            query: QueryLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// HMAC secret for access tokens, at least 32 bytes.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Secret,

    /// Load demo data when the database has no concerts yet.
    #[arg(long, env = "SEED")]
    pub seed: bool,

    #[command(flatten)]
    pub rules: Rules,

    #[command(flatten)]
    pub limits: ServerLimits,
}

/// `METRICS_BIND`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsBind(pub Option<SocketAddr>);

impl std::str::FromStr for MetricsBind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        s.parse::<SocketAddr>()
            .map(|addr| Self(Some(addr)))
            .map_err(|e| format!("{e}: give host:port, or off"))
    }
}

/// A secret string: parsed with a minimum length and never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 32 {
            return Err("must be at least 32 bytes long".into());
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct RulesOnly {
        #[command(flatten)]
        rules: Rules,
    }

    #[test]
    fn default_rules_match_the_flag_defaults() {
        let parsed = RulesOnly::try_parse_from(["encore"]).expect("defaults parse");
        assert_eq!(parsed.rules, Rules::default());
    }

    #[test]
    fn default_limits_match_the_flag_defaults() {
        #[derive(Parser)]
        struct LimitsOnly {
            #[command(flatten)]
            limits: ServerLimits,
        }
        let parsed = LimitsOnly::try_parse_from(["encore"]).expect("defaults parse");
        assert_eq!(parsed.limits, ServerLimits::default());
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for (flag, value) in [
            ("--hold-ttl", "0s"),
            ("--hold-ttl", "soon"),
            ("--queue-admit-per-sec", "0"),
            ("--max-charge", "-1"),
            ("--max-charge", "1.001"),
        ] {
            let arg = format!("{flag}={value}");
            let err = RulesOnly::try_parse_from(["encore", &arg])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(flag), "{arg} gave {err:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_none_is_printed() {
        assert!("short".parse::<Secret>().is_err());
        let secret: Secret = "x".repeat(32).parse().expect("long enough");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}

#[cfg(test)]
mod readme {
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        config: super::ServeConfig,
    }

    /// (flag, env, default) of every row of the README's configuration table.
    fn readme_rows() -> Vec<(String, String, String)> {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("a Configuration section");
        let table = &section[section.find("| flag |").expect("the table")..];
        table
            .lines()
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cells: Vec<String> = row
                    .split('|')
                    .map(|c| c.trim().trim_matches('`').to_owned())
                    .collect();
                (cells[1].clone(), cells[2].clone(), cells[3].clone())
            })
            .collect()
    }

    #[test]
    fn the_readme_configuration_table_states_the_flags_and_defaults_of_the_code() {
        let command = Serve::command();
        let mut stated = 0;
        for (flag, env, default) in readme_rows() {
            // A row that stands for a family of flags (the rate limits) is checked elsewhere.
            if flag.contains('…') {
                continue;
            }
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().and_then(|e| e.to_str()) == Some(env.as_str()))
                .unwrap_or_else(|| panic!("README row {env}: no such flag"));
            assert_eq!(
                format!("--{}", arg.get_long().unwrap_or_default()),
                flag,
                "README row {env}"
            );
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !arg.get_action().takes_values() {
                // A switch: off unless given.
                assert_eq!(default, "off", "README row {env}");
                stated += 1;
                continue;
            }
            match defaults.as_slice() {
                // Computed from the machine (hashing threads): stated in words.
                [_] if default.contains("cores") => {}
                [value] => assert_eq!(&default, value, "README row {env}"),
                // No default in the code: the README says what happens without one.
                _ => assert!(
                    default.starts_with('(') || default.contains("cores"),
                    "README row {env} states default {default:?}, the code has none"
                ),
            }
            stated += 1;
        }
        // And every flag with an environment variable has its row (or its family's).
        let rows: Vec<String> = readme_rows().into_iter().map(|r| r.1).collect();
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            let family = env.starts_with("RATE_LIMIT_") || env.starts_with("SIGN_IN_LOCKOUT_");
            assert!(
                family || rows.iter().any(|r| r == env),
                "{env} has no row in the README's configuration table"
            );
        }
        assert!(stated > 40, "only {stated} rows read");
    }

    #[test]
    fn the_readme_rate_limit_table_states_the_quotas_of_the_code() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Hostile clients")
            .nth(1)
            .expect("a Hostile clients section");
        let table = &section[section
            .find("| what | per | default | flag |")
            .expect("the table")..];
        let command = Serve::command();
        let default_of = |env: &str| -> String {
            command
                .get_arguments()
                .find(|a| a.get_env().and_then(|e| e.to_str()) == Some(env))
                .and_then(|a| a.get_default_values().first())
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_else(|| panic!("{env}: no such flag with a default"))
        };
        let mut rows = 0;
        for row in table.lines().take_while(|l| l.starts_with('|')).skip(2) {
            let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
            let (stated, env) = (cells[3], cells[4]);
            let count = stated.split('/').next().unwrap_or_default();
            assert_eq!(
                count,
                default_of(env),
                "README rate-limit row {env}: {stated}"
            );
            rows += 1;
        }
        assert!(rows >= 6, "only {rows} rows read");
        for env in ["SIGN_IN_LOCKOUT_AFTER", "SIGN_IN_LOCKOUT_MAX"] {
            let stated = format!("`{env}` ({})", default_of(env));
            assert!(section.contains(&stated), "README does not state {stated}");
        }
    }
}
