//! Harness of the end-to-end tests: `pressure-operator` against a real API server (the local
//! control plane of `e2e/control-plane.sh`, kwok standing in for nodes). Run the suite with
//! `e2e/run.sh DIR` (or `./scripts/test.sh`); `cargo test -p e2e` alone needs `KUBECONFIG`.
//!
//! Modules:
//! - [`cluster`]: the environment (`KUBECONFIG`, `E2E_KUBECTL`), the kube client and `kubectl`;
//! - [`ns`]: a fresh namespace per test, deleted at the end ([`ns::with_temp_ns`]);
//! - [`children`]: the objects a PressureTest owns and what is wrong with them;
//! - [`events`]: the events published about a PressureTest;
//! - [`crd`]: installing the PressureTest CRD from the chart and waiting until Established;
//! - [`procs`]: finding the workspace binaries, child processes killed on drop, free ports;
//! - [`operator`]: the operator as a child process watching one namespace;
//! - [`plugin`]: `kubectl pressure` against the test cluster;
//! - [`wait`]: waits with deadlines on objects and PressureTest status;
//! - [`live`]: the real proxy, sink, clients and setup on 127.0.0.1 for live figures;
//! - [`report`]: the report ConfigMap of a run and its `report.json`.

pub mod children;
pub mod cluster;
pub mod crd;
pub mod events;
pub mod live;
pub mod ns;
pub mod operator;
pub mod plugin;
pub mod procs;
pub mod report;
pub mod wait;

pub use cluster::{Kubectl, Output, client, repo_root};
pub use ns::{TempNs, with_temp_ns};
pub use operator::Operator;
