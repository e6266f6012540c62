//! The engine's knobs: the `[engine]` and `[brakes]` sections of the config file.

use serde::Deserialize;
use std::time::Duration;
use writeback_core::PlanPolicy;
use writeback_state::RetryPolicy;

/// `[engine]`: how the engine runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Seconds between two cloud polls in `run` mode. Each poll costs one Get-Mailbox and one
    /// users/delta request: at 2 s that is 30 requests a minute to each service. Graph's
    /// budget is 3,500+ resource units per 10 s (a `$select` delta call costs 1); Exchange's
    /// admin API was seen allowing 30,000 per reset window. Both are left almost untouched.
    pub poll_interval_secs: u64,
    /// Modify requests in flight at once (pipelined over the connection pool). Samba applies
    /// writes one at a time; a few dozen in flight keep it busy without queueing for long.
    pub max_in_flight: usize,
    /// How often one object is re-read and re-planned after the DC reported that it changed
    /// between read and write, within one cycle.
    pub conflict_retries: u32,
    /// Proxy address types never written to (nor removed from) AD; default `["SPO"]`.
    pub excluded_address_types: Option<Vec<String>>,
    /// First wait after a mailbox failed; doubles per failure up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// After this many consecutive failures a mailbox is quarantined until released.
    pub quarantine_after: u32,
    /// Audit rows and finished journal entries older than this are purged.
    pub audit_retention_days: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            poll_interval_secs: 2,
            max_in_flight: 32,
            conflict_retries: 3,
            excluded_address_types: None,
            retry_base_secs: 60,
            retry_max_secs: 6 * 3600,
            quarantine_after: 8,
            audit_retention_days: 400,
        }
    }
}

/// `[brakes]`: per-cycle safety thresholds. When one is crossed nothing of the cycle is
/// applied; its plan is held for an operator (`writeback approve`).
///
/// Absolute limits follow the spirit of Microsoft's 500-object accidental-deletion
/// threshold. Share limits are a fraction of the mailboxes in scope and only apply from
/// `share_min_objects` on, so a small lab tenant is not stopped by one edit.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Brakes {
    pub max_objects_changed: u64,
    pub max_objects_changed_share: f64,
    pub max_values_cleared: u64,
    pub max_values_cleared_share: f64,
    pub share_min_objects: u64,
}

impl Default for Brakes {
    fn default() -> Self {
        Brakes {
            max_objects_changed: 500,
            max_objects_changed_share: 0.25,
            max_values_cleared: 500,
            max_values_cleared_share: 0.10,
            share_min_objects: 50,
        }
    }
}

impl Brakes {
    /// Whether no cycle within these bounds can cross a threshold: at most `objects` objects
    /// changed and `values` values cleared, judged against at least `in_scope_floor` mailboxes
    /// in scope. A full pass whose scope snapshot proves this writes while it plans (see
    /// `cycle.rs`). Every changed object is a mailbox of the cycle, so the changed share
    /// never exceeds 1.
    pub fn cannot_trip(&self, objects: u64, values: u64, in_scope_floor: u64) -> bool {
        let floor = in_scope_floor.max(1) as f64;
        let objects_within = objects <= self.max_objects_changed
            && (objects < self.share_min_objects
                || self.max_objects_changed_share >= 1.0
                || objects as f64 / floor <= self.max_objects_changed_share);
        let values_within = values <= self.max_values_cleared
            && (values < self.share_min_objects || values as f64 / floor <= self.max_values_cleared_share);
        objects_within && values_within
    }

    /// Why a cycle of this size must be held, if it must.
    pub fn check(&self, objects_changed: u64, values_cleared: u64, in_scope: u64) -> Option<String> {
        let share = |n: u64| if in_scope == 0 { 0.0 } else { n as f64 / in_scope as f64 };
        if objects_changed > self.max_objects_changed {
            return Some(format!(
                "{objects_changed} objects would change, more than max_objects_changed = {}",
                self.max_objects_changed
            ));
        }
        if values_cleared > self.max_values_cleared {
            return Some(format!(
                "{values_cleared} values would be cleared, more than max_values_cleared = {}",
                self.max_values_cleared
            ));
        }
        if objects_changed >= self.share_min_objects
            && share(objects_changed) > self.max_objects_changed_share
        {
            return Some(format!(
                "{objects_changed} of {in_scope} mailboxes would change ({:.0}%), more than max_objects_changed_share = {:.0}%",
                share(objects_changed) * 100.0,
                self.max_objects_changed_share * 100.0
            ));
        }
        if values_cleared >= self.share_min_objects
            && share(values_cleared) > self.max_values_cleared_share
        {
            return Some(format!(
                "{values_cleared} values would be cleared across {in_scope} mailboxes ({:.0}%), more than max_values_cleared_share = {:.0}%",
                share(values_cleared) * 100.0,
                self.max_values_cleared_share * 100.0
            ));
        }
        None
    }
}

/// Everything the engine needs to know, resolved.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Objects outside these subtrees are never matched (empty: the AD base DN).
    pub scope: Vec<String>,
    pub poll_interval: Duration,
    pub max_in_flight: usize,
    pub conflict_retries: u32,
    pub policy: PlanPolicy,
    pub retry: RetryPolicy,
    pub brakes: Brakes,
    pub audit_retention: Duration,
    /// Where a full pass keeps its scratch copy of the scope (a file removed afterwards); the
    /// system's temporary directory when unset. The CLI puts it beside the state file.
    pub scratch_dir: Option<std::path::PathBuf>,
}

impl EngineSettings {
    pub fn new(section: &EngineSection, brakes: Brakes, scope: Vec<String>) -> Self {
        let mut policy = PlanPolicy::default();
        if let Some(types) = &section.excluded_address_types {
            policy.excluded_address_types = types.clone();
        }
        let secs_ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        EngineSettings {
            scope,
            poll_interval: Duration::from_secs(section.poll_interval_secs.max(1)),
            max_in_flight: section.max_in_flight.clamp(1, 1024),
            conflict_retries: section.conflict_retries,
            policy,
            retry: RetryPolicy {
                base_delay_ms: secs_ms(section.retry_base_secs),
                max_delay_ms: secs_ms(section.retry_max_secs),
                quarantine_after: section.quarantine_after.max(1),
            },
            brakes,
            audit_retention: Duration::from_secs(section.audit_retention_days.saturating_mul(86_400)),
            scratch_dir: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brakes_trip_on_absolute_and_share_limits() {
        let b = Brakes::default();
        assert!(b.check(10, 0, 100_000).is_none());
        assert!(b.check(501, 0, 100_000).unwrap().contains("max_objects_changed"));
        assert!(b.check(0, 501, 100_000).unwrap().contains("max_values_cleared"));
        // 30 of 40: a large share, but below the minimum count for share limits.
        assert!(b.check(30, 0, 40).is_none());
        assert!(b.check(60, 0, 100).unwrap().contains("share"));
        assert!(b.check(0, 60, 100).unwrap().contains("cleared"));
        assert!(b.check(60, 0, 0).is_none(), "empty scope never divides by zero");
    }

    #[test]
    fn a_scope_within_every_limit_cannot_trip_and_the_claim_holds_for_every_smaller_cycle() {
        let defaults = Brakes::default();
        // A lab scope: 40 users holding 45 managed values.
        assert!(defaults.cannot_trip(40, 45, 40));
        // A real scope at the defaults: planned first, always.
        assert!(!defaults.cannot_trip(200_000, 1_600_000, 200_000));
        assert!(!defaults.cannot_trip(400, 45, 400), "400 of 400 could change: over the 25 % share");
        let raised = Brakes {
            max_objects_changed: 2_000_000,
            max_objects_changed_share: 1.0,
            max_values_cleared: 2_000_000,
            max_values_cleared_share: 1.0,
            share_min_objects: 50,
        };
        assert!(!raised.cannot_trip(200_000, 1_600_000, 200_000), "8 values a user could all be cleared");
        assert!(raised.cannot_trip(200_000, 190_000, 200_000));
        assert!(!raised.cannot_trip(200_000, 190_000, 0), "no joins yet: no floor under the share");
        // Soundness: whenever the bound says it cannot trip, no cycle inside it does.
        let brakes = [defaults, raised, Brakes { max_objects_changed_share: 0.5, max_values_cleared_share: 2.0, ..Brakes::default() }];
        let sizes = [0u64, 1, 10, 49, 50, 51, 100, 250, 499, 500, 501, 1000, 5000];
        for b in &brakes {
            for &objects in &sizes {
                for &values in &sizes {
                    for &floor in &sizes {
                        if !b.cannot_trip(objects, values, floor) {
                            continue;
                        }
                        for &changed in sizes.iter().filter(|&&c| c <= objects) {
                            for &cleared in sizes.iter().filter(|&&v| v <= values) {
                                for &in_scope in sizes.iter().filter(|&&n| n >= floor && n >= changed && n > 0) {
                                    assert_eq!(
                                        b.check(changed, cleared, in_scope),
                                        None,
                                        "{b:?}: bound ({objects}, {values}, {floor}) but ({changed}, {cleared}, {in_scope}) trips"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
