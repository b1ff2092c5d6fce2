//! The Prometheus history provider against a real Prometheus (Debian's, fetched by
//! `scripts/build-tools`), with nine days of one-minute cAdvisor-style data loaded through
//! `promtool tsdb create-blocks-from openmetrics`: the unsplit upstream query is refused for
//! exceeding 11,000 points per series, ours is split and loads every sample; and
//! `vpa-recommender replay --prometheus` recommends exactly what a replay of the same usage
//! written directly as a CSV trace recommends. Then the in-cluster path: a recommender with
//! `--storage=prometheus` and no working Metrics API gives a VPA without checkpoints its
//! recommendation from the history alone.

#![allow(clippy::unwrap_used)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vpa_core::model::{ObjectId, ResourceKind};
use vpa_core::time::Timestamp;
use vpa_e2e::recommender::{free_port, workspace_binary};
use vpa_e2e::tool;
use vpa_recommender::history::{PrometheusFlags, PrometheusHistoryProvider, to_trace_csv};

/// The data set: `minutes` one-minute points ending at `end` (a minute boundary), in `ns`.
#[derive(Clone)]
struct Data {
    ns: String,
    end: i64,
    minutes: i64,
}

const PODS: [&str; 2] = ["web-7d9f8b6c5d-abcde", "web-7d9f8b6c5d-fghij"];

/// CPU usage in millicores during the minute that ends at minute `i`, memory at minute `i`.
fn cpu_millis(pod: usize, i: i64) -> i64 {
    let x = (i * 7919 + pod as i64 * 104_729) % 1000;
    100 + x / 2 + if (i / 60) % 24 < 8 { 0 } else { 300 }
}
fn memory_bytes(pod: usize, i: i64) -> i64 {
    let x = (i * 6151 + pod as i64 * 3571) % 4096;
    (200 << 20) + x * 4096 + if (i / 60) % 24 == 12 { 64 << 20 } else { 0 }
}
impl Data {
    fn minute(&self, i: i64) -> i64 {
        self.end - (self.minutes - 1 - i) * 60
    }
}

/// The OpenMetrics text: a CPU counter and a memory gauge per pod (plus a POD sandbox
/// series the queries must skip), and `up` with the pod labels.
fn openmetrics(d: &Data) -> String {
    let ns = &d.ns;
    let mut s = String::with_capacity(64 << 20);
    s.push_str("# TYPE container_cpu_usage_seconds_total counter\n");
    for (p, pod) in PODS.iter().enumerate() {
        let mut total = 0.0f64;
        for i in 0..d.minutes {
            if i > 0 {
                total += cpu_millis(p, i) as f64 * 60.0 / 1000.0;
            }
            let _ = writeln!(
                s,
                "container_cpu_usage_seconds_total{{job=\"kubernetes-cadvisor\",namespace=\"{ns}\",pod_name=\"{pod}\",name=\"app\"}} {total} {}",
                d.minute(i)
            );
        }
        for i in 0..d.minutes {
            let _ = writeln!(
                s,
                "container_cpu_usage_seconds_total{{job=\"kubernetes-cadvisor\",namespace=\"{ns}\",pod_name=\"{pod}\",name=\"POD\"}} {} {}",
                i as f64,
                d.minute(i)
            );
        }
    }
    s.push_str("# TYPE container_memory_working_set_bytes gauge\n");
    for (p, pod) in PODS.iter().enumerate() {
        for i in 0..d.minutes {
            let _ = writeln!(
                s,
                "container_memory_working_set_bytes{{job=\"kubernetes-cadvisor\",namespace=\"{ns}\",pod_name=\"{pod}\",name=\"app\"}} {} {}",
                memory_bytes(p, i),
                d.minute(i)
            );
        }
    }
    s.push_str("# TYPE up gauge\n");
    for pod in PODS {
        for i in (d.minutes - 30)..d.minutes {
            let _ = writeln!(
                s,
                "up{{job=\"kubernetes-pods\",kubernetes_namespace=\"{ns}\",kubernetes_pod_name=\"{pod}\",pod_label_app=\"web\"}} 1 {}",
                d.minute(i)
            );
        }
    }
    s.push_str("# EOF\n");
    s
}

/// The same usage as the trace the replay should see: one CPU and one memory sample per
/// minute of the nine days, both ends included (Prometheus evaluates at END - 9d too).
fn expected_trace(d: &Data) -> String {
    let ns = &d.ns;
    let mut s = String::from(vpa_recommender::trace::HEADER);
    s.push('\n');
    for i in 9..d.minutes {
        for (p, pod) in PODS.iter().enumerate() {
            let t = Timestamp::from_unix_seconds(d.minute(i)).to_rfc3339();
            let _ = writeln!(s, "{t},{ns},web,{pod},app,{}m,,", cpu_millis(p, i));
            let _ = writeln!(s, "{t},{ns},web,{pod},app,,{},", memory_bytes(p, i));
        }
    }
    s
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((code, body))
}

fn start_prometheus(dir: &Path, d: &Data) -> Result<Prometheus> {
    let data = dir.join("data");
    std::fs::write(dir.join("usage.om"), openmetrics(d))?;
    let started = Instant::now();
    let out = Command::new(tool("promtool")?)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(dir.join("usage.om"))
        .arg(&data)
        .output()?;
    if !out.status.success() {
        bail!(
            "promtool create-blocks-from failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("promtool: blocks created in {:?}", started.elapsed());
    std::fs::write(dir.join("prometheus.yml"), "global: {}\n")?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    let child = Command::new(tool("prometheus")?)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let p = Prometheus { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(port, "/-/ready") {
            return Ok(p);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
            bail!("Prometheus did not get ready in 60 s; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    flags: PrometheusFlags,
}

#[test]
fn history_from_a_real_prometheus_is_split_complete_and_replays_like_the_trace() -> Result<()> {
    vpa_e2e::install_crypto();
    let dir = tempfile::tempdir()?;
    // Nine days and ten minutes ending at a fixed minute (2026-11-18T11:07:00Z).
    let d = Data {
        ns: "shop".into(),
        end: 1_795_000_020,
        minutes: 9 * 1440 + 10,
    };
    const END: i64 = 1_795_000_020;
    let prom = start_prometheus(dir.path(), &d)?;
    let address = format!("http://127.0.0.1:{}", prom.port);

    // Upstream's single query over nine days at one minute: refused by Prometheus.
    let q = "rate(container_cpu_usage_seconds_total{job=\"kubernetes-cadvisor\", pod_name=~\".+\", name!=\"POD\", name!=\"\"}[60s])";
    let enc: String = form_urlencoded_query(&[
        ("query", q),
        ("start", &(END - 9 * 86_400).to_string()),
        ("end", &END.to_string()),
        ("step", "60s"),
    ]);
    let (code, body) = http_get(prom.port, &format!("/api/v1/query_range?{enc}"))?;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("11,000"), "{body}");

    // Ours: two windows per query, every point loaded.
    let flags = Flags::try_parse_from([
        "x",
        &format!("--prometheus-address={address}"),
        "--history-length=9d",
        "--history-resolution=1m",
    ])?
    .flags;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _guard = runtime.enter();
    let provider = PrometheusHistoryProvider::new(&flags, "")?;
    let now = Timestamp::from_unix_seconds(END);
    assert_eq!(provider.queries().windows(now).len(), 2);
    let started = Instant::now();
    let history = runtime.block_on(provider.load(now))?;
    eprintln!("history loaded in {:?}", started.elapsed());
    assert_eq!(history.len(), 2);
    for (p, pod) in PODS.iter().enumerate() {
        let h = &history[&ObjectId::new("shop", pod)];
        assert_eq!(h.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            h.containers.keys().collect::<Vec<_>>(),
            ["app"],
            "POD is skipped"
        );
        let samples = &h.containers["app"];
        let cpu: Vec<_> = samples
            .iter()
            .filter(|s| s.resource == ResourceKind::Cpu)
            .collect();
        let mem: Vec<_> = samples
            .iter()
            .filter(|s| s.resource == ResourceKind::Memory)
            .collect();
        assert_eq!(cpu.len(), 9 * 1440 + 1, "{pod}: CPU points");
        assert_eq!(mem.len(), 9 * 1440 + 1, "{pod}: memory points");
        for s in cpu.iter().step_by(97) {
            let i = (s.measure_start.unix_seconds() - d.minute(0)) / 60;
            assert_eq!(s.usage, cpu_millis(p, i), "{pod} CPU at minute {i}");
        }
        for s in mem.iter().step_by(89) {
            let i = (s.measure_start.unix_seconds() - d.minute(0)) / 60;
            assert_eq!(s.usage, memory_bytes(p, i), "{pod} memory at minute {i}");
        }
    }
    assert!(to_trace_csv(&history).lines().count() > 4 * 9 * 1440);

    // A namespace filter that matches nothing gives nothing.
    let other = PrometheusHistoryProvider::new(&flags, "elsewhere")?;
    assert!(runtime.block_on(other.load(now))?.is_empty());

    // The binary: replay --prometheus equals the replay of the usage written as a trace.
    let bin = workspace_binary("vpa-recommender")?;
    let saved = dir.path().join("saved.csv");
    let from_prometheus = Command::new(&bin)
        .args([
            "replay",
            "--prometheus",
            &address,
            "--now",
            &now.to_rfc3339(),
        ])
        .args([
            "--history-length=9d",
            "--history-resolution=1m",
            "--output=json",
        ])
        .arg(format!("--save-trace={}", saved.display()))
        .output()?;
    assert!(
        from_prometheus.status.success(),
        "{}",
        String::from_utf8_lossy(&from_prometheus.stderr)
    );
    let trace = dir.path().join("expected.csv");
    std::fs::write(&trace, expected_trace(&d))?;
    let from_trace = Command::new(&bin)
        .args(["replay", "--output=json", "--trace"])
        .arg(&trace)
        .output()?;
    assert!(
        from_trace.status.success(),
        "{}",
        String::from_utf8_lossy(&from_trace.stderr)
    );
    let a: serde_json::Value = serde_json::from_slice(&from_prometheus.stdout)?;
    let b: serde_json::Value = serde_json::from_slice(&from_trace.stdout)?;
    assert_eq!(a, b);
    assert!(a.to_string().contains("\"web\""), "{a}");
    assert!(saved.is_file());

    // Prometheus gone: a clear error naming the address.
    drop(prom);
    let err = runtime
        .block_on(provider.load(now))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&address), "{err}");
    Ok(())
}

fn form_urlencoded_query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `--storage=prometheus` in the cluster: the VPA has no checkpoint and the Metrics API is
/// unreachable, so its recommendation can only come from the history loaded at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_prometheus_recommends_from_history_without_live_metrics() -> Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, PostParams};
    use vpa_core::api::vpa::VerticalPodAutoscaler;
    use vpa_e2e::recommender::{RecommenderProcess, condition, deployment, target, vpa};

    let Some(client) = vpa_e2e::cluster("storage_prometheus").await? else {
        return Ok(());
    };
    let ns = vpa_e2e::TestNamespace::create(&client, "prom-history").await?;
    let dir = tempfile::tempdir()?;
    let wall = chrono::Utc::now().timestamp();
    let d = Data {
        ns: ns.name().to_string(),
        end: wall - wall % 60,
        minutes: 1440 + 10,
    };
    let prom = {
        let (dir, d) = (dir.path().to_path_buf(), d.clone());
        tokio::task::spawn_blocking(move || start_prometheus(&dir, &d)).await??
    };
    Api::<Deployment>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &deployment("web", 1)?)
        .await?;
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    vpas.create(&PostParams::default(), &vpa("web", "Deployment", "web")?)
        .await?;
    let nothing_listens = free_port()?;
    let mut rec = RecommenderProcess::start(
        dir.path(),
        "prometheus",
        None,
        &[
            format!("--vpa-object-namespace={}", ns.name()),
            format!("--metrics-url=http://127.0.0.1:{nothing_listens}"),
            "--storage=prometheus".into(),
            format!("--prometheus-address=http://127.0.0.1:{}", prom.port),
            "--history-length=1d".into(),
            "--history-resolution=1m".into(),
        ],
    )?;
    let got = vpa_e2e::wait_for(
        "a recommendation from history",
        Duration::from_secs(90),
        async || {
            let v = vpas.get("web").await?;
            Ok(target(&v).map(|t| (t, v)))
        },
    )
    .await;
    let ((cpu, memory), v) = match got {
        Ok(x) => x,
        Err(e) => bail!("{e}\n{}", rec.describe()),
    };
    // Usage in the history is 100m to 900m and 200 to 264 MiB; the Deployment requests
    // 100m/100Mi and there are no live metrics, so a target above both comes from history.
    let cpu_m = vpa_core::quantity::parse(&cpu)?.milli_value();
    let mem = vpa_core::quantity::parse(&memory)?.value();
    assert!(
        cpu_m > 500 && cpu_m < 2000,
        "cpu target {cpu}; log:\n{}",
        rec.logs()
    );
    assert!(mem > 200 << 20 && mem < 600 << 20, "memory target {memory}");
    assert_eq!(
        condition(&v, "RecommendationProvided").map(|c| c.status.as_str()),
        Some("True")
    );
    let logs = rec.logs();
    assert!(logs.contains("history loaded from Prometheus"), "{logs}");
    drop(rec);
    ns.delete(&client).await
}
