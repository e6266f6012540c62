//! Splitting a scope scan into searches that run at the same time.
//!
//! A DC serves one search on one connection in one worker process, so a paged scan of a large
//! scope is bound by one core of the DC (Samba: ~200–300 µs of CPU an object). Split by
//! uSNCreated it uses as many cores as there are parts: 200,000 users took 41.6 s as one paged
//! search and 21.7–23.3 s as two at once on a DC with two cores (BENCHMARKS.md). Every object
//! has exactly one uSNCreated and no later change alters it, so the parts are disjoint and
//! together they are the whole scope, even for objects created or moved during the scan (a new
//! object's USN is above every bound: it falls in the last, open-ended part).
//!
//! Each part is one paged search, whose filter the DC evaluates once: a range a part, never a
//! range a page (a two-sided range costs Samba an intersection of two index lists each time, so
//! ranges a page made a scan O(N²); see BENCHMARKS.md, session 6).

/// `parts` - 1 upper bounds splitting the USNs `1..=highest_usn` evenly: the first part is
/// `..=bounds[0]`, the last `bounds[last] + 1..`. Fewer when the DC has fewer USNs than parts.
pub fn even_usn_bounds(highest_usn: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u128;
    let mut bounds: Vec<u64> = (1..parts)
        .map(|i| (u128::from(highest_usn) * i / parts) as u64)
        .filter(|bound| *bound > 0)
        .collect();
    bounds.dedup();
    bounds
}

/// The inclusive USN range of each part, `None` where a part is open-ended.
fn usn_ranges(bounds: &[u64]) -> Vec<(Option<u64>, Option<u64>)> {
    let mut sorted = bounds.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // u64::MAX as an upper bound would leave the part after it empty; drop it.
    sorted.retain(|bound| *bound < u64::MAX);
    let mut ranges = Vec::with_capacity(sorted.len() + 1);
    let mut low = None;
    for bound in sorted {
        ranges.push((low, Some(bound)));
        low = Some(bound + 1);
    }
    ranges.push((low, None));
    ranges
}

/// `filter` (already escaped) restricted to each part of `bounds`: one filter a part.
pub fn usn_partitions(filter: &str, bounds: &[u64]) -> Vec<String> {
    usn_ranges(bounds)
        .into_iter()
        .map(|range| match range {
            (None, None) => filter.to_owned(),
            (None, Some(high)) => format!("(&{filter}(uSNCreated<={high}))"),
            (Some(low), None) => format!("(&{filter}(uSNCreated>={low}))"),
            (Some(low), Some(high)) => format!("(&{filter}(uSNCreated>={low})(uSNCreated<={high}))"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_holding(usn: u64, bounds: &[u64]) -> usize {
        usn_ranges(bounds)
            .into_iter()
            .filter(|(low, high)| low.is_none_or(|l| usn >= l) && high.is_none_or(|h| usn <= h))
            .count()
    }

    #[test]
    fn every_usn_falls_in_exactly_one_part() {
        let cases: [&[u64]; 6] = [&[], &[0], &[5], &[5, 5, 3], &[1, 2, 3, 1000], &[u64::MAX - 1, u64::MAX]];
        for bounds in cases {
            for usn in [0, 1, 2, 3, 4, 5, 6, 999, 1000, 1001, u64::MAX - 1, u64::MAX] {
                assert_eq!(parts_holding(usn, bounds), 1, "usn {usn}, bounds {bounds:?}");
            }
        }
    }

    #[test]
    fn even_bounds_split_the_usn_space() {
        assert_eq!(even_usn_bounds(205_258, 1), Vec::<u64>::new());
        assert_eq!(even_usn_bounds(205_258, 2), vec![102_629]);
        assert_eq!(even_usn_bounds(1000, 4), vec![250, 500, 750]);
        // A DC with fewer USNs than parts: no empty or repeated bounds.
        assert_eq!(even_usn_bounds(2, 4), vec![1]);
        assert_eq!(even_usn_bounds(0, 3), Vec::<u64>::new());
        assert_eq!(even_usn_bounds(u64::MAX, 2), vec![u64::MAX / 2]);
        assert_eq!(even_usn_bounds(10, 0), Vec::<u64>::new());
    }

    #[test]
    fn filters_restrict_the_scan_filter() {
        let f = "(objectClass=user)";
        assert_eq!(usn_partitions(f, &[]), vec![f.to_owned()]);
        assert_eq!(
            usn_partitions(f, &[100, 200]),
            vec![
                "(&(objectClass=user)(uSNCreated<=100))".to_owned(),
                "(&(objectClass=user)(uSNCreated>=101)(uSNCreated<=200))".to_owned(),
                "(&(objectClass=user)(uSNCreated>=201))".to_owned(),
            ]
        );
    }
}
