//! A private etcd for one test: Debian's `etcd` on two free ports of 127.0.0.1 (client and
//! peer) with its data in a temporary directory, run as a child process the test can kill and
//! restart on the same ports, with its data or without. Killed when dropped.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};
use serde_json::Value;
use tempfile::TempDir;

use crate::redis_instance::free_port;

/// How long etcd may take to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One key as stored: its value (JSON when it parses, else a string) and its lease.
#[derive(Clone, Debug)]
pub struct Stored {
    pub value: Value,
    pub lease: i64,
}

/// One `etcd` child process.
pub struct EtcdInstance {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    /// Holds `data/` and `etcd.log`.
    dir: TempDir,
}

impl EtcdInstance {
    /// Starts etcd on free ports and waits until it answers.
    pub async fn start() -> EtcdInstance {
        let mut last_log = String::new();
        // Another process may take a port between choosing and binding it: try a few.
        for _ in 0..5 {
            let mut etcd = EtcdInstance {
                child: None,
                client_port: free_port(),
                peer_port: free_port(),
                dir: TempDir::new().expect("create a directory for etcd"),
            };
            if etcd.try_start().await {
                return etcd;
            }
            last_log = etcd.log();
        }
        panic!("etcd did not start on any of 5 pairs of free ports\n--- log ---\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`, the client endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// What etcd logged so far (every run), for failure messages.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log_path()).unwrap_or_default()).into_owned()
    }

    async fn try_start(&mut self) -> bool {
        assert!(self.child.is_none(), "etcd is already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the etcd log");
        let log_err = log.try_clone().expect("clone the log file handle");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "t"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn etcd (is etcd-server installed?): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.answers().await {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("poll etcd"));
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether etcd answers a read within a second.
    async fn answers(&self) -> bool {
        let read = async {
            let mut c = self.client().await.ok()?;
            c.get("/", None).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), read).await,
            Ok(Some(_))
        )
    }

    async fn client(&self) -> Result<Client, etcd_client::Error> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2));
        Client::connect([self.endpoint()], Some(options)).await
    }

    /// Starts etcd again on the same ports with the data it had (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        if !self.try_start().await {
            panic!(
                "etcd did not restart on port {}\n--- log ---\n{}",
                self.client_port,
                self.log()
            );
        }
    }

    /// Starts etcd again on the same ports with no data at all: every lease and key is gone,
    /// as if the cluster had been rebuilt.
    pub async fn restart_empty(&mut self) {
        let _ = fs::remove_dir_all(self.dir.path().join("data"));
        self.restart().await;
    }

    /// Kills etcd (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every key under `prefix`, with its value and lease.
    pub async fn keys(&self, prefix: &str) -> BTreeMap<String, Stored> {
        let mut c = self
            .client()
            .await
            .unwrap_or_else(|e| panic!("connect to etcd: {e}"));
        let resp = c
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .unwrap_or_else(|e| panic!("etcd get {prefix}: {e}"));
        resp.kvs()
            .iter()
            .map(|kv| {
                let key = kv.key_str().expect("a UTF-8 key").to_owned();
                let value = serde_json::from_slice(kv.value())
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(kv.value()).into()));
                (
                    key,
                    Stored {
                        value,
                        lease: kv.lease(),
                    },
                )
            })
            .collect()
    }
}

impl Drop for EtcdInstance {
    fn drop(&mut self) {
        self.kill();
    }
}
