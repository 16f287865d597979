//! Pod-health classification: finds a pod that cannot start (image pull, scheduling, crash loop,
//! out of memory) once it is older than the grace period, so that image pulls in progress raise
//! no false alarm.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Why a pod cannot run; the names are the `PodsHealthy` condition's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodIssue {
    /// `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`.
    ImagePullError,
    /// `PodScheduled=False` with reason `Unschedulable`.
    SchedulingError,
    /// A container was killed for exceeding its memory limit.
    OOMKilled,
    /// A container keeps exiting.
    CrashLoopBackOff,
}

impl PodIssue {
    /// The CamelCase reason.
    pub fn reason(self) -> &'static str {
        match self {
            PodIssue::ImagePullError => "ImagePullError",
            PodIssue::SchedulingError => "SchedulingError",
            PodIssue::OOMKilled => "OOMKilled",
            PodIssue::CrashLoopBackOff => "CrashLoopBackOff",
        }
    }
}

/// A failing pod and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// Pod name.
    pub pod: String,
    /// Classification.
    pub issue: PodIssue,
    /// Kubernetes' own message, if any.
    pub detail: String,
}

impl PodProblem {
    /// One sentence for conditions and events.
    pub fn message(&self) -> String {
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.detail)
        };
        format!(
            "pod {} cannot run ({}){detail}",
            self.pod,
            self.issue.reason()
        )
    }
}

/// The first pod with a problem, among pods older than `grace_seconds`.
pub fn first_problem(pods: &[Pod], now: DateTime<Utc>, grace_seconds: i64) -> Option<PodProblem> {
    pods.iter().find_map(|pod| {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let created = pod.metadata.creation_timestamp.as_ref()?;
        let age = now.timestamp() - created.0.as_second();
        if age < grace_seconds {
            return None;
        }
        let (issue, detail) = classify(pod)?;
        Some(PodProblem {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            issue,
            detail,
        })
    })
}

/// The issue of one pod, regardless of age.
pub fn classify(pod: &Pod) -> Option<(PodIssue, String)> {
    let status = pod.status.as_ref()?;
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        return Some((
            PodIssue::SchedulingError,
            c.message.clone().unwrap_or_default(),
        ));
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    containers.filter_map(container_issue).next()
}

fn container_issue(cs: &ContainerStatus) -> Option<(PodIssue, String)> {
    let oom = |t: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>| {
        t.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
    };
    let current = cs.state.as_ref();
    let last = cs.last_state.as_ref();
    if oom(current.and_then(|s| s.terminated.as_ref()))
        || oom(last.and_then(|s| s.terminated.as_ref()))
    {
        return Some((
            PodIssue::OOMKilled,
            format!("container {} exceeded its memory limit", cs.name),
        ));
    }
    let waiting = current.and_then(|s| s.waiting.as_ref())?;
    let detail = waiting
        .message
        .clone()
        .unwrap_or_else(|| format!("container {}", cs.name));
    match waiting.reason.as_deref()? {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
            Some((PodIssue::ImagePullError, detail))
        }
        "CrashLoopBackOff" => Some((PodIssue::CrashLoopBackOff, detail)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "status": status,
        }))
        .expect("pod json")
    }

    fn waiting(reason: &str) -> serde_json::Value {
        json!({"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
               "restartCount": 3, "state": {"waiting": {"reason": reason, "message": "m"}}}]})
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:10:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn classifies_each_failure() {
        let old = "2030-01-01T00:00:00Z";
        let cases = [
            (waiting("ImagePullBackOff"), PodIssue::ImagePullError),
            (waiting("ErrImagePull"), PodIssue::ImagePullError),
            (waiting("CrashLoopBackOff"), PodIssue::CrashLoopBackOff),
            (
                json!({"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 2,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                PodIssue::OOMKilled,
            ),
            (
                json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                       "message": "0/2 nodes are available"}]}),
                PodIssue::SchedulingError,
            ),
        ];
        for (status, want) in cases {
            let p = first_problem(&[pod("p", old, status)], now(), 120).expect("a problem");
            assert_eq!(p.issue, want);
            assert!(p.message().contains("pod p cannot run"));
        }
    }

    #[test]
    fn young_healthy_and_deleted_pods_are_ignored() {
        let young = pod("y", "2030-01-01T00:09:00Z", waiting("ImagePullBackOff"));
        assert_eq!(
            first_problem(&[young], now(), 120),
            None,
            "inside the grace period"
        );
        let running = pod(
            "r",
            "2030-01-01T00:00:00Z",
            json!({"containerStatuses": [{"name": "c", "image": "i",
            "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
        );
        assert_eq!(first_problem(&[running], now(), 120), None);
        let mut gone = pod("g", "2030-01-01T00:00:00Z", waiting("CrashLoopBackOff"));
        gone.metadata.deletion_timestamp = gone.metadata.creation_timestamp.clone();
        assert_eq!(first_problem(&[gone], now(), 120), None);
    }
}
