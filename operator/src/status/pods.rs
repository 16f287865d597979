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
