//! Rate-limit windows (PROTOCOL.md §6.3): per-account limits per minute, hour and day, checked in
//! that order; an exceeded window defers the message to the window's boundary.

/// The windows, in the order they are checked: (seconds, limit).
pub fn windows(minute: Option<i64>, hour: Option<i64>, day: Option<i64>) -> Vec<(i64, i64)> {
    [(60, minute), (3600, hour), (86_400, day)]
        .into_iter()
        .filter_map(|(w, l)| l.filter(|l| *l > 0).map(|l| (w, l)))
        .collect()
}

/// The first exceeded window given the sends counted in each window, or None when allowed.
pub fn exceeded(windows: &[(i64, i64)], counts: &[i64]) -> Option<i64> {
    windows
        .iter()
        .zip(counts)
        .find(|((_, limit), count)| **count >= *limit)
        .map(|((w, _), _)| *w)
}

/// Start of the next window after `now`: `(now div W + 1) × W`.
pub fn boundary(now: i64, window: i64) -> i64 {
    (now.div_euclid(window) + 1) * window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_skip_unlimited_and_check_in_order() {
        let w = windows(Some(10), None, Some(0));
        assert_eq!(w, vec![(60, 10)]);
        let w = windows(Some(10), Some(100), Some(1000));
        assert_eq!(exceeded(&w, &[9, 99, 999]), None);
        assert_eq!(exceeded(&w, &[10, 100, 999]), Some(60));
        assert_eq!(exceeded(&w, &[3, 100, 1000]), Some(3600));
    }

    #[test]
    fn boundaries_are_window_starts() {
        assert_eq!(boundary(1_700_000_030, 60), 1_700_000_040);
        assert_eq!(boundary(1_700_000_030, 86_400) % 86_400, 0);
    }
}
