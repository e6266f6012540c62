//! Plans held back by the safety brakes, and the operator's decisions on them.

use crate::error::{Result, StateError};
use crate::model::{CycleId, HeldPlan, PlanId, PlanStatus};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

const COLUMNS: &str = "id, cycle_id, reason, plan, held_at, status, decided_at";

pub(super) fn hold(
    tx: &Transaction<'_>,
    cycle: CycleId,
    reason: &str,
    plan: &str,
    now: i64,
) -> Result<PlanId> {
    tx.prepare_cached(
        "INSERT INTO held_plans (cycle_id, reason, plan, held_at, status) VALUES (?1, ?2, ?3, ?4, 'pending')",
    )?
    .execute(params![cycle.0, reason, plan, now])?;
    Ok(PlanId(tx.last_insert_rowid()))
}

pub(super) fn all(conn: &Connection) -> Result<Vec<HeldPlan>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM held_plans ORDER BY id"))?;
    let rows = stmt.query_map([], RawPlan::from_row)?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn one(conn: &Connection, id: PlanId) -> Result<Option<HeldPlan>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM held_plans WHERE id = ?1"))?;
    let raw = stmt.query_row([id.0], RawPlan::from_row).optional()?;
    raw.map(RawPlan::decode).transpose()
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Decision {
    Approve,
    Discard,
    MarkApplied,
}

impl Decision {
    /// The statuses the decision may be taken from, and the status it leads to.
    fn rule(self) -> (&'static [PlanStatus], PlanStatus) {
        match self {
            Decision::Approve => (&[PlanStatus::Pending], PlanStatus::Approved),
            Decision::Discard => (
                &[PlanStatus::Pending, PlanStatus::Approved],
                PlanStatus::Discarded,
            ),
            Decision::MarkApplied => (&[PlanStatus::Approved], PlanStatus::Applied),
        }
    }
}

pub(super) fn transition(
    tx: &Transaction<'_>,
    id: PlanId,
    decision: Decision,
    now: i64,
) -> Result<()> {
    let plan = one(tx, id)?.ok_or_else(|| StateError::not_found("held plan", id))?;
    let (from, to) = decision.rule();
    if !from.contains(&plan.status) {
        return Err(StateError::InvalidTransition {
            what: "held plan",
            id: id.to_string(),
            detail: format!("is {}, cannot become {}", plan.status.as_str(), to.as_str()),
        });
    }
    tx.prepare_cached("UPDATE held_plans SET status = ?2, decided_at = ?3 WHERE id = ?1")?
        .execute(params![id.0, to.as_str(), now])?;
    Ok(())
}

struct RawPlan {
    id: i64,
    cycle: i64,
    reason: String,
    plan: String,
    held_at: i64,
    status: String,
    decided_at: Option<i64>,
}

impl RawPlan {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawPlan {
            id: row.get(0)?,
            cycle: row.get(1)?,
            reason: row.get(2)?,
            plan: row.get(3)?,
            held_at: row.get(4)?,
            status: row.get(5)?,
            decided_at: row.get(6)?,
        })
    }

    fn decode(self) -> Result<HeldPlan> {
        Ok(HeldPlan {
            id: PlanId(self.id),
            cycle: CycleId(self.cycle),
            plan: serde_json::from_str(&self.plan)
                .map_err(|e| StateError::corrupt("held plan", e))?,
            status: PlanStatus::parse(&self.status)
                .ok_or_else(|| StateError::corrupt("plan status", &self.status))?,
            reason: self.reason,
            held_at: self.held_at,
            decided_at: self.decided_at,
        })
    }
}
