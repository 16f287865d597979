//! `kubectl pressure bundle`: what a bug report about a run needs, in one `.tar.gz`: the
//! PressureTest (spec and status), the events about it, the YAML of every object it labels as
//! its own, its pods' logs (the last lines of each container, the previous container's too) and
//! its latest report. Secrets keep their keys, never their values.

use std::io::Write;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, LogParams};
use kube::{Resource, ResourceExt};
use pressure_crds::TEST_LABEL;
use pressure_crds::report::{CHART_KEY, REPORT_KEY, TIMELINE_KEY};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;
use crate::error::Result;

/// One file of the bundle: its path inside the tarball and its content.
pub type File = (String, Vec<u8>);

/// Everything about the PressureTest `name`, as files.
pub async fn collect(cluster: &Cluster, name: &str, log_lines: i64) -> Result<Vec<File>> {
    let mut pt = cluster.pt(name).await?;
    pt.meta_mut().managed_fields = None;
    let mut files = vec![
        (
            "README.txt".to_string(),
            format!(
                "kubectl pressure bundle of PressureTest {}/{name}\n\
                 pressuretest.yaml: spec and status; events.yaml: events about it;\n\
                 children/: objects labelled {TEST_LABEL}={name} (Secrets without values);\n\
                 logs/: the last {log_lines} lines of each container; report/: the latest report.\n",
                cluster.ns
            )
            .into_bytes(),
        ),
        ("pressuretest.yaml".to_string(), yaml(&pt)),
    ];
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.ns);
    let uid = pt.uid();
    let about: Vec<Event> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.clone()) == uid)
        .collect();
    files.push(("events.yaml".into(), yaml(&about)));
    let lp = ListParams::default().labels(&format!("{TEST_LABEL}={name}"));
    children::<Deployment>(cluster, &lp, "deployment", &mut files).await?;
    children::<StatefulSet>(cluster, &lp, "statefulset", &mut files).await?;
    children::<Job>(cluster, &lp, "job", &mut files).await?;
    children::<Service>(cluster, &lp, "service", &mut files).await?;
    children::<ConfigMap>(cluster, &lp, "configmap", &mut files).await?;
    children::<HorizontalPodAutoscaler>(cluster, &lp, "hpa", &mut files).await?;
    children::<NetworkPolicy>(cluster, &lp, "networkpolicy", &mut files).await?;
    children::<PersistentVolumeClaim>(cluster, &lp, "pvc", &mut files).await?;
    children::<Pod>(cluster, &lp, "pod", &mut files).await?;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.ns);
    for mut s in secrets.list(&lp).await?.items {
        s.meta_mut().managed_fields = None;
        for v in s.data.iter_mut().flat_map(|d| d.values_mut()) {
            v.0 = b"<redacted>".to_vec();
        }
        s.string_data = None;
        files.push((format!("children/secret-{}.yaml", s.name_any()), yaml(&s)));
    }
    logs(cluster, &lp, log_lines, &mut files).await?;
    if let Ok(stored) = cluster.report_of(&pt, None).await {
        let parts = [
            (REPORT_KEY, stored.report.as_ref().map(json)),
            (CHART_KEY, stored.chart.map(String::into_bytes)),
            (TIMELINE_KEY, stored.timeline.map(String::into_bytes)),
        ];
        for (file, content) in parts {
            if let Some(c) = content {
                files.push((format!("report/{file}"), c));
            }
        }
    }
    Ok(files)
}

/// The objects of kind `K` matching `lp`, one file each.
async fn children<K>(
    cluster: &Cluster,
    lp: &ListParams,
    kind: &str,
    files: &mut Vec<File>,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.ns);
    for mut o in api.list(lp).await?.items {
        o.meta_mut().managed_fields = None;
        files.push((format!("children/{kind}-{}.yaml", o.name_any()), yaml(&o)));
    }
    Ok(())
}

/// The last `lines` of every container of the matching pods (and of its previous instance, if
/// it restarted); a log that cannot be read leaves a `.error` file saying why.
async fn logs(cluster: &Cluster, lp: &ListParams, lines: i64, files: &mut Vec<File>) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.ns);
    for pod in pods.list(lp).await?.items {
        let name = pod.name_any();
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let restarted = statuses
                .iter()
                .any(|s| s.name == c.name && s.restart_count > 0);
            for previous in [false, true] {
                if previous && !restarted {
                    continue;
                }
                let params = LogParams {
                    container: Some(c.name.clone()),
                    tail_lines: Some(lines),
                    previous,
                    ..LogParams::default()
                };
                let base = format!(
                    "logs/{name}-{}{}",
                    c.name,
                    if previous { "-previous" } else { "" }
                );
                match pods.logs(&name, &params).await {
                    Ok(text) => files.push((format!("{base}.log"), text.into_bytes())),
                    Err(e) => files.push((format!("{base}.error"), e.to_string().into_bytes())),
                }
            }
        }
    }
    Ok(())
}

fn yaml<T: Serialize>(v: &T) -> Vec<u8> {
    serde_yaml::to_string(v)
        .unwrap_or_else(|e| format!("# cannot render: {e}\n"))
        .into_bytes()
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// The files as a gzip-compressed tar archive, under one folder named `bundle/`.
pub fn tarball(files: &[File]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(now);
        header.set_cksum();
        tar.append_data(&mut header, format!("bundle/{path}"), content.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_tarball_holds_every_file_under_bundle() {
        let files = vec![
            ("a.yaml".to_string(), b"x: 1\n".to_vec()),
            ("logs/p-c.log".to_string(), b"line\n".to_vec()),
        ];
        let bytes = tarball(&files).expect("tarball");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut e = entry.expect("entry");
            let mut text = String::new();
            e.read_to_string(&mut text).expect("read");
            seen.push((e.path().expect("path").display().to_string(), text));
        }
        assert_eq!(
            seen,
            vec![
                ("bundle/a.yaml".to_string(), "x: 1\n".to_string()),
                ("bundle/logs/p-c.log".to_string(), "line\n".to_string())
            ]
        );
    }
}
