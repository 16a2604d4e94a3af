//! The files under deploy/, checked with what runs on this machine: promtool on the rules, their
//! unit tests and the Prometheus configuration; the dashboard's JSON structure; the compose file
//! and the Kubernetes manifests parsed, cross-checked with each other, and their `MALL__*`
//! settings loaded by the mall's own configuration loader. No container engine runs here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use mall_http::config::Config;
use serde::Deserialize as _;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The repository's deploy/ folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

pub fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(relative: &str) -> Yaml {
    let mut doc: Yaml = serde_yaml::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    doc.apply_merge()
        .unwrap_or_else(|e| panic!("{relative}: merge keys: {e}"));
    doc
}

fn yaml_docs(relative: &str) -> Vec<Yaml> {
    serde_yaml::Deserializer::from_str(&read(relative))
        .map(|d| Yaml::deserialize(d).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}")))
        .filter(|d| !d.is_null())
        .collect()
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("run promtool (Debian package `prometheus`; .ci/run installs it): {e}")
        });
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_the_config() {
    promtool(&["check", "rules", "prometheus/alerts.yml"]);
    promtool(&["test", "rules", "prometheus/alerts.test.yml"]);
    promtool(&["check", "config", "prometheus/prometheus.yml"]);
}

/// Every alert rule: (name, expression).
pub fn alert_exprs() -> Vec<(String, String)> {
    let rules = yaml("prometheus/alerts.yml");
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert rules only").to_owned();
            out.push((name, rule["expr"].as_str().expect("expr").to_owned()));
        }
    }
    out
}

#[test]
fn every_alert_waits_and_has_a_runbook_line() {
    let rules = yaml("prometheus/alerts.yml");
    let mut names = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert");
            assert!(names.insert(name.to_owned()), "{name} twice");
            let wait = rule["for"].as_str().unwrap_or_default();
            assert!(
                wait.ends_with('m') || wait.ends_with('s'),
                "{name} has no `for`"
            );
            let runbook = rule["annotations"]["runbook"].as_str().unwrap_or_default();
            assert!(runbook.len() > 20, "{name} has no runbook line");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
        }
    }
    for wanted in [
        "MallHighErrorRatio",
        "MallHighLatencyP99",
        "MallNotReady",
        "MallMailboxSaturated",
        "MallDeadlinesOverdue",
        "MallDbPoolExhausted",
        "MallNodeDown",
    ] {
        assert!(names.contains(wanted), "no alert {wanted}");
    }
}

/// The dashboard.
pub fn dashboard() -> Json {
    serde_json::from_str(&read("grafana/dashboards/mall.json")).expect("the dashboard is JSON")
}

/// Every query of the dashboard: (panel title, expression).
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard()["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap_or_default().to_owned(),
                target["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert!(d["uid"].is_string() && d["title"].is_string());
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default())
        .collect();
    assert!(vars.contains(&"datasource") && vars.contains(&"instance"));
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in d["panels"].as_array().expect("panels") {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let title = panel["title"].as_str().expect("panel title");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title}: gridPos"
        );
        if panel["type"] == "row" {
            continue;
        }
        titles.insert(title.to_owned());
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert!(t["refId"].is_string(), "{title}: refId");
            assert!(!t["expr"].as_str().unwrap_or_default().is_empty());
        }
    }
    for wanted in [
        "Request rate by route",
        "Error ratio by route (5xx)",
        "Latency p99 by route",
        "Actors live by kind",
        "Mailbox depth by kind",
        "Mailbox wait p99 by kind",
        "Timers armed and fired",
        "Orders by outcome",
        "Payments by outcome",
        "Placement batch size",
        "Database pool use",
        "Rate-limited requests",
        "Database and Redis up",
        "Members up",
    ] {
        assert!(titles.contains(wanted), "no panel {wanted:?}");
    }
}

/// `${NAME:-default}` as compose resolves it with NAME unset.
fn compose_default(value: &str) -> String {
    match value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .and_then(|v| v.split_once(":-"))
    {
        Some((_, default)) => default.to_owned(),
        None => value.to_owned(),
    }
}

fn string_map(value: &Yaml) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = match v {
                Yaml::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().expect("string key").to_owned(), v)
        })
        .collect()
}

/// Loads `env` (only `MALL__*` keys) with the mall's own loader, as `mall serve` would.
fn mall_accepts(env: &BTreeMap<String, String>, what: &str) -> Config {
    let vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("MALL__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(!vars.is_empty(), "{what}: no MALL__ settings");
    // The image ships no config.toml: built-in defaults (an empty file), then the variables.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let cfg = Config::load_from(Some(&empty), vars)
        .unwrap_or_else(|e| panic!("{what}: the mall refuses its settings: {e}"));
    cfg.check_for_serve()
        .unwrap_or_else(|e| panic!("{what}: `mall serve` would refuse: {e}"));
    cfg
}

fn port_of(bind: &str) -> u16 {
    bind.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_compose_file_hangs_together() {
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for wanted in [
        "postgres",
        "redis",
        "etcd",
        "mall-1",
        "mall-2",
        "mall-3",
        "lb",
        "prometheus",
        "grafana",
        "jaeger",
    ] {
        assert!(
            names.contains(wanted),
            "compose.yaml has no service {wanted}"
        );
    }
    let nginx = read("nginx/nginx.conf");
    let prometheus = yaml("prometheus/prometheus.yml");
    let targets: Vec<String> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|j| j["job_name"] == "mall")
        .flat_map(|j| {
            j["static_configs"][0]["targets"]
                .as_sequence()
                .unwrap()
                .clone()
        })
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    for node in ["mall-1", "mall-2", "mall-3"] {
        let service = &compose["services"][node];
        assert_eq!(
            service["build"]["dockerfile"], "deploy/Dockerfile",
            "{node}"
        );
        let env: BTreeMap<String, String> = string_map(&service["environment"])
            .into_iter()
            .map(|(k, v)| (k, compose_default(&v)))
            .collect();
        let cfg = mall_accepts(&env, node);
        let port = port_of(&cfg.server.bind);
        let address = format!("{node}:{port}");
        assert!(
            nginx.contains(&format!("server {address}")),
            "nginx.conf does not balance over {address}"
        );
        assert!(
            targets.contains(&address),
            "Prometheus does not scrape {address}"
        );
        assert_eq!(cfg.cluster.node_id, node);
        assert!(
            cfg.database.url.contains("@postgres:5432/"),
            "{node}: database"
        );
        assert!(
            cfg.redis.url.starts_with("redis://redis:6379"),
            "{node}: redis"
        );
        assert_eq!(
            cfg.cluster.etcd_endpoints,
            ["http://etcd:2379"],
            "{node}: etcd"
        );
        let otlp = &cfg.telemetry.otlp_endpoint;
        assert_eq!(
            otlp, "http://jaeger:4318",
            "{node}: traces go to the jaeger service"
        );
        // Docker waits this long after SIGTERM: longer than the mall's own graceful shutdown.
        let grace: u64 = service["stop_grace_period"]
            .as_str()
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(
            grace > cfg.server.shutdown_timeout_secs,
            "{node}: stop_grace_period"
        );
    }
    let migrate = string_map(&compose["services"]["migrate"]["environment"]);
    mall_accepts(&migrate, "migrate");
    // Every file or folder a service mounts from the repository exists.
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with("./") {
                let path = deploy_dir().join(source);
                assert!(
                    path.exists(),
                    "{name:?} mounts {source}, which does not exist"
                );
            }
        }
    }
    let grafana = yaml("grafana/provisioning/datasources/prometheus.yaml");
    assert_eq!(grafana["datasources"][0]["url"], "http://prometheus:9090");
    assert!(nginx.contains("listen 8080"));
}

#[test]
fn the_dockerfile_builds_small_and_runs_unprivileged() {
    let docker = read("Dockerfile");
    let froms = docker.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage");
    assert!(docker.contains("-slim"), "a small runtime image");
    let user = docker
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(docker.contains("HEALTHCHECK") && docker.contains("/healthz"));
    assert!(docker.contains("EXPOSE 8080") && docker.contains("MALL__SERVER__BIND=0.0.0.0:8080"));
    assert!(docker.contains("ENTRYPOINT [\"/usr/local/bin/mall\"]"));
}

#[test]
fn the_kubernetes_manifests_hang_together() {
    let docs = yaml_docs("kubernetes/mall.yaml");
    let of_kind = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let config_map = string_map(&of_kind("ConfigMap")["data"]);
    let deployment = of_kind("Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    // The environment as the pod sees it: the ConfigMap, then `env` (secrets as placeholders).
    let mut env = config_map.clone();
    for var in container["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match var["value"].as_str() {
            Some(v) => v
                .replace("$(POD_NAME)", "mall-7c9d-abcde")
                .replace("$(POD_IP)", "10.0.0.7"),
            None => {
                let secret = &var["valueFrom"]["secretKeyRef"];
                if secret.is_mapping() {
                    assert_eq!(secret["name"], "mall-secrets");
                    match secret["key"].as_str().unwrap() {
                        "database-url" => "postgres://mall:x@postgres.mall.svc:5432/mall".into(),
                        "jwt-secret" => "a-secret-of-enough-length-0123456789".into(),
                        other => format!("secret-{other}"),
                    }
                } else {
                    continue;
                }
            }
        };
        env.insert(name, value);
    }
    let cfg = mall_accepts(&env, "Deployment");
    let port = port_of(&cfg.server.bind);
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(port))
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace > cfg.server.shutdown_timeout_secs + 5,
        "the kubelet must wait longer than the preStop pause plus server.shutdown_timeout_secs"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    let labels = &pod["metadata"]["labels"];
    let service = of_kind("Service");
    for (k, v) in service["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(
            &labels[k.as_str().unwrap()],
            v,
            "the Service selects the pods"
        );
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let pdb = of_kind("PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        pod["metadata"]["labels"]
    );
    let hpa = of_kind("HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert!(
        hpa["spec"]["minReplicas"].as_u64().unwrap()
            > pdb["spec"]["minAvailable"].as_u64().unwrap(),
        "the disruption budget leaves room to drain a node"
    );
    let secret = yaml_docs("kubernetes/secret.example.yaml");
    let keys: BTreeSet<String> = string_map(&secret[0]["stringData"]).into_keys().collect();
    for var in container["env"].as_sequence().unwrap() {
        if let Some(key) = var["valueFrom"]["secretKeyRef"]["key"].as_str() {
            assert!(keys.contains(key), "the example Secret has no {key}");
        }
    }
}
