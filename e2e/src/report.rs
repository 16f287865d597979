//! A run's report as the operator stores it: the ConfigMap that `status.report` names, its
//! `report.json` parsed into the shared [`Report`] document, checks of its timeline, and
//! baseline reports for `spec.baseline`.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::{Client, ResourceExt};
use pressure_crds::PressureTest;
use pressure_crds::report::{REPORT_KEY, Report};

/// The report ConfigMap of `pt` (as it is now) and its `report.json`.
pub async fn read(client: &Client, pt: &PressureTest) -> anyhow::Result<(ConfigMap, Report)> {
    let ns = pt.namespace().unwrap_or_default();
    let name = pt
        .status
        .as_ref()
        .and_then(|s| s.report.clone())
        .ok_or_else(|| anyhow::anyhow!("status.report is not set: {:?}", pt.status))?;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get(&name)
        .await?;
    let json = cm
        .data
        .as_ref()
        .and_then(|d| d.get(REPORT_KEY))
        .ok_or_else(|| anyhow::anyhow!("ConfigMap {name} has no {REPORT_KEY}"))?;
    Ok((cm.clone(), serde_json::from_str(json)?))
}

/// The timeline covers the load in order: `t` rises, delivered never falls, and mail was
/// delivered at some point during the load.
pub fn check_timeline(r: &Report) -> anyhow::Result<()> {
    let tl = &r.timeline;
    anyhow::ensure!(tl.len() >= 2, "a timeline of {} points", tl.len());
    for w in tl.windows(2) {
        anyhow::ensure!(w[0].t < w[1].t, "time goes back: {:?}", w);
        anyhow::ensure!(w[0].delivered <= w[1].delivered, "delivered falls: {:?}", w);
    }
    let load = f64::from(r.warmup_seconds + r.duration_seconds);
    anyhow::ensure!(
        tl.iter()
            .any(|p| p.t <= load && p.delivered_per_second > 0.0),
        "no delivery during the load: {tl:?}"
    );
    Ok(())
}

/// Creates the ConfigMap `name` holding `report` as its `report.json`, as a retained report of
/// an earlier run would be: a baseline to compare with.
pub async fn put_baseline(
    client: &Client,
    ns: &str,
    name: &str,
    report: &Report,
) -> anyhow::Result<()> {
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(
            [(REPORT_KEY.to_string(), serde_json::to_string(report)?)]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&Default::default(), &cm)
        .await?;
    Ok(())
}
