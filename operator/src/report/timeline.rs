//! The run's timeline as the operator sees it: one point per reading of the figures (every 10 s
//! while the load runs, more often when events wake the controller), the same [`Point`]s the
//! local run records every second. Kept in memory per PressureTest and written to the report
//! ConfigMap at each reading, from which a restarted operator takes it up again.

use std::collections::HashMap;
use std::sync::Mutex;

use mailproxy_proto::prom::{bucket_delta, quantile};
use pressure_crds::report::{Point, chart};

use crate::status::Reading;

/// Readings closer together than this add no point: a rate over a fraction of a second says
/// more about the reading's timing than about the proxy.
const MIN_INTERVAL_SECONDS: f64 = 1.0;

/// The timeline of one run, and what the next point needs from the last reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTimeline {
    /// The run it belongs to.
    pub run_id: String,
    /// Points since the load started.
    pub points: Vec<Point>,
    /// The proxy's attachment cache lookups at the last reading: (hits, misses).
    pub proxy_cache: (u64, u64),
    /// Whether the last reading found the run drained: the proxy answered with nothing pending
    /// and every client holds a final report for every message it generated.
    pub drained: bool,
    /// Whether the report ConfigMap's name is held by an object this PressureTest does not own:
    /// nothing is written then.
    pub foreign: bool,
    /// Unix second and delivered count of the last reading.
    last: Option<(i64, u64)>,
    /// Latency buckets of the last reading.
    last_buckets: Vec<(f64, f64)>,
}

impl RunTimeline {
    /// A timeline for `run_id` that goes on from `points` (read back from the ConfigMap after a
    /// restart; the first new point then has no latency).
    pub fn resume(run_id: &str, points: Vec<Point>, start_at: i64) -> Self {
        let last = points
            .last()
            .map(|p| (start_at + p.t.round() as i64, p.delivered));
        Self {
            run_id: run_id.to_string(),
            points,
            last,
            ..Self::default()
        }
    }

    /// Adds the reading `r` (taken at `r.figures.observed_at`), the load having started at
    /// `start_at`. Delivered means the verifying sink's count when `sink_counts`, else the proxy's
    /// sent count, as in the local run. A reading before the start adds no point, only a base.
    pub fn record(&mut self, r: &Reading, start_at: i64, sink_counts: bool) {
        let now = r.figures.observed_at;
        self.proxy_cache = r.proxy_cache;
        self.drained = r.proxy_seen && r.figures.pending == 0 && r.clients_drained;
        let delivered = if sink_counts {
            r.figures.delivered.unwrap_or(0)
        } else {
            r.figures.sent
        }
        .max(0) as u64;
        // Without an earlier reading, the interval runs from the load's start, when this run's
        // sink and clients had counted nothing.
        let (t0, d0) = self.last.unwrap_or((start_at.min(now), 0));
        let dt = (now - t0) as f64;
        if self.last.is_some() && dt < MIN_INTERVAL_SECONDS {
            return;
        }
        // After a restart the last reading's buckets are unknown: no p99 for that interval.
        let known = self.last.is_none() || !self.last_buckets.is_empty();
        let p99 = known
            .then(|| quantile(&bucket_delta(&r.latency_buckets, &self.last_buckets), 0.99))
            .flatten()
            .map(|s| (s * 1000.0).round());
        self.last = Some((now, delivered));
        self.last_buckets = r.latency_buckets.clone();
        let t = (now - start_at) as f64;
        if t >= 0.0 {
            let generated = r.figures.generated.max(0) as u64;
            let mut point = chart::point(t, dt, (d0, delivered), generated, p99);
            // No replica answering means the count is unknown, not that none was delivering.
            point.proxy_replicas = (r.proxy_replicas > 0).then_some(r.proxy_replicas);
            point.desired_replicas = r.proxy_scale.desired_replicas;
            point.ready_replicas = r.proxy_scale.ready_replicas;
            point.cpu_percent = r.proxy_scale.cpu_percent;
            self.points.push(point);
        }
    }
}

/// The timelines of the runs this operator is watching, by PressureTest UID.
#[derive(Debug, Default)]
pub struct Timelines(Mutex<HashMap<String, RunTimeline>>);

impl Timelines {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunTimeline>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The timeline of `uid`'s run `run_id`, if this operator holds it.
    pub fn get(&self, uid: &str, run_id: &str) -> Option<RunTimeline> {
        self.map().get(uid).filter(|t| t.run_id == run_id).cloned()
    }

    /// Stores `timeline` as `uid`'s, replacing an earlier run's.
    pub fn put(&self, uid: &str, timeline: RunTimeline) {
        self.map().insert(uid.to_string(), timeline);
    }

    /// Drops `uid`'s timeline (its report is final).
    pub fn forget(&self, uid: &str) {
        self.map().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pressure_crds::Figures;
    use pressure_crds::aggregate::ProxyScale;

    fn reading(at: i64, delivered: i64, sent: i64, buckets: &[(f64, f64)]) -> Reading {
        Reading {
            figures: Figures {
                observed_at: at,
                generated: delivered + 5,
                delivered: Some(delivered),
                sent,
                ..Figures::default()
            },
            latency_buckets: buckets.to_vec(),
            proxy_cache: (3, 1),
            proxy_replicas: 2,
            ..Reading::default()
        }
    }

    #[test]
    fn points_carry_the_rate_and_the_p99_of_each_interval() {
        let mut t = RunTimeline::resume("r1", Vec::new(), 1_000);
        // Before the start: a base, no point.
        t.record(&reading(995, 0, 0, &[(0.1, 0.0), (1.0, 0.0)]), 1_000, true);
        assert!(t.points.is_empty());
        // 100 deliveries in 10 s, all under 100 ms.
        t.record(
            &reading(1_005, 100, 90, &[(0.1, 100.0), (1.0, 100.0)]),
            1_000,
            true,
        );
        // 50 more in 10 s, all between 100 ms and 1 s: the interval's p99 ignores the first 100.
        t.record(
            &reading(1_015, 150, 140, &[(0.1, 100.0), (1.0, 150.0)]),
            1_000,
            true,
        );
        // Half a second later: no point.
        t.record(
            &reading(1_015, 151, 141, &[(0.1, 100.0), (1.0, 151.0)]),
            1_000,
            true,
        );
        assert_eq!(t.points.len(), 2);
        let (a, b) = (t.points[0], t.points[1]);
        assert_eq!((a.t, a.delivered_per_second, a.delivered), (5.0, 10.0, 100));
        assert_eq!(a.latency_p99_ms, Some(99.0));
        assert_eq!((b.t, b.delivered_per_second, b.generated), (15.0, 5.0, 155));
        assert!(b.latency_p99_ms.is_some_and(|ms| ms > 900.0));
        assert_eq!(t.proxy_cache, (3, 1));
        assert_eq!((a.proxy_replicas, b.proxy_replicas), (Some(2), Some(2)));
    }

    #[test]
    fn points_carry_the_proxy_scale_the_reading_saw() {
        let mut t = RunTimeline::resume("r1", Vec::new(), 1_000);
        let mut r = reading(1_010, 100, 90, &[]);
        r.proxy_scale = ProxyScale {
            desired_replicas: Some(3),
            ready_replicas: Some(2),
            cpu_percent: Some(140),
        };
        t.record(&r, 1_000, true);
        t.record(&reading(1_020, 200, 190, &[]), 1_000, true);
        let (a, b) = (t.points[0], t.points[1]);
        assert_eq!(
            (a.desired_replicas, a.ready_replicas, a.cpu_percent),
            (Some(3), Some(2), Some(140))
        );
        // A reading without them (no HPA) leaves them out of the point and of its JSON.
        assert_eq!((b.desired_replicas, b.cpu_percent), (None, None));
        let json = serde_json::to_string(&b).unwrap();
        assert!(
            !json.contains("desiredReplicas") && !json.contains("cpuPercent"),
            "{json}"
        );
        assert!(
            serde_json::to_string(&a)
                .unwrap()
                .contains("\"desiredReplicas\":3")
        );
    }

    #[test]
    fn a_first_reading_after_the_start_measures_from_the_start() {
        let mut t = RunTimeline::resume("r1", Vec::new(), 1_000);
        t.record(
            &reading(1_010, 50, 50, &[(0.1, 50.0), (1.0, 50.0)]),
            1_000,
            true,
        );
        assert_eq!(t.points[0].delivered_per_second, 5.0);
        assert_eq!(t.points[0].latency_p99_ms, Some(99.0));
    }

    #[test]
    fn without_a_verifying_sink_the_proxy_sent_count_is_delivery() {
        let mut t = RunTimeline::resume("r1", Vec::new(), 0);
        t.record(&reading(0, 0, 0, &[]), 0, false);
        t.record(&reading(10, 999, 40, &[]), 0, false);
        assert_eq!(t.points[1].delivered_per_second, 4.0);
        assert_eq!(t.points[1].latency_p99_ms, None);
    }

    #[test]
    fn a_resumed_timeline_goes_on_from_its_last_point() {
        let old = vec![chart::point(20.0, 10.0, (0, 200), 210, Some(50.0))];
        let mut t = RunTimeline::resume("r1", old, 1_000);
        t.record(&reading(1_030, 300, 0, &[(1.0, 5.0)]), 1_000, true);
        assert_eq!(t.points.len(), 2);
        assert_eq!(t.points[1].delivered_per_second, 10.0);
        // No buckets from before the restart: no latency for this interval.
        assert_eq!(t.points[1].latency_p99_ms, None);
    }

    #[test]
    fn the_store_keeps_one_run_per_pressuretest() {
        let store = Timelines::default();
        store.put("uid", RunTimeline::resume("r1", Vec::new(), 0));
        assert!(store.get("uid", "r1").is_some());
        assert!(store.get("uid", "r2").is_none());
        store.put("uid", RunTimeline::resume("r2", Vec::new(), 0));
        assert!(store.get("uid", "r1").is_none());
        assert!(store.get("uid", "r2").is_some());
        store.forget("uid");
        assert!(store.get("uid", "r2").is_none());
    }
}
