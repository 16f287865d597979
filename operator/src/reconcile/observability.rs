//! Prometheus (scraping the proxy, the clients and the sink through their headless Services'
//! DNS records) and Grafana (datasource and dashboard provisioned from ConfigMaps).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, KeyToPath, Volume, VolumeMount,
};
use kube::ResourceExt;
use pressure_crds::PressureTest;
use serde_json::json;

use super::secret::GRAFANA_PASSWORD;
use super::{
    Child, container, deployment, env, http_probe, labels, meta, names, pod_spec, port, pt_name,
    resources, scratch, secret_env, selector, service,
};
use crate::{Error, Result};

/// Prometheus port.
pub const PROMETHEUS_PORT: i32 = 9090;
/// Grafana port.
pub const GRAFANA_PORT: i32 = 3000;

/// Prometheus and Grafana objects, as far as enabled.
pub fn children(pt: &PressureTest) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let mut out = Vec::new();
    if pt.spec.prometheus.enabled {
        out.extend(prometheus(pt, &name)?);
    }
    if pt.spec.grafana.enabled {
        out.extend(grafana(pt, &name)?);
    }
    Ok(out)
}

/// `prometheus.yml`: every 5 s, one job per component, DNS discovery of each headless Service.
pub fn scrape_config(pt: &PressureTest, name: &str) -> Result<String> {
    let ns = pt.namespace().unwrap_or_default();
    let dns = |svc: String, port: i32| json!([{ "names": [format!("{svc}.{ns}.svc")], "type": "A", "port": port }]);
    let mut jobs = vec![
        json!({ "job_name": "prometheus", "static_configs": [{ "targets": [format!("localhost:{PROMETHEUS_PORT}")] }] }),
        json!({ "job_name": "mailproxy", "dns_sd_configs": dns(names::proxy(name), super::proxy::PORT) }),
    ];
    // The verifying sink and Mailpit both serve `/metrics` on the sink's HTTP port.
    jobs.push(json!({ "job_name": "sink", "dns_sd_configs": dns(names::sink(name), super::sink::HTTP_PORT) }));
    for t in &pt.spec.tenants {
        jobs.push(json!({
            "job_name": format!("client-{}", t.name),
            "dns_sd_configs": dns(names::client(name, &t.name), super::clients::PORT),
            "relabel_configs": [{ "target_label": "tenant", "replacement": t.name }],
        }));
    }
    let config = json!({
        "global": { "scrape_interval": "5s", "evaluation_interval": "5s",
                    "external_labels": { "pressure_test": name } },
        "scrape_configs": jobs,
    });
    serde_yaml::to_string(&config).map_err(|e| Error::Build {
        what: "prometheus config",
        reason: e.to_string(),
    })
}

fn config_map(
    pt: &PressureTest,
    obj: String,
    component: &str,
    app: &str,
    data: BTreeMap<String, String>,
) -> Result<ConfigMap> {
    let name = pt_name(pt)?;
    Ok(ConfigMap {
        metadata: meta(pt, obj, labels(&name, component, app))?,
        data: Some(data),
        ..ConfigMap::default()
    })
}

fn config_volume(name: &str, config_map: String, path: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map,
            ..Default::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    };
    (volume, mount)
}

fn prometheus(pt: &PressureTest, name: &str) -> Result<Vec<Child>> {
    let obj = names::prometheus(name);
    let (component, app) = ("prometheus", "prometheus");
    let data = BTreeMap::from([("prometheus.yml".to_string(), scrape_config(pt, name)?)]);
    let cm = config_map(pt, obj.clone(), component, app, data)?;
    let spec = &pt.spec.prometheus;
    let mut c = container(
        "prometheus",
        &spec.image,
        resources(spec.resources.as_ref(), ["100m", "256Mi", "500m", "512Mi"]),
    );
    c.args = Some(
        [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle",
        ]
        .map(String::from)
        .to_vec(),
    );
    c.ports = Some(vec![port(PROMETHEUS_PORT)]);
    c.readiness_probe = Some(http_probe("/-/ready", PROMETHEUS_PORT));
    c.liveness_probe = Some(http_probe("/-/healthy", PROMETHEUS_PORT));
    let (cfg_vol, cfg_mount) = config_volume("config", obj.clone(), "/etc/prometheus");
    let (data_vol, data_mount) = scratch("data", "/prometheus");
    c.volume_mounts = Some(vec![cfg_mount, data_mount]);
    let svc = service(
        meta(pt, obj.clone(), labels(name, component, app))?,
        selector(name, component),
        &[("http", PROMETHEUS_PORT)],
        false,
    );
    let pod = pod_spec(vec![c], vec![cfg_vol, data_vol], 65534);
    let d = deployment(
        meta(pt, obj, labels(name, component, app))?,
        selector(name, component),
        Some(1),
        pod,
    );
    Ok(vec![
        Child::ConfigMap(cm),
        Child::Service(svc),
        Child::Deployment(d),
    ])
}

/// Grafana's provisioning files: datasource, dashboard provider and the dashboard.
fn grafana_files(name: &str) -> Result<BTreeMap<String, String>> {
    let prom_url = format!("http://{}:{PROMETHEUS_PORT}", names::prometheus(name));
    let datasource = format!(
        "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n    uid: prometheus\n    access: proxy\n    url: {prom_url}\n    isDefault: true\n    editable: false\n"
    );
    let provider = "apiVersion: 1\nproviders:\n  - name: pressure\n    type: file\n    disableDeletion: true\n    options:\n      path: /etc/grafana/dashboards\n";
    let dashboard =
        serde_json::to_string_pretty(&super::dashboard::dashboard(name)).map_err(|e| {
            Error::Build {
                what: "grafana dashboard",
                reason: e.to_string(),
            }
        })?;
    Ok(BTreeMap::from([
        ("datasource.yaml".to_string(), datasource),
        ("dashboards.yaml".to_string(), provider.to_string()),
        ("mailproxy-pressure.json".to_string(), dashboard),
    ]))
}

/// The provisioning volume (from the ConfigMap `obj`) and its two mounts.
fn grafana_volume(obj: &str) -> (Volume, Vec<VolumeMount>) {
    let item = |k: &str, p: &str| KeyToPath {
        key: k.into(),
        path: p.into(),
        ..Default::default()
    };
    let volume = Volume {
        name: "provisioning".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: obj.to_string(),
            items: Some(vec![
                item("datasource.yaml", "datasources/datasource.yaml"),
                item("dashboards.yaml", "dashboards/dashboards.yaml"),
                item("mailproxy-pressure.json", "json/mailproxy-pressure.json"),
            ]),
            ..Default::default()
        }),
        ..Volume::default()
    };
    let mount = |path: &str, sub: Option<&str>| VolumeMount {
        name: "provisioning".into(),
        mount_path: path.into(),
        sub_path: sub.map(String::from),
        read_only: Some(true),
        ..Default::default()
    };
    let mounts = vec![
        mount("/etc/grafana/provisioning", None),
        mount("/etc/grafana/dashboards", Some("json")),
    ];
    (volume, mounts)
}

fn grafana(pt: &PressureTest, name: &str) -> Result<Vec<Child>> {
    let obj = names::grafana(name);
    let (component, app) = ("grafana", "grafana");
    let cm = config_map(pt, obj.clone(), component, app, grafana_files(name)?)?;
    let spec = &pt.spec.grafana;
    let res = resources(spec.resources.as_ref(), ["100m", "128Mi", "500m", "256Mi"]);
    let mut c = container("grafana", &spec.image, res);
    c.env = Some(vec![
        env("GF_SECURITY_ADMIN_USER", "admin"),
        secret_env(name, "GF_SECURITY_ADMIN_PASSWORD", GRAFANA_PASSWORD),
        env("GF_USERS_ALLOW_SIGN_UP", "false"),
        env("GF_AUTH_ANONYMOUS_ENABLED", "true"),
        env("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer"),
        env("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
        env("GF_LOG_MODE", "console"),
    ]);
    c.ports = Some(vec![port(GRAFANA_PORT)]);
    c.readiness_probe = Some(http_probe("/api/health", GRAFANA_PORT));
    c.liveness_probe = Some(http_probe("/api/health", GRAFANA_PORT));
    let (provisioning, mut mounts) = grafana_volume(&obj);
    let (data_vol, data_mount) = scratch("data", "/var/lib/grafana");
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    mounts.extend([data_mount, tmp_mount]);
    c.volume_mounts = Some(mounts);
    let svc_meta = meta(pt, obj.clone(), labels(name, component, app))?;
    let svc = service(
        svc_meta,
        selector(name, component),
        &[("http", GRAFANA_PORT)],
        false,
    );
    let pod = pod_spec(vec![c], vec![provisioning, data_vol, tmp_vol], 472);
    let d_meta = meta(pt, obj, labels(name, component, app))?;
    let d = deployment(d_meta, selector(name, component), Some(1), pod);
    Ok(vec![
        Child::ConfigMap(cm),
        Child::Service(svc),
        Child::Deployment(d),
    ])
}
