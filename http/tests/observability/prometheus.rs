//! The mall seen by Prometheus: every metric the dashboard and the alert rules query exists in
//! a real mall's `/metrics`, and a real Prometheus (started here on a free port, in a temporary
//! directory) scrapes a real mall and evaluates the shipped alert rules on what it scraped.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy_files::{alert_exprs, dashboard_exprs, deploy_dir};
use crate::harness::{App, Backend};
use crate::promql::metric_names;
use crate::shop;

/// Series Prometheus makes itself, not the mall.
const SYNTHETIC: &[&str] = &["up"];

/// How long Prometheus may take to start, scrape and evaluate.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

/// The series names in a text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queried_metric_exists() {
    let app = App::start(Backend::Sqlite).await;
    // Traffic that touches every kind of actor, the placement desk and the payment gateway.
    let token = shop::ready_to_check_out(&app).await;
    shop::checkout(&app, &token, &[]).await.expect(201);
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let text = resp.text;
    let exposed = exposed(&text);
    let mut queried: Vec<(String, String)> = Vec::new();
    for (what, expr) in alert_exprs()
        .into_iter()
        .map(|(n, e)| (format!("alert {n}"), e))
        .chain(
            dashboard_exprs()
                .into_iter()
                .map(|(t, e)| (format!("panel {t:?}"), e)),
        )
    {
        for name in metric_names(&expr) {
            queried.push((what.clone(), name));
        }
    }
    assert!(queried.len() > 20, "too few names found: {queried:?}");
    let missing: Vec<&(String, String)> = queried
        .iter()
        .filter(|(_, name)| !SYNTHETIC.contains(&name.as_str()) && !exposed.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not in /metrics: {missing:?}\n/metrics:\n{text}"
    );
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A Prometheus process, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second, with the shipped alert rules.
    fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(
            deploy_dir().join("prometheus/alerts.yml"),
            dir.path().join("alerts.yml"),
        )
        .expect("copy the rules");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\n\
             scrape_configs:\n  - job_name: mall\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write the config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run prometheus (Debian package `prometheus`; .ci/run installs it)");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Polls `path` until `done` accepts the JSON answer's `data`, or panics at the deadline.
    async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + PROMETHEUS_WAIT;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(resp) = http.get(format!("{}{path}", self.base)).send().await
                && let Ok(body) = resp.json::<Value>().await
            {
                if done(&body["data"]) {
                    return body["data"].clone();
                }
                last = body;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "Prometheus {path}: not there in {PROMETHEUS_WAIT:?}; last answer {last}\n{}",
            self.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_mall_and_evaluates_the_rules() {
    let app = App::start(Backend::Sqlite).await;
    // A second target where nothing listens: a node that is gone.
    let gone = format!("127.0.0.1:{}", free_port());
    let prometheus = Prometheus::start(&[app.addr.clone(), gone.clone()]);

    // The mall's own series arrive, scraped from its /metrics.
    let query = "/api/v1/query?query=dependency_up%7Bdependency%3D%22database%22%7D";
    let data = prometheus
        .wait_for(query, |d| {
            d["result"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    assert_eq!(data["result"][0]["metric"]["instance"], app.addr.as_str());
    assert_eq!(data["result"][0]["value"][1], "1", "the database is up");

    // MallNodeDown, evaluated on the scrapes: pending (its `for` is a minute) for the gone node.
    let alerts = prometheus
        .wait_for("/api/v1/alerts", |d| {
            d["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["labels"]["instance"] == gone.as_str()))
        })
        .await;
    let gone_alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "MallNodeDown" && a["labels"]["instance"] == gone.as_str()
        })
        .unwrap_or_else(|| panic!("MallNodeDown is not pending for {gone}: {alerts}"));
    assert_eq!(gone_alert["state"], "pending", "{gone_alert}");
    assert_eq!(gone_alert["labels"]["severity"], "page");
    // Every shipped rule was evaluated without error on the real series.
    let rules = prometheus
        .wait_for("/api/v1/rules", |d| {
            d["groups"][0]["rules"].as_array().is_some_and(|r| {
                r.iter().all(|x| {
                    x["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
                })
            })
        })
        .await;
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
}
