//! A fresh PostgreSQL database per test.
//!
//! The server is, in order: `CHANGEWIRE_TEST_PG` (a URL without database,
//! e.g. `postgres://postgres@127.0.0.1:5432`), the local server on
//! 127.0.0.1:5432, or a throwaway cluster started once per test process with
//! Debian's `initdb`/`pg_ctl` (as the `postgres` user when run as root) and
//! stopped when the process exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

static SERVER: OnceLock<String> = OnceLock::new();
static LOGICAL_SERVER: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The base URL of a usable server (no database part).
pub fn server() -> String {
    SERVER.get_or_init(find_or_start).clone()
}

/// The base URL of a server with `wal_level = logical` (logical capture):
/// `CHANGEWIRE_TEST_PG_LOGICAL`, else [`server`] if it has it, else a
/// throwaway cluster started with it once per test process.
pub fn logical_server() -> String {
    LOGICAL_SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("CHANGEWIRE_TEST_PG_LOGICAL") {
                return url.trim_end_matches('/').to_string();
            }
            let main = server();
            let probe = main.clone();
            let logical = std::thread::spawn(move || wal_level(&probe))
                .join()
                .ok()
                .flatten();
            if logical.as_deref() == Some("logical") {
                return main;
            }
            init_and_start(&["-c", "wal_level=logical"])
                .map(|(url, ..)| url)
                .unwrap_or_else(|e| {
                    panic!("a throwaway cluster with wal_level = logical could not start: {e}")
                })
        })
        .clone()
}

fn wal_level(base: &str) -> Option<String> {
    let url = format!("{base}/postgres");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
        sqlx::query_scalar("SELECT current_setting('wal_level')")
            .fetch_one(&mut conn)
            .await
            .ok()
    })
}

fn answers(base: &str) -> bool {
    let url = format!("{base}/postgres");
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    rt.block_on(async {
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(3),
                sqlx::PgConnection::connect(&url)
            )
            .await,
            Ok(Ok(_))
        )
    })
}

fn find_or_start() -> String {
    if let Ok(url) = std::env::var("CHANGEWIRE_TEST_PG") {
        return url.trim_end_matches('/').to_string();
    }
    let local = "postgres://postgres@127.0.0.1:5432".to_string();
    // Run on a separate thread: this may be called inside a tokio runtime.
    let probe = local.clone();
    if std::thread::spawn(move || answers(&probe))
        .join()
        .unwrap_or(false)
    {
        return local;
    }
    start_throwaway_cluster().unwrap_or_else(|e| {
        panic!(
            "no PostgreSQL answers on 127.0.0.1:5432 and a throwaway cluster could not start: {e}"
        )
    })
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates.pop().or_else(|| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("command -v initdb")
            .output()
            .ok()?;
        let path = String::from_utf8(out.stdout).ok()?;
        Path::new(path.trim()).parent().map(Path::to_path_buf)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// A throwaway cluster of its own (for tests that restart PostgreSQL).
#[derive(Debug)]
pub struct Cluster {
    /// Base URL (no database part).
    pub url: String,
    data: PathBuf,
    pg_ctl: PathBuf,
    opts: String,
}

impl Cluster {
    /// Starts a new cluster on a random port.
    pub fn start() -> Result<Cluster, String> {
        Self::start_with(&[])
    }

    /// Starts a new cluster with extra server options (e.g.
    /// `["-c", "wal_level=logical"]`).
    pub fn start_with(options: &[&str]) -> Result<Cluster, String> {
        let (url, data, pg_ctl, opts) = init_and_start(options)?;
        Ok(Cluster {
            url,
            data,
            pg_ctl,
            opts,
        })
    }

    fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.data.to_str().unwrap_or_default().to_string();
        let mut all: Vec<&str> = vec![self.pg_ctl.to_str().unwrap_or("pg_ctl"), "-D", &data];
        all.extend_from_slice(args);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).args(&all);
            c
        } else {
            let mut c = Command::new(all[0]);
            c.args(&all[1..]);
            c
        };
        let status = cmd
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl {args:?}: {status}"))
        }
    }

    /// Stops the server immediately (as a crash would).
    pub fn stop(&self) -> Result<(), String> {
        self.ctl(&["-m", "immediate", "-w", "stop"])
    }

    /// Starts it again.
    pub fn resume(&self) -> Result<(), String> {
        let log = self.data.with_file_name("log2");
        let log = log.to_str().unwrap_or_default().to_string();
        self.ctl(&["-o", &self.opts, "-l", &log, "-w", "start"])
    }
}

fn start_throwaway_cluster() -> Result<String, String> {
    init_and_start(&[]).map(|(url, ..)| url)
}

fn init_and_start(options: &[&str]) -> Result<(String, PathBuf, PathBuf, String), String> {
    let bin = pg_bin_dir().ok_or("initdb not found (install postgresql)")?;
    let dir = std::env::temp_dir().join(format!(
        "changewire-pg-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let as_postgres = |args: &[&str]| -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).args(args);
            c
        } else {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    if is_root() {
        Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap_or_default()])
            .status()
            .map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let initdb = bin.join("initdb");
    let pg_ctl = bin.join("pg_ctl");
    let status = as_postgres(&[
        initdb.to_str().unwrap_or("initdb"),
        "-D",
        data.to_str().unwrap_or(""),
        "-A",
        "trust",
        "-U",
        "postgres",
    ])
    .stdout(std::process::Stdio::null())
    .status()
    .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("initdb failed: {status}"));
    }
    let log = dir.join("log");
    // A port below Linux's ephemeral range (32768 and up), where the
    // tests' own connections and listeners take theirs; another port if
    // this one is taken all the same.
    let mut started = None;
    for _ in 0..5 {
        let port = 20_000 + (rand::random::<u16>() % 12_000);
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            dir.display(),
            options.join(" ")
        );
        let status = as_postgres(&[
            pg_ctl.to_str().unwrap_or("pg_ctl"),
            "-D",
            data.to_str().unwrap_or(""),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap_or(""),
            "-w",
            "start",
        ])
        .status()
        .map_err(|e| e.to_string())?;
        if status.success() {
            started = Some((port, opts));
            break;
        }
    }
    let Some((port, opts)) = started else {
        return Err(format!(
            "pg_ctl start failed 5 times; see {}",
            log.display()
        ));
    };
    // A watchdog stops the cluster when this test process exits.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {prefix}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        prefix = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(format!("({stop}) &"))
        .status()
        .map_err(|e| e.to_string())?;
    Ok((
        format!("postgres://postgres@127.0.0.1:{port}"),
        data,
        pg_ctl,
        opts,
    ))
}

/// A database that is dropped (with its connections) when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// Creates `cw_test_<pid>_<n>_<random>`.
    pub async fn create() -> TestDatabase {
        let server = tokio::task::spawn_blocking(server)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self::create_on(server).await
    }

    /// Creates one on a server with `wal_level = logical` ([`logical_server`]).
    pub async fn create_logical() -> TestDatabase {
        let server = tokio::task::spawn_blocking(logical_server)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self::create_on(server).await
    }

    /// Creates one on the server at `server` (a URL without database).
    pub async fn create_on(server: String) -> TestDatabase {
        let name = format!(
            "cw_test_{}_{}_{:06x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>() & 0xFF_FFFF
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("connecting to {server}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            url: format!("{server}/{name}"),
            name,
            server,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop from a thread of its own: this may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) =
                    sqlx::PgConnection::connect(&format!("{server}/postgres")).await
                {
                    // Replication slots keep a database from being dropped.
                    for _ in 0..50 {
                        let _ = sqlx::query(
                            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                             WHERE database = $1 AND active_pid IS NOT NULL",
                        )
                        .bind(&name)
                        .execute(&mut admin)
                        .await;
                        let dropped = sqlx::query(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                             WHERE database = $1",
                        )
                        .bind(&name)
                        .execute(&mut admin)
                        .await;
                        if dropped.is_ok() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}
