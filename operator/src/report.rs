//! The run's report in a ConfigMap, `<pressuretest>-report-<run>`, named in `status.report`: while
//! the load runs it holds `timeline.json` (the points so far, updated at each reading); once the
//! run has a verdict, `report.json` (the document the local run writes, see [`build`]) and
//! `chart.svg`. It outlives the pods (`keepOnFinish: ResultsOnly` leaves it), and with
//! `reportRetention: Retain` the PressureTest itself: it then carries no owner reference, only an
//! annotation with the PressureTest's UID, and the garbage collector leaves it alone.
//!
//! With `spec.baseline`, the final report is compared with the baseline run's report (read from
//! its ConfigMap) before it is written: `status.comparison`, the report's `comparison` and the
//! `Regressed` condition.

pub mod build;
pub mod timeline;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use pressure_crds::compare::{self, Comparison};
use pressure_crds::report::{Point, Report};
use pressure_crds::{
    BaselineSpec, ConditionStatus, Phase, PressureTest, PressureTestStatus, ReportRetention,
};

use crate::Result;
use crate::controller::ownership::controlled_by;
use crate::reconcile::run_scope::RUN_ID_ANNOTATION;
use crate::reconcile::{MANAGER, labels, meta, names};
use crate::status::Reading;
use crate::status::conditions::{self, reason};
pub use timeline::{RunTimeline, Timelines};

/// Annotation holding the UID of the PressureTest a report belongs to (owned or not).
pub const OWNER_UID_ANNOTATION: &str = "pressure.mailproxy.dev/pressuretest-uid";
pub use pressure_crds::report::{CHART_KEY, REPORT_KEY, TIMELINE_KEY};

/// Whether the ConfigMap is the report of the PressureTest `uid`: controlled by it, or retained
/// with its UID.
pub fn is_ours(cm: &ConfigMap, uid: &str) -> bool {
    controlled_by(&cm.metadata, uid)
        || cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OWNER_UID_ANNOTATION))
            .is_some_and(|u| u == uid)
}

/// The report ConfigMap of `pt`'s run `run_id` holding `data`, owned or not as
/// `spec.reportRetention` says.
pub fn config_map(
    pt: &PressureTest,
    name: &str,
    run_id: &str,
    uid: &str,
    data: BTreeMap<String, String>,
) -> Result<ConfigMap> {
    let mut m = meta(
        pt,
        names::report(name, run_id),
        labels(name, "report", "pressure-report"),
    )?;
    if pt.spec.report_retention == ReportRetention::Retain {
        m.owner_references = None;
    }
    m.annotations = Some(BTreeMap::from([
        (OWNER_UID_ANNOTATION.to_string(), uid.to_string()),
        (RUN_ID_ANNOTATION.to_string(), run_id.to_string()),
    ]));
    Ok(ConfigMap {
        metadata: m,
        data: Some(data),
        ..ConfigMap::default()
    })
}

/// What the reconcile needs to keep the report.
pub struct Target<'a> {
    /// The API client.
    pub client: &'a kube::Client,
    /// The timelines this operator holds.
    pub timelines: &'a Timelines,
    /// The PressureTest.
    pub pt: &'a PressureTest,
    /// Its namespace.
    pub ns: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its UID.
    pub uid: &'a str,
}

impl Target<'_> {
    /// Records `reading` and writes the report ConfigMap for the status `next` is about to
    /// become: the timeline while the load runs, the final report once `next` has a verdict.
    /// Sets `next.report` when the ConfigMap is written. A run that never got a run id has no
    /// report; a name held by a foreign ConfigMap is left alone (logged, never overwritten).
    pub async fn update(
        &self,
        next: &mut PressureTestStatus,
        reading: Option<&Reading>,
    ) -> Result<()> {
        let Some(run_id) = next.run_id.clone() else {
            return Ok(());
        };
        let terminal = next.phase.is_some_and(Phase::is_terminal);
        let start_at = next.load_start_at;
        if !terminal && (reading.is_none() || start_at.is_none()) {
            return Ok(());
        }
        let mut tl = match self.timelines.get(self.uid, &run_id) {
            Some(tl) => tl,
            None => self.resume(&run_id, start_at.unwrap_or(0)).await?,
        };
        if tl.foreign {
            return Ok(());
        }
        if let (Some(r), Some(start)) = (reading, start_at) {
            // Both sinks count deliveries: the verifying sink, or Mailpit's message count.
            tl.record(r, start, true);
        }
        let data = if terminal {
            let mut report = build::build(self.pt, next, &tl);
            if let Some(baseline) = &self.pt.spec.baseline {
                report.comparison = self.compare(baseline, &report, next).await?;
            }
            let (json, svg) = build::files(report);
            BTreeMap::from([(REPORT_KEY.into(), json), (CHART_KEY.into(), svg)])
        } else {
            let points = serde_json::to_string(&tl.points).unwrap_or_else(|_| "[]".into());
            BTreeMap::from([(TIMELINE_KEY.into(), points)])
        };
        let cm = config_map(self.pt, self.name, &run_id, self.uid, data)?;
        self.apply(&cm).await?;
        next.report = cm.metadata.name.clone();
        if terminal {
            self.timelines.forget(self.uid);
        } else {
            self.timelines.put(self.uid, tl);
        }
        Ok(())
    }

    /// Compares `report` with the baseline's and sets `next.comparison` and the `Regressed`
    /// condition: True or False from the comparison, Unknown (with the reason in its message)
    /// when the baseline's report cannot be read.
    async fn compare(
        &self,
        baseline: &BaselineSpec,
        report: &Report,
        next: &mut PressureTestStatus,
    ) -> Result<Option<Comparison>> {
        let found = self.baseline_report(baseline).await?;
        let now = next.completion_time.clone().unwrap_or_default();
        let (status, reason, message, comparison) = match found {
            Ok((source, base)) => {
                let c = compare::compare(report, &base, &source, &baseline.tolerance);
                let (status, reason) = if c.regressed {
                    (ConditionStatus::True, reason::REGRESSED)
                } else {
                    (ConditionStatus::False, reason::WITHIN_TOLERANCE)
                };
                (status, reason, c.message.clone(), Some(c))
            }
            Err(why) => (
                ConditionStatus::Unknown,
                reason::BASELINE_UNAVAILABLE,
                why,
                None,
            ),
        };
        conditions::set(
            &mut next.conditions,
            conditions::REGRESSED,
            status,
            reason,
            message,
            &now,
            next.observed_generation,
        );
        next.comparison = comparison.clone();
        Ok(comparison)
    }

    /// The baseline's report and where it was found; `Err` says why it cannot be used (absent,
    /// unfinished, unreadable). API failures other than a missing object are errors.
    async fn baseline_report(
        &self,
        b: &BaselineSpec,
    ) -> Result<std::result::Result<(String, Report), String>> {
        let cm_name = match (&b.report, &b.pressure_test) {
            (Some(cm), _) => cm.clone(),
            (None, Some(pt)) if pt == self.name => {
                return Ok(Err(format!(
                    "PressureTest {pt} cannot be its own baseline: name an earlier PressureTest or a retained report"
                )));
            }
            (None, Some(pt)) => {
                let pts: Api<PressureTest> = Api::namespaced(self.client.clone(), self.ns);
                let Some(other) = pts.get_opt(pt).await? else {
                    return Ok(Err(format!("baseline PressureTest {pt} not found")));
                };
                let finished = other
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .is_some_and(Phase::is_terminal);
                match other.status.and_then(|s| s.report).filter(|_| finished) {
                    Some(cm) => cm,
                    None => {
                        return Ok(Err(format!(
                            "baseline PressureTest {pt} has no finished run with a report"
                        )));
                    }
                }
            }
            (None, None) => return Ok(Err("spec.baseline names no run".into())),
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
        let Some(cm) = api.get_opt(&cm_name).await? else {
            return Ok(Err(format!(
                "baseline report ConfigMap {cm_name} not found"
            )));
        };
        let Some(json) = cm.data.as_ref().and_then(|d| d.get(REPORT_KEY)) else {
            return Ok(Err(format!(
                "ConfigMap {cm_name} holds no {REPORT_KEY} (a run still in progress?)"
            )));
        };
        Ok(serde_json::from_str(json)
            .map(|r| (format!("ConfigMap {cm_name}"), r))
            .map_err(|e| format!("ConfigMap {cm_name}: {REPORT_KEY} is not a report: {e}")))
    }

    /// The timeline of `run_id` as the ConfigMap holds it (after an operator restart), or a new
    /// one; marked foreign when the name is taken by an object that is not this run's report.
    async fn resume(&self, run_id: &str, start_at: i64) -> Result<RunTimeline> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
        let found = api.get_opt(&names::report(self.name, run_id)).await?;
        let mut tl = RunTimeline::resume(run_id, Vec::new(), start_at);
        match found {
            None => {}
            Some(cm) if !is_ours(&cm, self.uid) => {
                tracing::warn!(
                    configmap = %names::report(self.name, run_id),
                    "The report's name is held by a ConfigMap this PressureTest does not own; no report is written."
                );
                tl.foreign = true;
            }
            Some(cm) => {
                let points: Vec<Point> = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get(TIMELINE_KEY))
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                tl = RunTimeline::resume(run_id, points, start_at);
            }
        }
        self.timelines.put(self.uid, tl.clone());
        Ok(tl)
    }

    /// Keeps a finished run's report owned or unowned as `spec.reportRetention` says now (it may
    /// change after the verdict): re-applies it with the same content when it does not match.
    pub async fn retain(&self, status: &PressureTestStatus) -> Result<()> {
        let (Some(report), Some(run_id)) = (&status.report, &status.run_id) else {
            return Ok(());
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
        let Some(cm) = api
            .get_opt(report)
            .await?
            .filter(|cm| is_ours(cm, self.uid))
        else {
            return Ok(());
        };
        let owned = controlled_by(&cm.metadata, self.uid);
        let want_owned = self.pt.spec.report_retention == ReportRetention::Delete;
        if owned == want_owned {
            return Ok(());
        }
        let data = cm.data.unwrap_or_default();
        let cm = config_map(self.pt, self.name, run_id, self.uid, data)?;
        self.apply(&cm).await
    }

    async fn apply(&self, cm: &ConfigMap) -> Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
        let name = cm.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(cm),
        )
        .await?;
        Ok(())
    }
}
