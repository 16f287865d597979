//! Reading from the cluster: the PressureTest, the report ConfigMap of one of its runs, and
//! merge patches of its spec.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Config};
use pressure_crds::PressureTest;
use pressure_crds::report::{CHART_KEY, REPORT_KEY, Report, TIMELINE_KEY};

use crate::error::{Error, Result};

/// A run's report as its ConfigMap holds it.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The ConfigMap.
    pub name: String,
    /// `report.json`, once the run has a verdict.
    pub report: Option<Report>,
    /// `chart.svg`, once the run has a verdict.
    pub chart: Option<String>,
    /// `timeline.json`, while the load runs.
    pub timeline: Option<String>,
}

/// A namespace of a cluster.
pub struct Cluster {
    /// The API client.
    pub client: Client,
    /// The namespace.
    pub ns: String,
}

impl Cluster {
    /// Connects with the kubeconfig (or in-cluster) configuration; `ns` overrides its namespace.
    pub async fn connect(ns: Option<String>) -> Result<Self> {
        let config = Config::infer()
            .await
            .map_err(|e| Error::Config(e.to_string()))?;
        let ns = ns.unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)?;
        Ok(Self { client, ns })
    }

    fn pts(&self) -> Api<PressureTest> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// The PressureTest `name`.
    pub async fn pt(&self, name: &str) -> Result<PressureTest> {
        self.pts()
            .get_opt(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                name: name.into(),
                ns: self.ns.clone(),
            })
    }

    /// The report of `pt`'s run `run` (`spec.runNumber`; `None`: the current or latest one).
    pub async fn report_of(&self, pt: &PressureTest, run: Option<i32>) -> Result<Stored> {
        let name = pt.metadata.name.clone().unwrap_or_default();
        let s = pt.status.clone().unwrap_or_default();
        let cm = match run {
            None => s.report.clone(),
            Some(n) if Some(n) == s.run_number => s.report.clone(),
            Some(n) => {
                let Some(h) = s.history.iter().find(|h| h.run_number == n) else {
                    let known: Vec<String> = s
                        .run_number
                        .into_iter()
                        .chain(s.history.iter().map(|h| h.run_number))
                        .map(|n| n.to_string())
                        .collect();
                    return Err(Error::NoReport(format!(
                        "PressureTest {name} has no run {n}; its runs: {}",
                        known.join(", ")
                    )));
                };
                h.report.clone()
            }
        };
        let cm = cm.ok_or_else(|| {
            Error::NoReport(format!(
                "PressureTest {name} has no report for that run yet (it is written at the first reading of the load)"
            ))
        })?;
        self.report_cm(&cm).await
    }

    /// The report ConfigMap `name`.
    pub async fn report_cm(&self, name: &str) -> Result<Stored> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let cm = api.get_opt(name).await?.ok_or_else(|| {
            Error::NoReport(format!(
                "report ConfigMap {name} not found in namespace {}",
                self.ns
            ))
        })?;
        let data = cm.data.unwrap_or_default();
        let report = match data.get(REPORT_KEY) {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| {
                Error::NoReport(format!(
                    "ConfigMap {name}: {REPORT_KEY} is not a report: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Stored {
            name: name.into(),
            report,
            chart: data.get(CHART_KEY).cloned(),
            timeline: data.get(TIMELINE_KEY).cloned(),
        })
    }

    /// Merge-patches the spec of the PressureTest `name` with `spec`.
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> Result<PressureTest> {
        let body = serde_json::json!({ "spec": spec });
        Ok(self
            .pts()
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await?)
    }
}
