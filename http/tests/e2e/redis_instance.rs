//! A private Redis server for one test: `redis-server` on a free port of 127.0.0.1, without
//! persistence, run as a child process that the test can kill, pause and restart on the same
//! port without disturbing any other test. Killed when dropped.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `redis-server` may take to answer `PING` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A port of 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

/// One `redis-server` child process.
pub struct RedisInstance {
    child: Option<Child>,
    port: u16,
    /// The server's working directory (nothing is saved there) and its log.
    dir: TempDir,
}

impl RedisInstance {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub async fn start() -> RedisInstance {
        let mut last_log = String::new();
        // Another process may take the port between choosing and binding it: try a few.
        for _ in 0..5 {
            let mut redis = RedisInstance::stopped(free_port());
            if redis.try_start().await {
                return redis;
            }
            last_log = redis.log();
        }
        panic!("redis-server did not start on any of 5 free ports\n--- log ---\n{last_log}");
    }

    /// Starts a server on `port` (which must be free) and waits until it answers `PING`.
    pub async fn start_on(port: u16) -> RedisInstance {
        let mut redis = RedisInstance::stopped(port);
        redis.restart().await;
        redis
    }

    fn stopped(port: u16) -> RedisInstance {
        RedisInstance {
            child: None,
            port,
            dir: TempDir::new().expect("create a directory for redis-server"),
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// What the server logged so far (every run), for failure messages.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log_path()).unwrap_or_default()).into_owned()
    }

    /// Spawns the server and waits for `PING`; false when it exited or never answered.
    async fn try_start(&mut self) -> bool {
        assert!(self.child.is_none(), "redis-server is already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the redis-server log");
        let log_err = log.try_clone().expect("clone the log file handle");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server (is it installed?): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.ping().await {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("poll redis-server"));
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)); panics with its
    /// log when it does not come up.
    pub async fn restart(&mut self) {
        if !self.try_start().await {
            panic!(
                "redis-server did not start on port {}\n--- log ---\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// Whether `redis-cli -p PORT ping` answers `PONG` (within two seconds).
    pub async fn ping(&self) -> bool {
        let ping = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).trim() == "PONG",
            _ => false,
        }
    }

    /// Runs `redis-cli -p PORT <args>` and returns its standard output.
    pub async fn cli(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run redis-cli {args:?}: {e}"));
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every key in the server (`--scan`, which does not block it).
    pub async fn keys(&self) -> Vec<String> {
        self.cli(&["--scan"])
            .await
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("redis-server is not running")
            .id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server (SIGKILL, like a crash: every key is lost) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisInstance {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill();
    }
}
