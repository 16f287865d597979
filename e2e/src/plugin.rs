//! `kubectl pressure` (the `kubectl-pressure` binary built beside the others), run against the
//! test cluster (`KUBECONFIG`) in a test's namespace.

use std::process::Output;

use crate::procs::binary;

/// Runs `kubectl-pressure -n ns args…` and returns its exit code, stdout and stderr.
pub async fn kubectl_pressure(ns: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out: Output = tokio::process::Command::new(binary("kubectl-pressure")?)
        .arg("-n")
        .arg(ns)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
