//! Throughput by the number of proxy replicas: the question an autoscaling test exists to
//! answer (did adding replicas add throughput?). Each interval of the timeline counts for the
//! number of proxy replicas that answered the reading at its end; the intervals inside the
//! measured window are summed per count.

use serde::{Deserialize, Serialize};

use super::Point;

/// Deliveries while the proxy ran with one number of replicas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaFigures {
    /// Proxy replicas that answered.
    pub replicas: u32,
    /// Measured seconds with that many.
    pub seconds: f64,
    /// Messages delivered in those seconds.
    pub delivered: u64,
    /// `delivered / seconds`, one decimal.
    pub delivered_per_second: f64,
}

/// The timeline's intervals that end inside `(from, to]` (seconds since the load's start), by
/// the replica count of their end point, fewest replicas first. Points without a count (a local
/// run's, or a report written before counts were kept) are left out.
pub fn by_replicas(points: &[Point], from: f64, to: f64) -> Vec<ReplicaFigures> {
    let mut lines: Vec<ReplicaFigures> = Vec::new();
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let Some(replicas) = b.proxy_replicas else {
            continue;
        };
        if b.t <= from || b.t > to || b.t <= a.t {
            continue;
        }
        let i = match lines.iter().position(|l| l.replicas == replicas) {
            Some(i) => i,
            None => {
                lines.push(ReplicaFigures {
                    replicas,
                    ..ReplicaFigures::default()
                });
                lines.len() - 1
            }
        };
        lines[i].seconds += b.t - a.t;
        lines[i].delivered += b.delivered.saturating_sub(a.delivered);
    }
    for l in &mut lines {
        l.delivered_per_second = (l.delivered as f64 / l.seconds * 10.0).round() / 10.0;
    }
    lines.sort_by_key(|l| l.replicas);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: f64, delivered: u64, replicas: Option<u32>) -> Point {
        Point {
            t,
            delivered,
            proxy_replicas: replicas,
            ..Point::default()
        }
    }

    #[test]
    fn intervals_in_the_window_are_summed_by_replica_count() {
        let points = [
            p(0.0, 0, Some(1)),
            p(10.0, 500, Some(1)),   // warm-up: left out
            p(20.0, 1_000, Some(1)), // 50/s with 1
            p(30.0, 1_900, Some(2)), // 90/s with 2
            p(40.0, 2_900, Some(2)), // 100/s with 2
            p(45.0, 3_000, None),    // no count: left out
            p(50.0, 3_600, Some(1)), // 120/s with 1 (after a replica went away)
            p(60.0, 4_000, Some(1)), // after the window: left out
        ];
        let lines = by_replicas(&points, 10.0, 50.0);
        assert_eq!(
            lines,
            [
                ReplicaFigures {
                    replicas: 1,
                    seconds: 15.0,
                    delivered: 1_100,
                    delivered_per_second: 73.3
                },
                ReplicaFigures {
                    replicas: 2,
                    seconds: 20.0,
                    delivered: 1_900,
                    delivered_per_second: 95.0
                },
            ]
        );
        assert!(by_replicas(&[p(1.0, 5, None), p(2.0, 9, None)], 0.0, 9.0).is_empty());
    }
}
