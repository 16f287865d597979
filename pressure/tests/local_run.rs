//! End-to-end runs of the built `pressure` binary: real `mailproxy`, `client-sim` clients and
//! the verifying sink on loopback. One short run with the four seed profiles (large attachments
//! forced for one tenant) must pass with no loss and agree across stdout, JSON and chart; one run
//! with an impossible throughput must fail with exit code 1. Bad input must exit 2 before
//! anything starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const PRESSURE: &str = env!("CARGO_BIN_EXE_pressure");

/// The directory holding `mailproxy` and `client-sim`: beside `pressure` when `cargo test` built
/// them (it does for the workspace), else built once into `<target>/pressure-test-bins` (a
/// separate target dir: the running `cargo test` may hold the main one's lock).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(PRESSURE).parent().expect("bin dir");
        if dir.join("mailproxy").is_file() && dir.join("client-sim").is_file() {
            return dir.to_path_buf();
        }
        let target = dir.parent().expect("target dir").join("pressure-test-bins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "mailproxy", "-p", "client-sim"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building mailproxy and client-sim failed");
        target.join("debug")
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write spec");
    p
}

fn pressure(args: &[&str], dir: &Path) -> Output {
    Command::new(PRESSURE)
        .arg("run")
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO")
        .output()
        .expect("run pressure")
}

const FOUR_PROFILES: &str = r#"
apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {name: local-four}
spec:
  durationSeconds: 14
  warmupSeconds: 2
  seed: 11
  tenants:
    - {name: high-volume, profile: high-volume}
    - {name: standard, profile: standard, clients: 2}
    - {name: newsletter, profile: newsletter}
    - name: documents
      profile: documents
      rates: {messagesPerSync: 40, largeAttachmentRatePermille: 1000, dndProbabilityPermille: 0}
  proxy:
    tuning: {syncIntervalSeconds: 2, sendLoopIntervalMs: 200}
  thresholds:
    maxErrorRatePermille: 10
    maxP99LatencyMs: 600000
    minThroughputPerSecond: 1
    minDeliveredRatioPermille: 990
  timeouts: {drainSeconds: 90}
"#;

#[test]
fn four_seed_profiles_pass_with_no_loss_and_agreeing_outputs() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = write(dir.path(), "four.yaml", FOUR_PROFILES);
    let (json, chart) = (dir.path().join("r.json"), dir.path().join("c.svg"));
    let out = pressure(
        &[
            spec.to_str().expect("utf8"),
            "--quiet",
            "--json",
            json.to_str().expect("utf8"),
            "--chart",
            chart.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&json).expect("json file")).expect("json");
    let total = &r["total"];
    let n = |v: &Value| v.as_u64().expect("number");
    let (generated, delivered, errors) = (
        n(&total["generated"]),
        n(&total["delivered"]),
        n(&total["errors"]),
    );
    assert!(generated > 100, "too little load: {generated}");
    assert_eq!(generated, delivered + errors, "lost messages: {total}");
    assert_eq!(n(&total["lost"]), 0);
    assert_eq!(n(&total["duplicates"]), 0);
    assert_eq!(n(&total["attachmentMismatches"]), 0);
    assert!(
        n(&r["proxyCache"]["hits"]) > 0,
        "no proxy cache hit: {}",
        r["proxyCache"]
    );
    assert_eq!(r["verdict"], "ThresholdsPassed");
    assert_eq!(r["tenants"].as_array().map(Vec::len), Some(4));
    let docs = &r["tenants"][3];
    assert_eq!(docs["name"], "documents");
    assert!(
        n(&docs["bytesDelivered"]) > 10 * 1024 * 1024,
        "no 10 MiB+ attachment delivered: {docs}"
    );
    assert_eq!(r["tenants"][1]["clients"], 2);
    // The printed total row carries the JSON's figures.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], generated.to_string(), "{row}");
    assert_eq!(cells[2], total["sent"].to_string(), "{row}");
    assert_eq!(cells[3], delivered.to_string(), "{row}");
    assert!(
        stdout.contains("Verdict: PASS (ThresholdsPassed)"),
        "{stdout}"
    );
    // The chart exists, plots the timeline (the two series are its only 2 px lines) and titles
    // the same throughput and verdict; the PNG is beside it.
    let svg = std::fs::read_to_string(&chart).expect("chart file");
    let series: Vec<&str> = svg
        .split(r#"stroke-width="2" points=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(series.len(), 2, "the throughput and latency lines");
    assert!(series[0].split_whitespace().count() >= 10, "{}", series[0]);
    assert!(svg.contains("delivered msg/s") && svg.contains("p99 latency (ms)"));
    let png = std::fs::read(dir.path().join("c.png")).expect("PNG beside the chart");
    assert!(png.starts_with(b"\x89PNG"));
    let tput = total["throughputPerSecond"].as_f64().expect("tput");
    assert!(
        svg.contains(&format!("{tput:.1} msg/s delivered")),
        "chart title disagrees"
    );
    assert!(svg.contains("ThresholdsPassed"));
    assert!(r["timeline"].as_array().is_some_and(|t| t.len() >= 10));
}

const IMPOSSIBLE: &str = r#"
apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {name: impossible}
spec:
  durationSeconds: 10
  warmupSeconds: 0
  tenants:
    - {name: standard, profile: standard}
  proxy:
    tuning: {syncIntervalSeconds: 1}
  thresholds: {minThroughputPerSecond: 1000000}
"#;

#[test]
fn an_impossible_threshold_fails_with_exit_code_1() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = write(dir.path(), "impossible.yaml", IMPOSSIBLE);
    let out = pressure(
        &[spec.to_str().expect("utf8"), "--quiet", "--output", "json"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(r["verdict"], "ThresholdBreached");
    let line = r["thresholds"]
        .as_array()
        .and_then(|t| t.iter().find(|x| x["name"] == "minThroughputPerSecond"))
        .expect("throughput line");
    assert_eq!(line["passed"], false);
    assert_eq!(r["total"]["lost"], 0);
    // Written to the default output directory too.
    let results = dir.path().join("pressure-results");
    let run_dir = std::fs::read_dir(&results)
        .expect("results dir")
        .next()
        .expect("run dir");
    let path = run_dir.expect("entry").path();
    assert!(path.join("report.json").is_file() && path.join("pressure-report.svg").is_file());
    assert!(path.join("pressure-report.png").is_file());
}

#[test]
fn a_run_behind_its_baseline_exits_1_with_the_comparison() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = write(dir.path(), "short.yaml", SHORT);
    // A baseline no loopback run can match: a million messages a second at a p99 of 1 ms (and
    // every message in error, so that the error rate cannot regress).
    let mut base = pressure::report::Report {
        run_id: "fast-run".into(),
        ..Default::default()
    };
    base.total.throughput_per_second = 1_000_000.0;
    base.total.latency_ms = Some(pressure::report::Latency {
        p99: 1.0,
        ..Default::default()
    });
    base.figures.error_rate_permille = 1000;
    let base_path = write(
        dir.path(),
        "base.json",
        &serde_json::to_string(&base).expect("json"),
    );
    let out = pressure(
        &[
            spec.to_str().expect("utf8"),
            "--quiet",
            "--output",
            "json",
            "--baseline",
            base_path.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(
        r["verdict"], "ThresholdsPassed",
        "the thresholds themselves held"
    );
    let c = &r["comparison"];
    assert_eq!(c["baselineRunId"], "fast-run");
    assert_eq!(c["regressed"], true);
    let regressed: Vec<&str> = c["deltas"]
        .as_array()
        .expect("deltas")
        .iter()
        .filter(|d| d["regressed"] == true)
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        regressed,
        vec!["throughputPerSecond", "latencyP99Ms"],
        "{c}"
    );
    // Not a report: refused before anything starts.
    let bad = write(dir.path(), "bad.json", "[1, 2]");
    let out = pressure(
        &[
            spec.to_str().expect("utf8"),
            "--baseline",
            bad.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--baseline") && stderr.contains("not a report.json"),
        "{stderr}"
    );
}

#[test]
fn stages_shape_the_load_second_by_second() {
    let dir = tempfile::tempdir().expect("tmp");
    // Nothing for 4 s, then a ramp to the full rate over 2 s, which holds.
    let staged = SHORT.replace(
        "  tenants:",
        "  stages:\n    - {durationSeconds: 4, ratePercent: 0}\n    - {durationSeconds: 2, ratePercent: 100}\n  tenants:",
    );
    let spec = write(dir.path(), "staged.yaml", &staged);
    let out = pressure(
        &[spec.to_str().expect("utf8"), "--quiet", "--output", "json"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(r["stages"][0]["ratePercent"], 0);
    let timeline = r["timeline"].as_array().expect("timeline");
    let generated_by = |t: f64| {
        timeline
            .iter()
            .filter(|p| p["t"].as_f64().is_some_and(|pt| pt <= t))
            .filter_map(|p| p["generated"].as_u64())
            .max()
            .unwrap_or(0)
    };
    assert_eq!(generated_by(3.5), 0, "0 % for the first 4 s: {timeline:?}");
    assert!(r["total"]["generated"].as_u64().is_some_and(|g| g > 0));
}

/// Ten seconds of one standard tenant, with thresholds such a run meets.
const SHORT: &str = r#"
apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {name: short}
spec:
  durationSeconds: 10
  warmupSeconds: 0
  tenants:
    - {name: standard, profile: standard}
  proxy:
    tuning: {syncIntervalSeconds: 1}
  thresholds:
    maxErrorRatePermille: 1000
    maxP99LatencyMs: 60000
    minThroughputPerSecond: 1
    minDeliveredRatioPermille: 0
"#;

#[test]
fn invalid_file_exits_2_with_the_field_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: pressure.mailproxy.dev/v1alpha1\nkind: PressureTest\nmetadata: {name: bad}\nspec:\n  tenants:\n    - {name: standard, profile: standard, clients: 0}\n",
    );
    let out = pressure(&[bad.to_str().expect("utf8")], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("spec.tenants[0].clients"), "{stderr}");
    let out = pressure(&["/nonexistent/pt.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    assert!(
        !dir.path().join("pressure-results").exists(),
        "nothing may start"
    );
}

#[test]
fn a_taken_port_exits_2_before_starting() {
    let dir = tempfile::tempdir().expect("tmp");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port().to_string();
    let out = pressure(&["--proxy-port", &port, "--quiet"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--proxy-port") && stderr.contains("not available"),
        "{stderr}"
    );
    let out = pressure(&["--smtp", "127.0.0.1:1", "--quiet"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--smtp"));
}

const TWO_TENANTS: &str = r#"
apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {name: on-postgres}
spec:
  durationSeconds: 10
  warmupSeconds: 0
  tenants:
    - {name: standard, profile: standard}
    - {name: newsletter, profile: newsletter}
  proxy:
    tuning: {syncIntervalSeconds: 2, logLevel: INFO}
    settings:
      dispatch: {claimBatchSize: 25, maxConcurrentSends: 4, maxSendsPerAccount: 2, retryDelaysSeconds: [1, 2]}
      sync: {concurrency: 2}
      database: {maxConnections: 4}
      logFormat: Json
  thresholds: {maxP99LatencyMs: 600000}
"#;

/// A fresh database on the test cluster that `scripts/test.sh` starts (`GMP_TEST_PG_URL`).
fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("GMP_TEST_PG_URL").expect(
        "GMP_TEST_PG_URL is not set: run ./scripts/test.sh, which starts a PostgreSQL test cluster",
    );
    let name = format!("pressure_{:016x}", rand::random::<u64>());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
    });
    let base = admin
        .rsplit_once('/')
        .map_or(admin.clone(), |(b, _)| b.to_string());
    format!("{base}/{name}")
}

#[test]
fn a_run_on_postgresql_with_proxy_settings_loses_nothing() {
    let url = fresh_database();
    let dir = tempfile::tempdir().expect("tmp");
    let spec = write(dir.path(), "pg.yaml", TWO_TENANTS);
    let out = pressure(
        &[
            spec.to_str().expect("utf8"),
            "--quiet",
            "--output",
            "json",
            "--database-url",
            &url,
            "--keep-temp",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Kept the run's temporary directory: "))
        .map(PathBuf::from);
    // The proxy ran with the spec's settings: its log is JSON lines (`logFormat: Json`).
    let proxy_log = kept
        .as_ref()
        .map(|k| std::fs::read_to_string(k.join("proxy.log")).expect("proxy log"));
    if let Some(k) = &kept {
        std::fs::remove_dir_all(k).expect("remove the kept directory");
    }
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let proxy_log = proxy_log.expect("the kept directory is named on stderr");
    let lines: Vec<&str> = proxy_log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the proxy logged nothing");
    for line in &lines {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("proxy log line is not JSON ({e}): {line}"));
    }
    let r: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(r["database"], "postgresql");
    let total = &r["total"];
    assert!(total["generated"].as_u64().is_some_and(|g| g > 0));
    assert_eq!(total["lost"], 0);
    let n = |k: &str| total[k].as_u64().expect("number");
    assert_eq!(n("generated"), n("delivered") + n("errors"), "{total}");
}
