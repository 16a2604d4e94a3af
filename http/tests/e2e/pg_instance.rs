//! A private PostgreSQL server for one test, made with the machine's PostgreSQL binaries, so that
//! the test can stop, crash and restart its database without disturbing any other test.
//!
//! `initdb` and `postgres` refuse to run as root: when the tests run as root, the data directory
//! belongs to the `postgres` account and the binaries run through `runuser -u postgres --`.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The account the server runs as when the tests run as root.
const PG_ACCOUNT: &str = "postgres";

/// One PostgreSQL server with a `mall` database, listening on 127.0.0.1 on a port of its own;
/// stopped (immediately) and deleted when dropped.
pub struct PgInstance {
    bindir: PathBuf,
    /// Holds `data/` (the cluster) and `run/` (the socket and the server log).
    root: TempDir,
    port: u16,
    as_account: bool,
    running: bool,
}

/// How `pg_ctl stop` ends the server.
#[derive(Clone, Copy, Debug)]
pub enum StopMode {
    /// Disconnects every client and shuts down cleanly (`-m fast`).
    Fast,
    /// Kills the server processes without a clean shutdown, like a crash (`-m immediate`).
    Immediate,
}

impl StopMode {
    fn flag(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Where the PostgreSQL server binaries are: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let major: u32 = name.split('.').next()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((major, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL server binaries: neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin has initdb")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl PgInstance {
    /// Makes a new cluster in a temporary directory, starts it and creates the `mall` database.
    /// Blocks (runs `initdb`, `pg_ctl`, `psql`); call it through [`PgInstance::create`] from
    /// async code.
    pub fn create_blocking() -> PgInstance {
        let bindir = pg_bindir();
        let as_account = running_as_root();
        let root = tempfile::Builder::new()
            .prefix("mall-pg-")
            .tempdir_in("/tmp")
            .expect("create a directory for PostgreSQL");
        // The server's account must be able to reach data/ and run/ through it.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod the PostgreSQL directory");
        let mut pg = PgInstance {
            bindir,
            root,
            port: free_port(),
            as_account,
            running: false,
        };
        for dir in [pg.data_dir(), pg.run_dir()] {
            fs::create_dir(&dir).expect("create a PostgreSQL directory");
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .expect("chmod a PostgreSQL directory");
            if pg.as_account {
                pg.run(
                    Command::new("chown")
                        .arg(format!("{PG_ACCOUNT}:{PG_ACCOUNT}"))
                        .arg(&dir),
                    "chown",
                );
            }
        }
        let mut initdb = pg.pg_command("initdb");
        initdb.arg("-D").arg(pg.data_dir()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        pg.run(&mut initdb, "initdb");
        // Another process may have taken the port between choosing and starting: try a few.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match pg.try_start() {
                Ok(()) => break,
                Err(why) if attempts < 3 => {
                    eprintln!("PostgreSQL did not start on port {}: {why}", pg.port);
                    pg.port = free_port();
                }
                Err(why) => panic!("PostgreSQL did not start: {why}"),
            }
        }
        pg.psql("CREATE DATABASE mall");
        pg
    }

    /// [`PgInstance::create_blocking`] off the async worker threads.
    pub async fn create() -> PgInstance {
        tokio::task::spawn_blocking(PgInstance::create_blocking)
            .await
            .expect("create a PostgreSQL instance")
    }

    /// The URL of the `mall` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/mall", self.port)
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.run_dir().join("postgres.log")
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        // Readable by root; as another user it belongs to that user anyway.
        String::from_utf8_lossy(&fs::read(self.log_file()).unwrap_or_default()).into_owned()
    }

    /// A command running the PostgreSQL binary `program`, as the server's account when needed.
    fn pg_command(&self, program: &str) -> Command {
        let bin = self.bindir.join(program);
        let mut cmd = if self.as_account {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_ACCOUNT, "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        // The account may not be able to enter the test's working directory.
        cmd.current_dir(self.root.path()).env("LC_ALL", "C");
        cmd
    }

    /// Runs a command to completion; its output, for the message, when it fails.
    fn try_run(&self, cmd: &mut Command) -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ))
        }
    }

    #[track_caller]
    fn run(&self, cmd: &mut Command, what: &str) {
        if let Err(why) = self.try_run(cmd) {
            panic!("{what}: {why}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60",
            self.port,
            self.run_dir().display()
        );
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &options, "-w", "-t", "60", "start"]);
        self.try_run(&mut cmd)?;
        self.running = true;
        Ok(())
    }

    /// Starts the stopped server again, on the same port. Blocks.
    pub fn start_blocking(&mut self) {
        assert!(!self.running, "PostgreSQL is already running");
        if let Err(why) = self.try_start() {
            panic!("restart PostgreSQL: {why}");
        }
    }

    /// Stops the server. Blocks.
    pub fn stop_blocking(&mut self, mode: StopMode) {
        assert!(self.running, "PostgreSQL is not running");
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode.flag(), "-w", "-t", "60", "stop"]);
        self.run(&mut cmd, "pg_ctl stop");
        self.running = false;
    }

    /// [`PgInstance::start_blocking`] without blocking an async worker thread.
    pub async fn start(&mut self) {
        tokio::task::block_in_place(|| self.start_blocking());
    }

    /// [`PgInstance::stop_blocking`] without blocking an async worker thread.
    pub async fn stop(&mut self, mode: StopMode) {
        tokio::task::block_in_place(|| self.stop_blocking(mode));
    }

    /// Runs one SQL command on the `postgres` database.
    fn psql(&self, sql: &str) {
        let psql: &Path = &self.bindir.join("psql");
        let mut cmd = Command::new(if psql.is_file() {
            psql
        } else {
            Path::new("psql")
        });
        cmd.current_dir(self.root.path())
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", sql]);
        self.run(&mut cmd, "psql");
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if self.running {
            let mut cmd = self.pg_command("pg_ctl");
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            if let Err(why) = self.try_run(&mut cmd) {
                eprintln!("stopping the test's PostgreSQL failed: {why}");
            }
            self.running = false;
        }
    }
}
