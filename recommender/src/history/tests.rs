#![allow(clippy::unwrap_used)]
use super::*;
use clap::Parser;
use proptest::prelude::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    flags: PrometheusFlags,
}

fn flags(args: &[&str]) -> PrometheusFlags {
    let mut v = vec!["x"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).unwrap().flags
}

fn queries(args: &[&str], ns: &str) -> HistoryQueries {
    HistoryQueries::from_flags(&flags(args), ns).unwrap()
}

#[test]
fn prometheus_durations() {
    let d = |s| parse_prometheus_duration(s).unwrap().as_nanos() / 1_000_000_000;
    assert_eq!(d("8d"), 8 * 86_400);
    assert_eq!(d("1h30m"), 5_400);
    assert_eq!(d("90s"), 90);
    assert_eq!(d("1w"), 7 * 86_400);
    assert_eq!(d("1y"), 365 * 86_400);
    assert_eq!(
        parse_prometheus_duration("500ms").unwrap().as_nanos(),
        500_000_000
    );
    for bad in [
        "",
        "8",
        "h",
        "1x",
        "-1h",
        "0s",
        "1.5h",
        "99999999999999999999d",
    ] {
        assert!(parse_prometheus_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn default_queries_are_upstreams() {
    let q = queries(&[], "");
    assert_eq!(
        q.cpu_query(),
        r#"rate(container_cpu_usage_seconds_total{job="kubernetes-cadvisor", pod_name=~".+", name!="POD", name!=""}[3600s])"#
    );
    assert_eq!(
        q.memory_query(),
        r#"container_memory_working_set_bytes{job="kubernetes-cadvisor", pod_name=~".+", name!="POD", name!=""}"#
    );
    assert_eq!(q.length, Duration::from_hours(8 * 24));
    assert_eq!(q.pod_labels_metric, r#"up{job="kubernetes-pods"}"#);
}

#[test]
fn queries_follow_the_label_flags_and_the_namespace() {
    let q = queries(
        &[
            "--prometheus-cadvisor-job-name=",
            "--container-pod-name-label=pod",
            "--container-name-label=container",
            "--history-resolution=1m",
        ],
        "team-a",
    );
    assert_eq!(
        q.cpu_query(),
        r#"rate(container_cpu_usage_seconds_total{pod=~".+", container!="POD", container!="", namespace="team-a"}[60s])"#
    );
}

#[test]
fn bad_flags_name_the_flag() {
    let e = HistoryQueries::from_flags(&flags(&["--history-length=8days"]), "").unwrap_err();
    assert!(e.to_string().contains("--history-length"), "{e}");
    let e = HistoryQueries::from_flags(&flags(&["--history-resolution=100ms"]), "").unwrap_err();
    assert!(e.to_string().contains("at least 1s"), "{e}");
    let e =
        PrometheusHistoryProvider::new(&flags(&["--prometheus-query-timeout=5"]), "").unwrap_err();
    assert!(e.to_string().contains("--prometheus-query-timeout"), "{e}");
    let e = PrometheusHistoryProvider::new(&flags(&["--prometheus-address=prometheus:9090"]), "")
        .unwrap_err();
    assert!(e.to_string().contains("--prometheus-address"), "{e}");
}

#[test]
fn eight_days_at_one_minute_is_split_under_the_limit() {
    let now = Timestamp::from_unix_seconds(1_800_000_000);
    let q = queries(&["--history-resolution=1m"], "");
    let w = q.windows(now);
    // 8 days of minutes = 11,521 points: two windows.
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].0, now.sub(Duration::from_hours(192)));
    assert_eq!(w[0].1, w[0].0.add(Duration::from_minutes(10_999)));
    assert_eq!(w[1].0, w[0].1.add(Duration::from_minutes(1)));
    assert_eq!(w[1].1, now);
    // The default (1h steps) is one window.
    assert_eq!(queries(&[], "").windows(now).len(), 1);
    // The end is aligned to the step.
    let late = now.add(Duration::from_secs(59));
    assert_eq!(q.windows(late), w);
    let hourly = queries(&[], "").windows(late);
    assert_eq!(
        hourly[0].1.unix_nanos() % Duration::from_hours(1).as_nanos(),
        0
    );
}

proptest! {
    #[test]
    fn windows_cover_every_point_once(points in 1i64..60_000, step_s in 1i64..4_000) {
        let start = Timestamp::from_unix_seconds(1_700_000_000);
        let step = Duration::from_secs(step_s);
        let end = start.add(Duration::from_secs(step_s * (points - 1)));
        let w = split_range(start, end, step);
        let mut expected_start = start;
        let mut total = 0;
        for &(a, b) in &w {
            prop_assert_eq!(a, expected_start);
            let n = (b.unix_nanos() - a.unix_nanos()) / step.as_nanos() + 1;
            prop_assert!((1..=MAX_POINTS_PER_SERIES).contains(&n));
            prop_assert_eq!((b.unix_nanos() - a.unix_nanos()) % step.as_nanos(), 0);
            total += n;
            expected_start = b.add(step);
        }
        prop_assert_eq!(total, points);
        prop_assert_eq!(w.last().unwrap().1, end);
    }

    #[test]
    fn arbitrary_answers_never_panic(body in ".{0,200}") {
        let _ = parse_response(&body);
    }
}

const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"namespace":"ns","pod_name":"web-7d9f8b6c5d-abcde","name":"app","job":"kubernetes-cadvisor"},
  "values":[[1800000060,"0.25"],[1800000000,"0.5"],[1800000120,"NaN"]]},
 {"metric":{"namespace":"ns","pod_name":"web-7d9f8b6c5d-abcde","name":"POD"},"values":[[1800000000,"1"]]},
 {"metric":{"namespace":"ns","name":"app"},"values":[[1800000000,"1"]]}
]}}"#;

#[test]
fn matrix_answers_become_sorted_container_samples() {
    let q = queries(&[], "");
    let series = parse_response(MATRIX).unwrap();
    assert_eq!(series.len(), 3);
    let mut h = ClusterHistory::new();
    assert_eq!(q.add_series(&mut h, &series, Measure::Cpu), 2);
    let mem = parse_response(
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"namespace":"ns","pod_name":"web-7d9f8b6c5d-abcde","name":"app"},"values":[[1800000000.5,"1048576"]]}]}}"#,
    )
    .unwrap();
    assert_eq!(q.add_series(&mut h, &mem, Measure::Memory), 1);
    sort_samples(&mut h);
    let pod = &h[&ObjectId::new("ns", "web-7d9f8b6c5d-abcde")];
    let s = &pod.containers["app"];
    assert_eq!(
        s.iter()
            .map(|s| (s.measure_start.unix_nanos(), s.usage))
            .collect::<Vec<_>>(),
        vec![
            (1_800_000_000_000_000_000, 500),
            (1_800_000_000_500_000_000, 1 << 20),
            (1_800_000_060_000_000_000, 250)
        ]
    );
}

#[test]
fn error_answers_and_wrong_types_are_errors() {
    let e = parse_response(r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries"}"#).unwrap_err();
    assert!(e.contains("bad_data") && e.contains("11,000"), "{e}");
    let e =
        parse_response(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
            .unwrap_err();
    assert!(e.contains("scalar"), "{e}");
    assert!(
        parse_response("<html>502 Bad Gateway</html>")
            .unwrap_err()
            .contains("not a Prometheus API answer")
    );
    assert!(parse_response(r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#).is_err());
}

#[test]
fn pod_labels_come_from_the_latest_series_without_the_prefix() {
    let q = queries(&[], "");
    let mut h = ClusterHistory::new();
    q.add_series(&mut h, &parse_response(MATRIX).unwrap(), Measure::Cpu);
    let labels = parse_response(r#"{"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"kubernetes_namespace":"ns","kubernetes_pod_name":"web-7d9f8b6c5d-abcde","pod_label_app":"web","pod_label_tier":"new","job":"kubernetes-pods"},"value":[1800000100,"1"]},
      {"metric":{"kubernetes_namespace":"ns","kubernetes_pod_name":"web-7d9f8b6c5d-abcde","pod_label_app":"web","pod_label_tier":"old"},"value":[1800000000,"1"]},
      {"metric":{"kubernetes_namespace":"ns","kubernetes_pod_name":"gone","pod_label_app":"x"},"value":[1800000100,"1"]}
    ]}}"#).unwrap();
    q.add_pod_labels(&mut h, &labels);
    assert_eq!(h.len(), 1, "pods without usage are not added");
    let l = &h[&ObjectId::new("ns", "web-7d9f8b6c5d-abcde")].labels;
    assert_eq!(l.get("app").map(String::as_str), Some("web"));
    assert_eq!(l.get("tier").map(String::as_str), Some("new"));
    assert_eq!(l.get("job"), None);
}

#[test]
fn workloads_from_pod_names() {
    assert_eq!(workload_of("web-7d9f8b6c5d-abcde"), "web");
    assert_eq!(workload_of("my-api-5f6b7c8d9-x2k4z"), "my-api");
    assert_eq!(workload_of("fluentd-x2k4z"), "fluentd");
    assert_eq!(workload_of("db-0"), "db");
    assert_eq!(workload_of("redis-cluster-12"), "redis-cluster");
    assert_eq!(workload_of("standalone"), "standalone");
    assert_eq!(workload_of("a-b"), "a-b");
}

#[test]
fn history_as_a_trace_replays() {
    let q = queries(&[], "");
    let mut h = ClusterHistory::new();
    q.add_series(&mut h, &parse_response(MATRIX).unwrap(), Measure::Cpu);
    sort_samples(&mut h);
    let csv = to_trace_csv(&h);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(crate::trace::HEADER));
    assert_eq!(
        lines.next(),
        Some("2027-01-15T08:00:00Z,ns,web,web-7d9f8b6c5d-abcde,app,500m,,")
    );
    assert_eq!(lines.count(), 1);
}

#[test]
fn authorization_follows_upstreams_precedence() {
    let none = |_: &str| None;
    assert_eq!(authorization(&flags(&[]), none).unwrap(), None);
    assert_eq!(
        authorization(&flags(&["--prometheus-bearer-token=abc"]), none).unwrap(),
        Some("Bearer abc".into())
    );
    assert_eq!(
        authorization(&flags(&["--username=u", "--password=p"]), none).unwrap(),
        Some("Basic dTpw".into())
    );
    let env = |k: &str| match k {
        "PROMETHEUS_USERNAME" => Some("u".to_string()),
        "PROMETHEUS_PASSWORD" => Some("p".to_string()),
        _ => None,
    };
    assert_eq!(
        authorization(&flags(&[]), env).unwrap(),
        Some("Basic dTpw".into())
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "from-file\n").unwrap();
    let arg = format!("--prometheus-bearer-token-file={}", f.display());
    assert_eq!(
        authorization(&flags(&[&arg]), none).unwrap(),
        Some("Bearer from-file".into())
    );
    let e = authorization(
        &flags(&["--prometheus-bearer-token=a", "--username=u"]),
        none,
    )
    .unwrap_err();
    assert!(e.to_string().contains("mutually exclusive"));
}
