//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one replica reconciles.
//! This loop is small: renew every third of the lease duration, take over a lease whose holder
//! stopped renewing, and stop working when the lease is lost. [`decide`] is the pure part.
//!
//! Leadership is a deadline, not a flag: a renewal that succeeds makes this replica the leader
//! until the renew deadline (two thirds of the lease duration) counted from when the renewal
//! *started*, which is before any other replica may take the lease over. Each lease call is
//! bounded by that deadline (kube's client has no read timeout, so a call on a half-dead
//! connection would otherwise hang for good), the work is stopped when the deadline passes
//! without a renewal, and [`Leadership::is_leading`] lets the reconciler check before it writes:
//! a replica that was paused (SIGSTOP, a frozen VM, a long GC) resumes as a follower.
//!
//! Why no crate (issue 16, item 5). `kube-leader-election` needs kube 4. `kube-lease-manager`
//! 0.13.1 (kube ^5 with only its `client` feature, k8s-openapi ^0.29) was tried and left out:
//! - The build is not the problem: it compiles with our kube features, brings no TLS stack
//!   (openssl stays the only one) and no second kube or k8s-openapi. `cargo tree -p
//!   pressure-operator -d` gains only `rand` 0.10, `rand_core` 0.10 and `getrandom` 0.4 next to
//!   our 0.9/0.9/0.3 (Cargo.lock also gains `chacha20` and `cpufeatures` 0.3).
//! - Its leadership is "the last read of the Lease names me", not a deadline. No lease call is
//!   bounded, and `watch()` sends `false` only once a call returns showing another holder; a
//!   failed call is logged and retried after a 1-30 s backoff with the channel still `true`. Run
//!   against the mock API server with the renewal PATCH never answered, it still reported
//!   leading 120 s later on a 15 s lease: the case
//!   `a_renewal_stuck_in_the_api_call_stops_the_work_before_the_lease_runs_out` and the e2e
//!   `a_leader_whose_renewal_hangs_stops_before_another_may_take_the_lease` exist for. It exposes
//!   neither the renew time nor the expiry, so [`Leadership`] cannot be rebuilt on top of it.
//! - It writes with PATCH (server-side apply to acquire, strategic merge to renew, without a
//!   resourceVersion precondition), and a follower takes an expired lease by first clearing its
//!   holder. The leader-election Role grants `get`/`update` (`rbac.rs`, `rbac.yaml`, the chart,
//!   checked verb by verb by `e2e_rbac.rs`), so it would need `patch` there too.
//! - What it has and this loop lacks: a release of the lease on shutdown (when its channel
//!   closes). Here a stopped leader's lease runs out after `--lease-seconds`.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

/// What to do with the lease on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Its holder stopped renewing: take it over.
    TakeOver,
    /// Someone else holds a live lease.
    Wait,
}

/// Decides from the lease's spec, our identity and the time (Unix seconds).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: i64, default_duration: i64) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Decision::Renew;
    }
    let duration = spec
        .lease_duration_seconds
        .map_or(default_duration, i64::from);
    let renewed = spec.renew_time.as_ref().map_or(0, |t| t.0.as_second());
    if holder.is_empty() || now > renewed + duration {
        Decision::TakeOver
    } else {
        Decision::Wait
    }
}

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// Our identity.
    pub identity: String,
    /// Seconds the lease is valid without renewal.
    pub duration_seconds: u32,
}

/// Until when this replica may act as the leader; shared by the lease loop and the reconciler.
#[derive(Debug, Default)]
pub struct Leadership {
    until: Mutex<Option<Instant>>,
}

impl Leadership {
    /// Not leading.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this replica leads now (a renewal has been confirmed within the renew deadline).
    pub fn is_leading(&self) -> bool {
        self.deadline().is_some_and(|until| Instant::now() < until)
    }

    /// The end of the current leadership, if any.
    pub fn deadline(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leads until `until`.
    pub fn lead_until(&self, until: Instant) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    /// Stops leading.
    pub fn end(&self) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// How long a renewal stays good: two thirds of the lease, as client-go's default (15 s lease,
/// 10 s renew deadline), so a replica stops before any other may take over.
pub fn renew_deadline(duration_seconds: u32) -> Duration {
    Duration::from_millis(u64::from(duration_seconds.max(3)) * 1000 * 2 / 3)
}

/// One tick: acquires or renews; `Ok(true)` when we hold the lease afterwards.
pub async fn tick(client: &Client, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let current = api.get_opt(&cfg.name).await?;
    let now = Timestamp::now();
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let decision = decide(
        spec,
        &cfg.identity,
        now.as_second(),
        i64::from(cfg.duration_seconds),
    );
    let mut lease = current.clone().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            namespace: Some(cfg.namespace.clone()),
            ..Default::default()
        },
        spec: None,
    });
    let mut s = lease.spec.clone().unwrap_or_default();
    match decision {
        Decision::Wait => return Ok(false),
        Decision::Renew => s.renew_time = Some(MicroTime(now)),
        Decision::Create | Decision::TakeOver => {
            s.holder_identity = Some(cfg.identity.clone());
            s.lease_duration_seconds = Some(cfg.duration_seconds as i32);
            s.acquire_time = Some(MicroTime(now));
            s.renew_time = Some(MicroTime(now));
            let transitions = s.lease_transitions.unwrap_or(0);
            s.lease_transitions = Some(if decision == Decision::TakeOver {
                transitions + 1
            } else {
                transitions
            });
        }
    }
    lease.spec = Some(s);
    let result = if decision == Decision::Create {
        api.create(&PostParams::default(), &lease).await
    } else {
        // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
        api.replace(&cfg.name, &PostParams::default(), &lease).await
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `work` while this replica holds the lease; restarts it when leadership returns.
/// `leadership` says, to whoever shares it, until when this replica leads.
pub async fn run_elected<F, Fut>(
    client: Client,
    cfg: LeaseConfig,
    leadership: std::sync::Arc<Leadership>,
    work: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let period = Duration::from_secs(u64::from(cfg.duration_seconds.max(3) / 3));
    let deadline = renew_deadline(cfg.duration_seconds);
    let mut task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let started = Instant::now();
        // A call never outlives the renew deadline, nor the current leadership.
        let limit = leadership
            .deadline()
            .filter(|_| task.is_some())
            .map_or(started + deadline, |until| until.min(started + deadline));
        match tokio::time::timeout_at(limit, tick(&client, &cfg)).await {
            Ok(Ok(true)) => leadership.lead_until(started + deadline),
            Ok(Ok(false)) => leadership.end(),
            Ok(Err(e)) => {
                tracing::warn!(lease = %cfg.name, error = %e, "Lease update failed.");
            }
            Err(_) => {
                tracing::warn!(lease = %cfg.name, "Lease update timed out.");
            }
        }
        let leading = leadership.is_leading();
        match (&task, leading) {
            (None, true) => {
                tracing::info!(lease = %cfg.name, identity = %cfg.identity, "Became leader; reconciling.");
                task = Some(tokio::spawn(work()));
            }
            (Some(_), false) => {
                tracing::warn!(lease = %cfg.name, identity = %cfg.identity, "Lost the lease; stopping reconciles.");
                leadership.end();
                if let Some(t) = task.take() {
                    t.abort();
                }
            }
            _ => {}
        }
        // Wake for the next renewal, or at the end of the leadership if that comes first.
        let mut wake = started + period;
        if let Some(until) = leadership.deadline().filter(|_| task.is_some()) {
            wake = wake.min(until);
        }
        tokio::time::sleep_until(wake).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).expect("valid"))),
            ..LeaseSpec::default()
        }
    }

    fn cfg() -> LeaseConfig {
        LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            duration_seconds: 15,
        }
    }

    #[tokio::test]
    async fn tick_creates_a_missing_lease_and_leads() {
        let (ctx, mut server) = crate::fixtures::mock_context();
        let script = async {
            let get = server.next(|_| crate::fixtures::not_found()).await;
            assert_eq!(
                get.uri,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
            );
            let create = server.next(|c| (201, c.body.clone())).await;
            assert_eq!(create.method, "POST");
            assert_eq!(
                create.body["spec"]["holderIdentity"],
                serde_json::json!("me")
            );
            assert_eq!(
                create.body["spec"]["leaseDurationSeconds"],
                serde_json::json!(15)
            );
        };
        let client = ctx.client.clone();
        let leading = crate::fixtures::scenario(
            async move { tick(&client, &cfg()).await.map_err(|e| e.to_string()) },
            script,
        )
        .await;
        assert_eq!(leading, Ok(true));
    }

    #[tokio::test]
    async fn tick_waits_while_another_holder_renews() {
        let (ctx, mut server) = crate::fixtures::mock_context();
        let script = async {
            server
                .next(|_| {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some("l".into()),
                            ..Default::default()
                        },
                        spec: Some(spec("other", Timestamp::now().as_second())),
                    };
                    (200, serde_json::to_value(lease).expect("json"))
                })
                .await;
        };
        let client = ctx.client.clone();
        let leading = crate::fixtures::scenario(
            async move { tick(&client, &cfg()).await.map_err(|e| e.to_string()) },
            script,
        )
        .await;
        assert_eq!(
            leading,
            Ok(false),
            "no write while another replica holds a live lease"
        );
    }

    /// Sets a flag when dropped: the work future was stopped.
    struct Stopped(std::sync::Arc<tokio::sync::Notify>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.notify_one();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_stuck_in_the_api_call_stops_the_work_before_the_lease_runs_out() {
        let (ctx, mut server) = crate::fixtures::mock_context();
        let stopped = std::sync::Arc::new(tokio::sync::Notify::new());
        let guard = stopped.clone();
        let leadership = std::sync::Arc::new(Leadership::new());
        let elected = tokio::spawn(run_elected(
            ctx.client.clone(),
            cfg(),
            leadership.clone(),
            move || {
                let guard = Stopped(guard.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            },
        ));
        server.next(|_| crate::fixtures::not_found()).await;
        server.next(|c| (201, c.body.clone())).await;
        // The next renewal's GET never gets an answer, like a call stuck on a half-dead
        // connection (kube's default read timeout is 295 s). Another replica may take the lease
        // 15 s after the last renewal: the work must have stopped by then.
        let (_stuck, _never_answered) = server.0.next_request().await.expect("renewal");
        let renewed_at = tokio::time::Instant::now() - Duration::from_secs(5);
        tokio::time::timeout(Duration::from_secs(60), stopped.notified())
            .await
            .expect("the work is stopped while the renewal hangs");
        assert!(
            tokio::time::Instant::now() < renewed_at + Duration::from_secs(15),
            "stopped {:?} after the last renewal",
            tokio::time::Instant::now() - renewed_at
        );
        assert!(!leadership.is_leading(), "the reconciler sees it too");
        elected.abort();
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "a", 100, 15), Decision::Create);
        assert_eq!(decide(Some(&spec("a", 0)), "a", 100, 15), Decision::Renew);
        assert_eq!(decide(Some(&spec("b", 90)), "a", 100, 15), Decision::Wait);
        assert_eq!(
            decide(Some(&spec("b", 80)), "a", 100, 15),
            Decision::TakeOver
        );
        assert_eq!(
            decide(Some(&spec("", 99)), "a", 100, 15),
            Decision::TakeOver
        );
    }
}
