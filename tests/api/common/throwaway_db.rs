//! A MariaDB server of a test's own: its own data directory under the system temp dir, its own
//! loopback port, a child process the test may stop and start again. Fault tests use it so an
//! outage they cause never touches the shared test server.
//!
//! Binaries are found the way `scripts/db` finds them (PATH, then /usr/sbin), and the server runs
//! with the same flags, slimmed down for a short life: small buffer pool and redo log, no binlog.
//! Setup output (install log, server error log) is kept in the temp dir and printed only when a
//! step fails. Drop kills the server and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a (re)started server may take to answer a ping.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a server may take to shut down on SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

pub struct ThrowawayMariaDb {
    dir: PathBuf,
    port: u16,
    user: String,
    mariadbd: PathBuf,
    admin: PathBuf,
    child: Option<Child>,
}

impl ThrowawayMariaDb {
    /// Initialises a data directory, starts the server, creates the `encore` user and database
    /// and runs the project's migrations on it.
    pub async fn start() -> Self {
        let mariadbd = find_bin(&["mariadbd", "mysqld"]).expect("mariadbd not found");
        let client = find_bin(&["mariadb", "mysql"]).expect("mariadb client not found");
        let admin = find_bin(&["mariadb-admin", "mysqladmin"]).expect("mariadb-admin not found");
        let install_db = find_bin(&["mariadb-install-db", "mysql_install_db"])
            .expect("mariadb-install-db not found");
        let user = current_user();
        let dir =
            std::env::temp_dir().join(format!("encore-mariadb-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the throwaway database directory");
        let mut db = Self {
            port: free_port(),
            dir,
            user,
            mariadbd,
            admin,
            child: None,
        };

        let install = tokio::process::Command::new(&install_db)
            .arg(format!("--user={}", db.user))
            .arg(format!("--datadir={}", db.datadir().display()))
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run mariadb-install-db");
        if !install.status.success() {
            panic!(
                "mariadb-install-db failed ({}):\n{}\n{}",
                install.status,
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr)
            );
        }

        db.start_again().await;

        // Socket authentication: the OS user running the test is a database superuser (root in CI).
        let setup = tokio::process::Command::new(&client)
            .arg(format!("--socket={}", db.socket().display()))
            .arg(format!("-u{}", db.user))
            .arg("-e")
            .arg(
                "CREATE USER 'encore'@'127.0.0.1' IDENTIFIED BY 'encore'; \
                 GRANT ALL PRIVILEGES ON *.* TO 'encore'@'127.0.0.1'; \
                 CREATE DATABASE encore;",
            )
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the mariadb client");
        if !setup.status.success() {
            panic!(
                "creating the encore user and database failed ({}): {}",
                setup.status,
                String::from_utf8_lossy(&setup.stderr)
            );
        }
        encore::db::migrate(&db.url())
            .await
            .expect("migrate the throwaway database");
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://encore:encore@127.0.0.1:{}/encore", self.port)
    }

    /// SIGTERM (a clean shutdown, as a service manager does it), then waits for the process to
    /// exit; past [`STOP_LIMIT`] it is killed.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        if !matches!(term, Ok(s) if s.success()) {
            let _ = child.kill();
        }
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                _ => {
                    eprintln!("throwaway MariaDB did not stop within {STOP_LIMIT:?}; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    /// Starts the server on the same data directory and port and waits until it answers.
    pub async fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "the throwaway MariaDB is already running"
        );
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_file(self.dir.join("mysqld.pid"));
        let child = Command::new(&self.mariadbd)
            .arg("--no-defaults")
            .arg(format!("--user={}", self.user))
            .arg(format!("--datadir={}", self.datadir().display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", self.log().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-name-resolve")
            .arg("--skip-log-bin")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-log-file-size=16M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .arg("--max-connections=500")
            .arg("--default-time-zone=+00:00")
            .arg("--transaction-isolation=READ-COMMITTED")
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_unicode_ci")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);

        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "mariadbd exited at start ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if self.answers().await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "mariadbd did not answer within {START_LIMIT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn answers(&self) -> bool {
        tokio::process::Command::new(&self.admin)
            .arg(format!("--socket={}", self.socket().display()))
            .arg("-uroot")
            .arg("--connect-timeout=1")
            .arg("ping")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("mysqld.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ThrowawayMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first of `names` on PATH, else in /usr/sbin (where Debian puts mariadbd).
fn find_bin(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    names.iter().find_map(|name| {
        dirs.iter()
            .map(PathBuf::as_path)
            .chain([Path::new("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(out.status.success(), "id -un failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
