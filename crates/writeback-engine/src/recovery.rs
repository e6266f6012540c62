//! After a crash: journal entries with an intent but no outcome. The write may or may not
//! have reached the DC; the object is read again to find out. Nothing is re-sent from the
//! journal: the watermark did not move past the crashed cycle, so the next pass reads those
//! mailboxes again and plans them against AD as it is now, which can never put a stale
//! value over a newer one.

use crate::engine::{now_ms, Engine};
use crate::error::EngineError;
use writeback_ad::ids;
use writeback_state::{JournalEntry, Outcome, StateStore};

/// What recovery found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    pub in_flight: u64,
    pub applied: u64,
    pub not_applied: u64,
    pub gone: u64,
}

impl<S: StateStore + ?Sized> Engine<S> {
    pub async fn recover_in_flight(&self) -> Result<RecoveryReport, EngineError> {
        let entries = self.store.in_flight()?;
        let mut report = RecoveryReport { in_flight: entries.len() as u64, ..RecoveryReport::default() };
        if entries.is_empty() {
            return Ok(report);
        }
        tracing::warn!(entries = entries.len(), "writes in flight at the last stop; checking AD for each");
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            let guid_dn = ids::guid_dn(&entry.object_guid);
            let outcome = match self.dir.read(&guid_dn).await? {
                None => {
                    report.gone += 1;
                    Outcome::Failed { code: 32, message: "object gone when recovering an interrupted write".into() }
                }
                Some(user) if is_reflected(&entry, &user.values) => {
                    report.applied += 1;
                    Outcome::Applied
                }
                Some(_) => {
                    report.not_applied += 1;
                    Outcome::Unknown
                }
            };
            outcomes.push((entry.id, outcome));
        }
        self.store.record_outcomes(&outcomes, now_ms())?;
        Ok(report)
    }
}

/// Whether AD now holds what the interrupted write meant to set, for every attribute it
/// touched (compared as LDAP does: case-insensitive, order-free).
fn is_reflected(entry: &JournalEntry, current: &writeback_core::AdValues) -> bool {
    let Ok(expected) = entry.before.apply(&entry.mods) else {
        return false;
    };
    writeback_core::touched_attributes(&entry.mods).into_iter().all(|attr| same_values(expected.get(attr), current.get(attr)))
}

fn same_values(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}
