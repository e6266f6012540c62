//! The records the state store keeps, independent of the database behind it.

use serde::{Deserialize, Serialize};
use std::fmt;
use writeback_core::{AdValues, Anchors, Mailbox, ManagedAttribute, Modification};

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// One run of the engine: read changes, plan, write, record.
    CycleId
);
row_id!(
    /// One intended LDAP modify request in the journal.
    JournalId
);
row_id!(
    /// A plan held back by a safety brake.
    PlanId
);

/// One engine cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    pub id: CycleId,
    pub started_at: i64,
    /// `None` while running, or when the process died during the cycle.
    pub finished_at: Option<i64>,
    pub summary: Option<serde_json::Value>,
}

/// How a cloud mailbox was tied to its AD object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// `onPremisesImmutableId` = mS-DS-ConsistencyGuid or objectGUID.
    ImmutableId,
    /// `onPremisesSecurityIdentifier` = objectSid.
    Sid,
    /// `onPremisesDistinguishedName`, after checking the object found there.
    Dn,
    /// Set by an operator.
    Operator,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::ImmutableId => "immutable_id",
            MatchedBy::Sid => "sid",
            MatchedBy::Dn => "dn",
            MatchedBy::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            MatchedBy::ImmutableId,
            MatchedBy::Sid,
            MatchedBy::Dn,
            MatchedBy::Operator,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// A remembered match between a cloud mailbox and an AD object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub cloud_id: String,
    /// objectGUID as the 16 bytes AD stores; stable across moves and renames.
    pub object_guid: [u8; 16],
    /// Where the object was when last verified; objects move, so this is informational.
    pub dn: String,
    pub matched_by: MatchedBy,
    pub verified_at: i64,
}

/// What writeback last wrote to one attribute of one mailbox's AD object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWritten {
    pub attribute: ManagedAttribute,
    /// Empty when writeback removed the attribute.
    pub values: Vec<String>,
    pub written_at: i64,
    pub journal_id: JournalId,
}

/// A write about to be sent, journalled before it leaves the process.
#[derive(Debug, Clone, Copy)]
pub struct WriteIntent<'a> {
    pub cycle: CycleId,
    pub cloud_id: &'a str,
    pub object_guid: [u8; 16],
    pub dn: &'a str,
    pub mods: &'a [Modification],
    /// The object's managed attributes as read right before planning.
    pub before: &'a AdValues,
}

/// What happened to a journalled write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The DC accepted the modify request.
    Applied,
    /// The DC refused it because the object changed since it was read.
    Conflict,
    /// Refused for another reason; `code` is the LDAP result code (or the engine's own).
    Failed { code: u32, message: String },
    /// The request may or may not have been applied (connection lost after sending); the
    /// object must be re-read.
    Unknown,
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Conflict => "conflict",
            Outcome::Failed { .. } => "failed",
            Outcome::Unknown => "unknown",
        }
    }

    /// Rebuilds an outcome from its stored columns.
    pub(crate) fn from_parts(
        kind: &str,
        code: Option<i64>,
        message: Option<String>,
    ) -> Option<Self> {
        match kind {
            "applied" => Some(Outcome::Applied),
            "conflict" => Some(Outcome::Conflict),
            "unknown" => Some(Outcome::Unknown),
            "failed" => Some(Outcome::Failed {
                code: u32::try_from(code?).ok()?,
                message: message.unwrap_or_default(),
            }),
            _ => None,
        }
    }

    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            Outcome::Failed { code, .. } => Some(i64::from(*code)),
            _ => None,
        }
    }

    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            Outcome::Failed { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// One journalled write with its outcome, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: JournalId,
    pub cycle: CycleId,
    pub cloud_id: String,
    pub object_guid: [u8; 16],
    pub dn: String,
    pub mods: Vec<Modification>,
    pub before: AdValues,
    pub recorded_at: i64,
    /// `None`: in flight, the write may or may not have reached the DC.
    pub outcome: Option<Outcome>,
    pub finished_at: Option<i64>,
}

/// What the store knows of one mailbox when a pass looks at it (see
/// [`crate::StateStore::mailbox_states`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailboxState {
    /// Graph's identity anchors of the mailbox's cloud user.
    pub anchors: Option<Anchors>,
    /// Its entry in the error queue.
    pub failure: Option<FailureRecord>,
    pub join: Option<Join>,
    /// The cloud record (WhenChangedUTC) last seen in sync.
    pub synced: Option<String>,
}

/// A planned write of a cycle, staged until the cycle's brakes are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedWrite {
    pub cloud_id: String,
    pub object_guid: [u8; 16],
    pub dn: String,
    /// uSNChanged of the object when it was read for planning.
    pub usn_changed: u64,
    pub mods: Vec<Modification>,
    pub before: AdValues,
    /// The cloud record the plan was made from (re-planned after a conflict).
    pub mailbox: Mailbox,
}

/// Filters for reading the audit log; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Rows at or after this time.
    pub since: Option<i64>,
    /// Rows strictly before this time.
    pub until: Option<i64>,
    pub cloud_id: Option<String>,
    /// Case-insensitive (ASCII) substring of the DN.
    pub dn_contains: Option<String>,
    /// Rows with an id greater than this: the cursor for reading in pages.
    pub after_id: Option<i64>,
    pub limit: Option<u32>,
}

/// One audit row: one attribute of one journalled write. Rows come in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub cycle: CycleId,
    /// `None` once the journal entry has been purged.
    pub journal_id: Option<JournalId>,
    pub cloud_id: String,
    pub dn: String,
    /// The LDAP name; kept as text so history stays readable if the managed set changes.
    pub attribute: String,
    pub before: Vec<String>,
    /// What the write set, or would have set: whether it holds is in `outcome`.
    pub after: Vec<String>,
    pub outcome: Outcome,
}

/// What a retention purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PurgeReport {
    /// Finished journal entries, and with them their audit rows.
    pub journal_entries: u64,
    /// Staged writes left behind by cycles that began before the cutoff (the latest cycle's
    /// stage is kept: it may still be running).
    pub staged_writes: u64,
}

/// Exponential backoff and quarantine for per-mailbox failures. No jitter: retries are
/// spread by the cycles that pick them up, and the schedule stays testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub base_delay_ms: i64,
    /// Longest wait between two attempts.
    pub max_delay_ms: i64,
    /// The failure count at which the mailbox is quarantined instead of retried.
    pub quarantine_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay_ms: 60_000,
            max_delay_ms: 6 * 3_600_000,
            quarantine_after: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th consecutive failure: base · 2^(attempts−1), capped.
    pub fn delay_after(&self, attempts: u32) -> i64 {
        let base = self.base_delay_ms.max(0);
        let cap = self.max_delay_ms.max(0);
        let doublings = attempts.saturating_sub(1);
        let factor = 1_i64
            .checked_shl(doublings)
            .filter(|f| *f > 0)
            .unwrap_or(i64::MAX);
        base.saturating_mul(factor).min(cap)
    }
}

/// Where a failing mailbox stands after its latest failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FailureState {
    pub attempts: u32,
    /// `None` when quarantined: it is not retried until an operator releases it.
    pub next_attempt_at: Option<i64>,
    pub quarantined: bool,
}

/// A mailbox in the error queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRecord {
    pub cloud_id: String,
    pub attempts: u32,
    pub first_failed_at: i64,
    pub last_failed_at: i64,
    pub last_error: String,
    pub next_attempt_at: Option<i64>,
    pub quarantined: bool,
}

/// Where a held plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved; the engine applies it next.
    Approved,
    Discarded,
    /// Approved and applied.
    Applied,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Pending => "pending",
            PlanStatus::Approved => "approved",
            PlanStatus::Discarded => "discarded",
            PlanStatus::Applied => "applied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PlanStatus::Pending,
            PlanStatus::Approved,
            PlanStatus::Discarded,
            PlanStatus::Applied,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A cycle's plan held back because it crossed a safety threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldPlan {
    pub id: PlanId,
    pub cycle: CycleId,
    pub reason: String,
    pub plan: serde_json::Value,
    pub held_at: i64,
    pub status: PlanStatus,
    pub decided_at: Option<i64>,
}

/// objectGUID in the text form AD uses (`<GUID=...>`, LDIF, PowerShell): the first three
/// groups are little-endian.
pub fn guid_to_string(guid: &[u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = *guid;
    let mut out = format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
        a3, a2, a1, a0, b1, b0, c1, c0
    );
    for (i, byte) in rest.iter().enumerate() {
        if i == 2 {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let policy = RetryPolicy {
            base_delay_ms: 1_000,
            max_delay_ms: 10_000,
            quarantine_after: 5,
        };
        let delays: Vec<i64> = (1..=6).map(|n| policy.delay_after(n)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(policy.delay_after(0), 1_000);
        assert_eq!(policy.delay_after(u32::MAX), 10_000);
        let huge = RetryPolicy {
            base_delay_ms: i64::MAX / 2,
            max_delay_ms: i64::MAX,
            quarantine_after: 1,
        };
        assert_eq!(huge.delay_after(64), i64::MAX);
        let negative = RetryPolicy {
            base_delay_ms: -5,
            max_delay_ms: 100,
            quarantine_after: 1,
        };
        assert_eq!(negative.delay_after(3), 0);
    }

    #[test]
    fn outcome_round_trips_through_its_stored_parts() {
        let all = [
            Outcome::Applied,
            Outcome::Conflict,
            Outcome::Unknown,
            Outcome::Failed {
                code: 53,
                message: "unwilling".into(),
            },
        ];
        for outcome in all {
            let back = Outcome::from_parts(
                outcome.kind(),
                outcome.code(),
                outcome.message().map(str::to_string),
            );
            assert_eq!(back, Some(outcome));
        }
        assert_eq!(Outcome::from_parts("failed", Some(-1), None), None);
        assert_eq!(Outcome::from_parts("exploded", None, None), None);
    }

    #[test]
    fn guid_text_form_is_mixed_endian_like_ad() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(
            guid_to_string(&bytes),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
    }

    #[test]
    fn enum_text_forms_parse_back() {
        for m in [
            MatchedBy::ImmutableId,
            MatchedBy::Sid,
            MatchedBy::Dn,
            MatchedBy::Operator,
        ] {
            assert_eq!(MatchedBy::parse(m.as_str()), Some(m));
        }
        for s in [
            PlanStatus::Pending,
            PlanStatus::Approved,
            PlanStatus::Discarded,
            PlanStatus::Applied,
        ] {
            assert_eq!(PlanStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MatchedBy::parse("upn"), None);
    }
}
