//! Splitting a scope scan into searches that run at the same time.
//!
//! A DC serves one search on one connection in one worker process, so a paged scan of a large
//! scope is bound by one core of the DC (Samba: ~200–300 µs of CPU an object). Split by
//! uSNCreated it uses as many cores as it runs searches: 200,000 users took 41.6 s as one paged
//! search and 21.7–23.3 s as two at once on a DC with two cores (BENCHMARKS.md). Every object
//! has exactly one uSNCreated and no later change alters it, so the parts are disjoint and
//! together they are the whole scope, even for objects created or moved during the scan (a new
//! object's USN is above every bound: it falls in the last, open-ended part).
//!
//! A scan is cut into more parts than it runs searches at once ([`PARTS_PER_STREAM`] a search),
//! and each search takes the next part when it finishes one. A DC need not give each connection
//! a process of its own: Samba's prefork workers take connections as they race for them, so
//! two of a client's connections share a worker about one time in four (four workers), and two
//! halves read over those two are read one after the other. With parts from a queue, every
//! worker that holds one of the scan's connections stays busy until the end.
//!
//! Where the bounds go: the USNs of a domain's users are not spread evenly over `1..=highest`
//! (every change to any object raises the highest USN; a user's uSNCreated stays where it was),
//! so an even split is only the first guess. Each scan samples the uSNCreated of what it reads
//! ([`UsnSample`]) and the next scan of the same DC splits at the sample's quantiles
//! ([`LearnedBounds`]). A poor split costs time, never an object.
//!
//! Each part is one paged search, whose filter the DC evaluates once: a range a part, never a
//! range a page (a two-sided range costs Samba an intersection of two index lists each time, so
//! ranges a page made a scan O(N²); see BENCHMARKS.md, session 6).

use serde::{Deserialize, Serialize};

/// Parts a scan is cut into for each search it runs at once.
pub const PARTS_PER_STREAM: usize = 4;

/// How many uSNCreated values a scan keeps to place the next scan's bounds: the quantiles of
/// a uniform sample of 1,024 are within a few percent of the scope's, in 8 KiB.
const SAMPLE_SIZE: usize = 1024;

/// The bounds learned from a scan of one DC (USNs are per DC), for the next scan with as many
/// parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedBounds {
    /// The DC's dsServiceName.
    pub dc: String,
    pub parts: usize,
    pub bounds: Vec<u64>,
}

/// The parts of one scan: a filter each, and the DC whose USNs split them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanParts {
    pub filters: Vec<String>,
    /// The DC's dsServiceName; empty when the scan is one part (nothing was split).
    pub dc: String,
    /// How many parts were asked for (`filters` has fewer when there were not enough USNs to
    /// place them apart): what the sample of this scan should learn bounds for.
    pub parts: usize,
}

impl ScanParts {
    /// Splits `filter` at `learned` bounds when they are for this DC and this many parts, or
    /// else evenly over the DC's USNs.
    pub fn new(filter: &str, parts: usize, dc: &str, highest_usn: u64, learned: Option<&LearnedBounds>) -> Self {
        let bounds = match learned {
            Some(l) if l.dc == dc && l.parts == parts && !l.bounds.is_empty() => l.bounds.clone(),
            _ => even_usn_bounds(highest_usn, parts),
        };
        ScanParts { filters: usn_partitions(filter, &bounds), dc: dc.to_owned(), parts }
    }

    /// A scan of one part.
    pub fn whole(filter: &str) -> Self {
        ScanParts { filters: vec![filter.to_owned()], dc: String::new(), parts: 1 }
    }
}

/// A uniform sample of the uSNCreated values a scan read (reservoir sampling, Algorithm R,
/// with a fixed-seed generator: the same scan places the same bounds).
#[derive(Debug, Clone)]
pub struct UsnSample {
    seen: u64,
    sample: Vec<u64>,
    state: u64,
}

impl Default for UsnSample {
    fn default() -> Self {
        UsnSample { seen: 0, sample: Vec::new(), state: 0x9E37_79B9_7F4A_7C15 }
    }
}

impl UsnSample {
    pub fn add(&mut self, usn: u64) {
        self.seen += 1;
        if self.sample.len() < SAMPLE_SIZE {
            self.sample.push(usn);
            return;
        }
        // xorshift64*: plenty for picking sample slots.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let slot = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.seen;
        if let Some(kept) = usize::try_from(slot).ok().and_then(|slot| self.sample.get_mut(slot)) {
            *kept = usn;
        }
    }

    /// The bounds splitting what was sampled into `parts` parts of about equal size, for `dc`.
    /// `None` when there is nothing to split.
    pub fn learned(&self, dc: &str, parts: usize) -> Option<LearnedBounds> {
        let parts = parts.max(1);
        let mut sorted = self.sample.clone();
        sorted.sort_unstable();
        let mut bounds: Vec<u64> = (1..parts)
            .filter_map(|i| (sorted.len() * i / parts).checked_sub(1).and_then(|at| sorted.get(at).copied()))
            .collect();
        bounds.dedup();
        (!bounds.is_empty() && !dc.is_empty()).then(|| LearnedBounds { dc: dc.to_owned(), parts, bounds })
    }
}

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
    fn learned_bounds_split_a_skewed_scope_evenly() {
        // 100,000 users created between USN 5,000 and 105,000 on a DC whose highest USN has
        // since reached 10,000,000: an even split of the USNs would put them all in one part.
        let mut sample = UsnSample::default();
        for usn in 5_000..105_000u64 {
            sample.add(usn);
        }
        let learned = sample.learned("dc1", 4).unwrap();
        assert_eq!((learned.dc.as_str(), learned.parts, learned.bounds.len()), ("dc1", 4, 3));
        let counts: Vec<usize> = usn_ranges(&learned.bounds)
            .iter()
            .map(|(low, high)| {
                (5_000..105_000u64)
                    .filter(|u| low.is_none_or(|l| *u >= l) && high.is_none_or(|h| *u <= h))
                    .count()
            })
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 100_000);
        for count in &counts {
            assert!((20_000..=30_000).contains(count), "{counts:?}");
        }

        // Used for the same DC and number of parts only; otherwise an even split.
        let filter = "(objectClass=user)";
        let same = ScanParts::new(filter, 4, "dc1", 10_000_000, Some(&learned));
        assert_eq!(same.filters, usn_partitions(filter, &learned.bounds));
        let even = usn_partitions(filter, &even_usn_bounds(10_000_000, 4));
        assert_eq!(ScanParts::new(filter, 4, "dc2", 10_000_000, Some(&learned)).filters, even);
        assert_eq!(ScanParts::new(filter, 4, "dc1", 10_000_000, None).filters, even);
        assert_eq!(ScanParts::new(filter, 2, "dc1", 10_000_000, Some(&learned)).filters.len(), 2);
    }

    #[test]
    fn a_small_or_empty_sample_learns_what_it_can() {
        assert_eq!(UsnSample::default().learned("dc1", 2), None);
        let mut one = UsnSample::default();
        one.add(7);
        assert_eq!(one.learned("dc1", 4), None, "one object: nothing to split");
        let mut few = UsnSample::default();
        for usn in [10, 20, 30] {
            few.add(usn);
        }
        assert_eq!(few.learned("dc1", 3).map(|l| l.bounds), Some(vec![10, 20]));
        assert_eq!(few.learned("", 3), None, "no DC, no bounds");
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
