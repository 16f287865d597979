//! Reads what the phase machine needs: readiness of the environment, the setup Job, the client
//! pods, pod health and (while the load runs or drains) the live figures. Only objects this
//! PressureTest controls count: another object with a child's name is not its readiness. Only
//! pods of the current run count (`reconcile::run_scope`): a new run's proxy, sink and clients
//! are ready when pods of that run are. Each reading also notes the proxy's scale (the HPA's
//! desired replicas and CPU, the Deployment's ready replicas) for the report's timeline.

use chrono::Utc;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use pressure_crds::aggregate::ProxyScale;
use pressure_crds::{Phase, PressureTest, PressureTestStatus};

use super::Context;
use super::ownership::ours;
use crate::Result;
use crate::figures::{self, Endpoints};
use crate::reconcile::{COMPONENT_LABEL, TENANT_LABEL, TEST_LABEL, names, run_scope};
use crate::status::{JobState, Observed, pods};

/// One observation of the PressureTest `name` in `ns`.
pub async fn observe(
    ctx: &Context,
    pt: &PressureTest,
    ns: &str,
    name: &str,
    uid: &str,
    prev: &PressureTestStatus,
) -> Result<Observed> {
    let now = Utc::now();
    let phase = prev.phase.unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let run_id = prev.run_id.as_deref();
    let mut pods = pods_api
        .list(&ListParams::default().labels(&format!("{TEST_LABEL}={name}")))
        .await?
        .items;
    // A pod of an earlier run (terminating, or not yet replaced by the rollout) counts for
    // nothing: not its health, readiness or figures.
    pods.retain(|p| run_scope::of_run(p, run_id));
    let mut obs = Observed {
        now,
        generation: pt.metadata.generation,
        env_waiting: Vec::new(),
        setup: JobState::Absent,
        clients_ready: 0,
        clients_desired: pt.spec.tenants.iter().map(|t| t.clients).sum(),
        pod_problem: pods::first_problem(
            &pods,
            now,
            i64::from(pt.spec.timeouts.pod_start_grace_seconds),
        ),
        reading: None,
        fresh_run_id: format!("{name}-{:08x}", rand::random::<u32>()),
    };
    if phase == Phase::Pending {
        return Ok(obs);
    }
    obs.env_waiting = env_waiting(ctx, pt, ns, name, uid, &deployments).await?;
    for component in ["proxy", "sink"] {
        // Ready by its Deployment, and by a pod of this run (a new run rolls them out afresh).
        if !obs.env_waiting.iter().any(|w| w == component)
            && ready_pods(&pods, COMPONENT_LABEL, component) == 0
        {
            obs.env_waiting.push(component.to_string());
        }
    }
    if phase == Phase::SettingUp {
        obs.setup = job_state(ctx, ns, name, uid).await?;
    }
    if prev.load_start_at.is_some() {
        for t in &pt.spec.tenants {
            let d = ours(
                deployments.get_opt(&names::client(name, &t.name)).await?,
                uid,
            );
            let by_deployment = d
                .and_then(|d| d.status)
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let of_run = ready_pods(&pods, TENANT_LABEL, &t.name);
            obs.clients_ready += by_deployment.min(of_run as i32);
        }
    }
    let reading = matches!(phase, Phase::Running | Phase::Analyzing);
    let aborting = pt.spec.abort && prev.load_start_at.is_some();
    if reading || aborting {
        let found = endpoints(&pods);
        let tenants: Vec<String> = pt.spec.tenants.iter().map(|t| t.name.clone()).collect();
        let mut ep = ctx.overrides.apply(found, &tenants);
        if pt.spec.sink.kind.is_catcher() {
            // A mail catcher answers its message count only, on its own API.
            ep.catcher = ep.sink.take();
        }
        if aborting {
            // Before the reading, so that the reading after this one closes the window.
            let stopped = figures::stop_clients(&ctx.http, &ep).await;
            tracing::info!(
                stopped,
                clients = ep.clients.len(),
                "Aborting: clients told to stop."
            );
        }
        if reading {
            let mut r = figures::read(&ctx.http, &ep, now.timestamp()).await;
            let deployment = ours(deployments.get_opt(&names::proxy(name)).await?, uid);
            let hpa = if pt.spec.proxy.hpa.enabled {
                let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
                ours(api.get_opt(&names::proxy(name)).await?, uid)
            } else {
                None
            };
            r.proxy_scale = proxy_scale(deployment.as_ref(), hpa.as_ref());
            obs.reading = Some(r);
        }
    }
    Ok(obs)
}

/// The proxy's scale from its Deployment and HPA (either may be absent).
fn proxy_scale(
    deployment: Option<&Deployment>,
    hpa: Option<&HorizontalPodAutoscaler>,
) -> ProxyScale {
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    let status = hpa.and_then(|h| h.status.as_ref());
    let cpu = status
        .and_then(|s| s.current_metrics.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == "cpu")
        .and_then(|r| r.current.average_utilization);
    ProxyScale {
        // An HPA that has not acted yet reports 0 desired replicas: not known yet.
        desired_replicas: count(status.map(|s| s.desired_replicas)).filter(|&n| n > 0),
        ready_replicas: count(
            deployment
                .and_then(|d| d.status.as_ref())
                .map(|s| s.ready_replicas.unwrap_or(0)),
        ),
        cpu_percent: count(cpu),
    }
}

async fn env_waiting(
    ctx: &Context,
    pt: &PressureTest,
    ns: &str,
    name: &str,
    uid: &str,
    deployments: &Api<Deployment>,
) -> Result<Vec<String>> {
    let mut waiting = Vec::new();
    let sts: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let pg_ready = ours(sts.get_opt(&names::postgres(name)).await?, uid)
        .and_then(|s| s.status)
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if pg_ready < 1 {
        waiting.push("postgres".to_string());
    }
    let mut wanted = vec![("proxy", names::proxy(name)), ("sink", names::sink(name))];
    if pt.spec.prometheus.enabled {
        wanted.push(("prometheus", names::prometheus(name)));
    }
    if pt.spec.grafana.enabled {
        wanted.push(("grafana", names::grafana(name)));
    }
    for (what, obj) in wanted {
        let ready = ours(deployments.get_opt(&obj).await?, uid)
            .and_then(|d| d.status)
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready < 1 {
            waiting.push(what.to_string());
        }
    }
    Ok(waiting)
}

async fn job_state(ctx: &Context, ns: &str, name: &str, uid: &str) -> Result<JobState> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let Some(job) = ours(jobs.get_opt(&names::setup(name)).await?, uid) else {
        return Ok(JobState::Absent);
    };
    let status = job.status.unwrap_or_default();
    let failed = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    Ok(if status.succeeded.unwrap_or(0) > 0 {
        JobState::Succeeded
    } else if failed {
        JobState::Failed
    } else {
        JobState::Running
    })
}

/// Ready pods among `pods` whose label `key` is `value`.
fn ready_pods(pods: &[Pod], key: &str, value: &str) -> usize {
    pods.iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.get(key).map(String::as_str) == Some(value))
        })
        .filter(|p| run_scope::is_ready(p))
        .count()
}

/// Figure endpoints from running pods with an IP.
pub fn endpoints(pods: &[Pod]) -> Endpoints {
    let mut ep = Endpoints::default();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        match labels.get(COMPONENT_LABEL).map(String::as_str) {
            Some("proxy") => ep
                .proxy
                .push(format!("http://{ip}:{}", crate::reconcile::proxy::PORT)),
            Some("client") => {
                if let Some(t) = labels.get(TENANT_LABEL) {
                    ep.clients.push((
                        t.clone(),
                        format!("http://{ip}:{}", crate::reconcile::clients::PORT),
                    ));
                }
            }
            Some("sink") => {
                ep.sink = Some(format!("http://{ip}:{}", crate::reconcile::sink::HTTP_PORT));
            }
            _ => {}
        }
    }
    ep
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::autoscaling::v2::{
        HorizontalPodAutoscalerStatus, MetricStatus, MetricValueStatus, ResourceMetricStatus,
    };

    use super::*;

    fn hpa(desired: i32, cpu: Option<i32>) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            status: Some(HorizontalPodAutoscalerStatus {
                desired_replicas: desired,
                current_metrics: cpu.map(|c| {
                    vec![MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: "cpu".into(),
                            current: MetricValueStatus {
                                average_utilization: Some(c),
                                ..MetricValueStatus::default()
                            },
                        }),
                        ..MetricStatus::default()
                    }]
                }),
                ..HorizontalPodAutoscalerStatus::default()
            }),
            ..HorizontalPodAutoscaler::default()
        }
    }

    #[test]
    fn the_scale_comes_from_the_hpa_status_and_the_deployment() {
        let d = Deployment {
            status: Some(DeploymentStatus {
                ready_replicas: Some(2),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        let scale = proxy_scale(Some(&d), Some(&hpa(3, Some(84))));
        assert_eq!(
            scale,
            ProxyScale {
                desired_replicas: Some(3),
                ready_replicas: Some(2),
                cpu_percent: Some(84),
            }
        );
        // No metrics yet (metrics-server has not answered) and no decision yet: unknown.
        let early = proxy_scale(None, Some(&hpa(0, None)));
        assert_eq!(early, ProxyScale::default());
        // A Deployment without ready pods reports none: zero ready, not unknown.
        let none_ready = Deployment {
            status: Some(DeploymentStatus::default()),
            ..Deployment::default()
        };
        assert_eq!(proxy_scale(Some(&none_ready), None).ready_replicas, Some(0));
    }
}
