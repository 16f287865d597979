//! Waits with deadlines: on one object through a watch ([`await_condition`]), on a PressureTest's
//! status, or by polling anything. A missed deadline is an error that says what was awaited and
//! shows the object's last status.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::{Condition, await_condition};
use pressure_crds::{ConditionStatus, PressureTest};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Waits until `cond` holds for the object `name` (watched), at most `timeout`.
pub async fn wait_until<K>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: impl Condition<K>,
) -> anyhow::Result<Option<K>>
where
    K: Resource + Clone + Debug + DeserializeOwned + Serialize + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(found) => Ok(found?),
        Err(_) => {
            let last = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|o| serde_json::to_value(&o).ok())
                .map(|v| v.get("status").cloned().unwrap_or(v))
                .map_or_else(|| "absent".to_string(), |v| v.to_string());
            bail!("timed out after {timeout:?} waiting for {what} ({name}); last status: {last}")
        }
    }
}

/// Waits until the PressureTest `name` satisfies `cond`, and returns it.
pub async fn wait_pt(
    api: &Api<PressureTest>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&PressureTest) -> bool + Send + 'static,
) -> anyhow::Result<PressureTest> {
    let found = wait_until(
        api.clone(),
        name,
        timeout,
        what,
        move |o: Option<&PressureTest>| o.is_some_and(&cond),
    )
    .await?;
    found.ok_or_else(|| anyhow::anyhow!("PressureTest {name} vanished while waiting for {what}"))
}

/// Calls `probe` every `every` until it returns `Some`, at most `timeout`; the error names `what`
/// and the last `Err` the probe returned.
pub async fn poll<T, F, Fut>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = String::from("none");
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = format!("{e:#}"),
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last error: {last_error}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Status and reason of the condition `type_`, if set.
pub fn condition(pt: &PressureTest, type_: &str) -> Option<(ConditionStatus, String)> {
    let c = pt.status.as_ref()?.condition(type_)?;
    Some((c.status, c.reason.clone()))
}

/// Whether the run has the condition `Complete=True`.
pub fn is_complete(pt: &PressureTest) -> bool {
    condition(pt, "Complete").is_some_and(|(s, _)| s == ConditionStatus::True)
}
