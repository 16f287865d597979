//! `spec.stages`: the shape of the load over time. Each stage moves the clients' rate linearly,
//! over its `durationSeconds`, from where the previous stage ended (0 % before the first) to its
//! `ratePercent` of the tenants' rates; after the last stage its rate holds until the load stops.
//! The stages count from the load's start (`START_AT`, warm-up included). No stages: the full
//! rate from start to stop. The clients get them as `LOAD_STAGES` (this type's JSON) and apply
//! `mailproxy_proto::stages::rate_percent_at`, the one rule, to every sync, in lockstep through
//! the published start time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `stages` as the clients take them (`LOAD_STAGES`, `--load-stages`): this type's JSON.
pub fn env_json(stages: &[StageSpec]) -> String {
    serde_json::to_string(stages).unwrap_or_else(|_| "[]".into())
}

/// One stage of the load.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageSpec {
    /// Seconds the stage lasts.
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: i32,
    /// The rate reached at the stage's end, in percent of the tenants' rates (100 = as set).
    #[schemars(range(min = 0, max = 1000))]
    pub rate_percent: i32,
}
