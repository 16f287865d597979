//! The kube-runtime controller: [`reconcile()`] observes the children, advances the pure phase
//! machine, applies the desired objects with server-side apply, writes the status and publishes
//! an event on each phase change; [`run`] wires the HTTP server, leader election and the
//! controller together.
//!
//! Two guards come before every write: the replica must still lead (its last lease renewal is
//! within the renew deadline), and every child name must be free or held by this PressureTest
//! (`ownership`); otherwise the run waits, with a `ChildrenOwned=False` condition and a Warning
//! event, and nothing is applied.

pub mod apply;
pub mod observe;
pub mod ownership;
pub mod ttl;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use pressure_crds::{KeepPolicy, Phase, PressureTest};
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tracing::instrument;

use crate::figures::Overrides;
use crate::health::{self, HealthState};
use crate::lease::{self, Leadership, LeaseConfig};
use crate::metrics::Metrics;
use crate::reconcile::{self, pt_name};
use crate::status::{self, Transition, conditions};
use crate::{Args, Error, Result};
use ttl::Expiry;

/// Server-side applies in flight at once during a reconcile.
const APPLY_CONCURRENCY: usize = 8;

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes events (events.k8s.io/v1).
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Metrics,
    /// HTTP client for figure reads.
    pub http: reqwest::Client,
    /// TEST ONLY endpoint overrides.
    pub overrides: Overrides,
    /// The operator's own pods, admitted by the clients' NetworkPolicy.
    pub operator: reconcile::OperatorPeer,
    /// Until when this replica leads; checked before each write.
    pub leadership: Arc<Leadership>,
    /// The timelines of the runs in progress, for their reports.
    pub timelines: crate::report::Timelines,
}

impl Context {
    /// `Err(NotLeader)` once this replica's leadership has run out.
    fn still_leading(&self) -> Result<()> {
        if self.leadership.is_leading() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }
}

/// Reconciles one PressureTest.
#[instrument(skip(pt, ctx), fields(namespace = pt.namespace().unwrap_or_default(), name = %pt.name_any()))]
pub async fn reconcile(pt: Arc<PressureTest>, ctx: Arc<Context>) -> Result<Action> {
    ctx.metrics.reconciles.inc();
    let started = Instant::now();
    let result = match latest(&ctx.client, &pt).await {
        Ok(Some(current)) => reconcile_inner(&current, &ctx).await,
        Ok(None) => Ok(Action::await_change()),
        Err(e) => Err(e),
    };
    ctx.metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    result
}

/// The PressureTest as stored now. The copy the controller hands over comes from its watch cache,
/// which can lag behind the status the previous reconcile wrote; deciding from such a copy would
/// redo a step (a second run id, a second load window and a restart of every client), so each
/// reconcile starts from a fresh read. `None` once it is deleted.
async fn latest(client: &Client, pt: &PressureTest) -> Result<Option<PressureTest>> {
    let ns = pt
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<PressureTest> = Api::namespaced(client.clone(), &ns);
    Ok(api.get_opt(&pt_name(pt)?).await?)
}

async fn reconcile_inner(pt: &PressureTest, ctx: &Context) -> Result<Action> {
    let ns = pt
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = pt_name(pt)?;
    let uid = apply::uid(pt)?;
    let prev = pt.status.clone().unwrap_or_default();
    if prev.phase.is_some_and(Phase::is_terminal)
        && status::rerun::wanted(pt.spec.run_number, &prev)
    {
        return rerun(ctx, pt, &prev, &ns, &name).await;
    }
    if prev.phase.is_some_and(Phase::is_terminal) {
        ctx.still_leading()?;
        if pt.spec.keep_on_finish == KeepPolicy::ResultsOnly {
            // Objects left alone were announced by the cleanup at the end of the run.
            apply::cleanup(&ctx.client, &ns, &name, pt).await?;
        }
        if prev.observed_generation != pt.metadata.generation {
            let mut s = prev.clone();
            s.observed_generation = pt.metadata.generation;
            apply::patch_status(&ctx.client, &ns, &name, &s).await?;
        }
        report_target(ctx, pt, &ns, &name, &uid)
            .retain(&prev)
            .await?;
        return expire(ctx, pt, &prev, &ns, &name, &uid).await;
    }
    let secrets = apply::secret_values(&ctx.client, &ns, &name, &uid).await?;
    let observed = observe::observe(ctx, pt, &ns, &name, &uid, &prev).await?;
    let (mut next, transition) = status::advance(&pt.spec, &prev, &observed);
    let mut with_next = pt.clone();
    with_next.status = Some(next.clone());
    let children = reconcile::desired(&with_next, &secrets, &ctx.operator)?;
    let (client, ns_ref, uid_ref) = (&ctx.client, ns.as_str(), uid.as_str());
    let mut foreign: Vec<String> = futures_util::stream::iter(children.iter().cloned())
        .map(|child| async move { ownership::foreign(client, ns_ref, uid_ref, &child).await })
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect::<Vec<Option<String>>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    foreign.sort();
    let now = status::rfc3339(observed.now);
    if !foreign.is_empty() {
        // Nothing is applied and the phase holds: the environment would not be the one the spec
        // describes (a proxy reading another team's credentials, a foreign Deployment counted as
        // ready). The run resumes once the name is free.
        let mut held = prev.clone();
        held.phase = Some(prev.phase.unwrap_or_default());
        held.observed_generation = pt.metadata.generation;
        let new = ownership::report(&mut held, &foreign, &now, pt.metadata.generation);
        ctx.still_leading()?;
        if let Some(message) = new {
            tracing::warn!(objects = ?foreign, "Child names held by objects this PressureTest does not control; leaving them alone.");
            publish(
                ctx,
                pt,
                EventType::Warning,
                ownership::FOREIGN_OBJECT,
                &message,
                "Refuse",
            )
            .await;
        }
        apply::patch_status(&ctx.client, &ns, &name, &held).await?;
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    ownership::report(&mut next, &[], &now, pt.metadata.generation);
    ctx.still_leading()?;
    // Children are independent objects: applying them concurrently builds an environment in
    // one round of API calls instead of one per child.
    futures_util::stream::iter(children)
        .map(|child| apply::apply(&ctx.client, &ns, child))
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    if pt.metadata.generation != prev.observed_generation {
        let kept = apply::prune(&ctx.client, &ns, &name, pt).await?;
        announce_kept(ctx, pt, &kept, "Prune").await;
    }
    // The report before the status that names it: a verdict is published with its report, or
    // not at all (the next reconcile judges again and writes both).
    let written = report_target(ctx, pt, &ns, &name, &uid)
        .update(&mut next, observed.reading.as_ref())
        .await;
    if let Err(e) = written {
        if next.phase.is_some_and(Phase::is_terminal) {
            return Err(e);
        }
        tracing::warn!(error = %e, "The report's timeline could not be written; trying again at the next reading.");
    }
    // The event goes out before the status that shows the new phase: whoever waits for the
    // phase (`kubectl wait --for=condition=Complete`) then finds the event that explains it.
    if let Some(t) = &transition {
        announce(ctx, pt, t).await;
    }
    ctx.still_leading()?;
    apply::patch_status(&ctx.client, &ns, &name, &next).await?;
    if transition.is_some_and(|t| t.to.is_terminal()) {
        let verdict = next
            .condition(conditions::SUCCEEDED)
            .map_or("Unknown", |c| c.reason.as_str());
        ctx.metrics.finished(verdict);
        if pt.spec.keep_on_finish == KeepPolicy::ResultsOnly {
            let kept = apply::cleanup(&ctx.client, &ns, &name, pt).await?;
            announce_kept(ctx, pt, &kept, "Cleanup").await;
        }
        // The next reconcile deletes it if its TTL is due (0 s: at once).
        return Ok(match ttl::expiry(&pt.spec, &next, observed.now) {
            Expiry::Keep => Action::await_change(),
            Expiry::In(left) => Action::requeue(left),
            Expiry::Due => Action::requeue(Duration::from_millis(100)),
        });
    }
    Ok(requeue(next.phase.unwrap_or_default()))
}

/// A new run on the finished PressureTest (`spec.runNumber` changed): the finished run goes to
/// `status.history` and the status starts over; the next reconcile starts the run, rolling the
/// proxy, the sink and the clients out afresh. A `Rerun` event says so.
async fn rerun(
    ctx: &Context,
    pt: &PressureTest,
    prev: &pressure_crds::PressureTestStatus,
    ns: &str,
    name: &str,
) -> Result<Action> {
    ctx.still_leading()?;
    let next = status::rerun::start_over(prev, pt.spec.run_number);
    let note = format!(
        "run {} requested: a new run on the same environment; run {} ({}) is kept in status.history",
        pt.spec.run_number,
        prev.run_number.unwrap_or(0),
        prev.run_id.as_deref().unwrap_or("?")
    );
    tracing::info!(run = pt.spec.run_number, "New run requested.");
    publish(ctx, pt, EventType::Normal, "Rerun", &note, "Rerun").await;
    apply::patch_status(&ctx.client, ns, name, &next).await?;
    Ok(Action::requeue(Duration::from_millis(100)))
}

fn report_target<'a>(
    ctx: &'a Context,
    pt: &'a PressureTest,
    ns: &'a str,
    name: &'a str,
    uid: &'a str,
) -> crate::report::Target<'a> {
    crate::report::Target {
        client: &ctx.client,
        timelines: &ctx.timelines,
        pt,
        ns,
        name,
        uid,
    }
}

/// A finished run: deleted once its `ttlSecondsAfterFinished` has run out (an event says so
/// first), otherwise looked at again when it will have.
async fn expire(
    ctx: &Context,
    pt: &PressureTest,
    status: &pressure_crds::PressureTestStatus,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Action> {
    match ttl::expiry(&pt.spec, status, chrono::Utc::now()) {
        Expiry::Keep => Ok(Action::await_change()),
        Expiry::In(left) => Ok(Action::requeue(left)),
        Expiry::Due => {
            ctx.still_leading()?;
            let ttl = pt.spec.ttl_seconds_after_finished.unwrap_or(0);
            let note = format!(
                "ttlSecondsAfterFinished ({ttl} s) has run out: deleting the PressureTest and everything it owns"
            );
            publish(ctx, pt, EventType::Normal, "Expired", &note, "Delete").await;
            tracing::info!(ttl, "TTL after finish ran out; deleting the PressureTest.");
            apply::delete_pressuretest(&ctx.client, ns, name, uid).await?;
            Ok(Action::await_change())
        }
    }
}

/// How soon to look again: often while things move, never once terminal.
fn requeue(phase: Phase) -> Action {
    match phase {
        Phase::Succeeded | Phase::Failed => Action::await_change(),
        Phase::Running => Action::requeue(Duration::from_secs(10)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

async fn announce(ctx: &Context, pt: &PressureTest, t: &Transition) {
    let type_ = if t.is_warning() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    if t.is_warning() {
        tracing::warn!(from = ?t.from, to = ?t.to, reason = %t.reason, message = %t.message, "Run failed.");
    } else {
        tracing::info!(from = ?t.from, to = ?t.to, reason = %t.reason, message = %t.message, "Phase changed.");
    }
    publish(
        ctx,
        pt,
        type_,
        &t.reason,
        &t.message,
        &format!("{:?}", t.to),
    )
    .await;
}

/// A Warning event naming the objects a prune or cleanup did not delete because this PressureTest
/// does not control them (once per prune, which runs once per generation, and once per cleanup
/// at the end of the run).
async fn announce_kept(ctx: &Context, pt: &PressureTest, kept: &[String], action: &str) {
    if kept.is_empty() {
        return;
    }
    let message = ownership::kept_message(kept);
    publish(
        ctx,
        pt,
        EventType::Warning,
        ownership::FOREIGN_OBJECT,
        &message,
        action,
    )
    .await;
}

/// Publishes an event about `pt`; a failure is logged, not fatal.
async fn publish(
    ctx: &Context,
    pt: &PressureTest,
    type_: EventType,
    reason: &str,
    note: &str,
    action: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &pt.object_ref(&())).await {
        tracing::warn!(error = %e, "Publishing an event failed.");
    }
}

/// Counts the failure and retries later.
pub fn error_policy(pt: Arc<PressureTest>, error: &Error, ctx: Arc<Context>) -> Action {
    if matches!(error, Error::NotLeader) {
        tracing::info!(name = %pt.name_any(), "Not the leader any more; reconcile stopped before writing.");
        return Action::await_change();
    }
    ctx.metrics.failed(error);
    tracing::warn!(name = %pt.name_any(), error = %error, "Reconcile failed; retrying in 15s.");
    Action::requeue(Duration::from_secs(15))
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let overrides = match &args.endpoint_override {
        Some(text) => {
            tracing::warn!(overrides = %text, "TEST ONLY endpoint overrides in use: figures come from these URLs.");
            Overrides::parse(text)?
        }
        None => Overrides::default(),
    };
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("connecting to the Kubernetes API failed (is KUBECONFIG set?): {e}")
    })?;
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "Serving /metrics, /healthz and /readyz.");
    let state = HealthState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) =
            health::serve(listener, state, mailproxy_proto::signals::stop_signal()).await
        {
            tracing::error!(error = %e, "HTTP server failed.");
        }
    });
    let pts: Api<PressureTest> = Api::all(client.clone());
    pts.list(&ListParams::default().limit(1)).await.map_err(|e| {
        anyhow::anyhow!("the PressureTest CRD is not installed or not readable ({e}); apply charts/pressure-crds/crds/pressuretests.yaml")
    })?;
    ready.store(true, Ordering::Relaxed);
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let lease_ns = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let cfg = LeaseConfig {
        name: args.lease_name.clone(),
        namespace: lease_ns,
        identity: identity.clone(),
        duration_seconds: args.lease_seconds,
    };
    let reporter = Reporter {
        controller: reconcile::MANAGER.into(),
        instance: Some(identity),
    };
    let leadership = Arc::new(Leadership::new());
    let ctx = Arc::new(Context {
        leadership: leadership.clone(),
        timelines: crate::report::Timelines::default(),
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        http: crate::figures::http_client()?,
        overrides,
        operator: reconcile::OperatorPeer {
            namespace: Some(
                args.operator_namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            ),
            pod_labels: args.operator_pod_labels.clone(),
        },
    });
    let watch_ns = args.watch_namespace.clone();
    let elected = lease::run_elected(client.clone(), cfg, leadership, move || {
        run_controller(ctx.clone(), watch_ns.clone())
    });
    tokio::select! {
        () = elected => {}
        () = mailproxy_proto::signals::stop_signal() => tracing::info!("Shutting down."),
    }
    Ok(())
}

/// The controller proper; runs until aborted (lost lease) or the watch ends.
async fn run_controller(ctx: Arc<Context>, namespace: Option<String>) {
    let client = ctx.client.clone();
    let scoped = |c: Client| -> (
        Api<PressureTest>,
        Api<Deployment>,
        Api<StatefulSet>,
        Api<Job>,
    ) {
        match &namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c, ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c),
            ),
        }
    };
    let (pts, deployments, statefulsets, jobs) = scoped(client);
    let (reader, writer) = reflector::store();
    // Only spec changes trigger from the PressureTest itself: our own status writes must not.
    let trigger = watcher(pts, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=pressure-operator");
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "Controller starting."
    );
    Controller::for_stream(trigger, reader)
        .owns(deployments, owned.clone())
        .owns(statefulsets, owned.clone())
        .owns(jobs, owned)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(object = %obj.name, "Reconciled."),
                Err(e) => tracing::debug!(error = %e, "Reconcile loop error."),
            }
        })
        .await;
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pressure-operator-{}", rand::random::<u32>()))
}

#[cfg(test)]
#[path = "controller/tests.rs"]
mod tests;
