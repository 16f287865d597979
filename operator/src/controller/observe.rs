//! Reads what the phase machine needs: readiness of the environment, the setup Job, the client
//! pods, pod health and (while the load runs or drains) the live figures. Only objects this
//! PressureTest controls count: another object with a child's name is not its readiness. Only
//! pods of the current run count (`reconcile::run_scope`): a new run's proxy, sink and clients
//! are ready when pods of that run are.

use chrono::Utc;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
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
            obs.reading = Some(figures::read(&ctx.http, &ep, now.timestamp()).await);
        }
    }
    Ok(obs)
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
