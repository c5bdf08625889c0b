//! A database of one's own on a MariaDB server: created with a unique name, migrated, dropped when
//! the value is dropped. Shared by the integration tests (one per test) and the benchmarks (one
//! per run), each including this file (`#[path]`), so both make and clean up databases one way.
//!
//! Names carry the creating process's id: the first creation in a process drops the databases of
//! processes that are gone (a run killed before its drops ran), so leftovers never pile up.

use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use encore::db::{self, Conn};

pub struct FreshDatabase {
    admin_url: String,
    pub name: String,
    /// `admin_url/name`.
    pub url: String,
}

impl FreshDatabase {
    /// Creates and migrates `{prefix}{pid}_{uuid}` on the server at `admin_url` (a URL without a
    /// database).
    pub async fn create_on(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let admin_url = admin_url.trim_end_matches('/').to_owned();
        let name = format!(
            "{prefix}{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let mut admin = Conn::establish(&admin_url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", db::redact(&admin_url)))?;
        sweep_leftovers(&mut admin, prefix).await;
        admin
            .batch_execute(&format!("CREATE DATABASE `{name}`"))
            .await?;
        let url = format!("{admin_url}/{name}");
        db::migrate(&url).await?;
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }
}

/// Once per process: drops the `prefix` databases whose creating process is gone.
async fn sweep_leftovers(admin: &mut Conn, prefix: &str) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let pattern = prefix.replace('_', "\\_");
            let names: Vec<NameRow> = diesel::sql_query(format!(
                "SELECT schema_name AS name FROM information_schema.schemata \
                 WHERE schema_name LIKE '{pattern}%'"
            ))
            .load(admin)
            .await
            .unwrap_or_default();
            for NameRow { name } in names {
                let owner = name
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|pid| pid.parse::<u32>().ok());
                let gone =
                    owner.is_none_or(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
                if gone {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"))
                        .await;
                }
            }
        })
        .await;
}

#[derive(diesel::QueryableByName)]
struct NameRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs in async code; a separate thread with its own runtime may block freely.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = Conn::establish(&admin_url).await?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop database {}", self.name);
        }
    }
}
