//! `writeback approve`, `discard` and `show-plan`: the operator's side of the safety brakes.
//!
//! A held plan's JSON is what the engine stored (`{"summary": {...}, "objects": [...]}`); it
//! is read defensively, member by member, so a plan written by another version still shows.

use super::text::{printable, rfc3339, rfc3339_opt, summary_pairs, value_list};
use super::{command_prefix, finish_output, now_ms, open_existing_state};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use writeback_state::{HeldPlan, PlanId, PlanStatus, SqliteStore, StateStore};

/// A held plan as `show-plan --json` prints it.
#[derive(Debug, Serialize)]
struct PlanView<'a> {
    id: i64,
    cycle: i64,
    status: &'static str,
    reason: &'a str,
    held_at: String,
    decided_at: Option<String>,
    summary: &'a Value,
    objects: &'a Value,
}

fn load(store: &SqliteStore, plan_id: i64) -> Result<HeldPlan> {
    store
        .held_plan(PlanId(plan_id))
        .context("reading held plans")?
        .with_context(|| format!("there is no held plan {plan_id} (`writeback status` lists them)"))
}

fn summary(plan: &HeldPlan) -> &Value {
    plan.plan.get("summary").unwrap_or(&Value::Null)
}

fn objects(plan: &HeldPlan) -> &[Value] {
    plan.plan
        .get("objects")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The lines an operator reads before deciding: why it was held and how big it is.
fn write_header(plan: &HeldPlan, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "plan {} ({}), held at {} by cycle {}",
        plan.id,
        plan.status.as_str(),
        rfc3339(plan.held_at),
        plan.cycle
    )?;
    if let Some(decided) = plan.decided_at {
        writeln!(out, "decided at {}", rfc3339(decided))?;
    }
    writeln!(out, "reason:  {}", printable(&plan.reason))?;
    writeln!(out, "summary: {}", summary_pairs(summary(plan)))?;
    let omitted = plan.plan.get("objects_omitted").and_then(Value::as_u64).unwrap_or(0);
    if omitted > 0 {
        writeln!(out, "objects: {} (the first {} are kept for review)", objects(plan).len() as u64 + omitted, objects(plan).len())
    } else {
        writeln!(out, "objects: {}", objects(plan).len())
    }
}

pub fn approve(config: &Config, plan_id: i64) -> Result<i32> {
    let store = open_existing_state(config)?;
    let plan = load(&store, plan_id)?;
    let mut out = std::io::stdout().lock();
    finish_output(write_header(&plan, &mut out))?;
    if plan.status != PlanStatus::Pending {
        bail!(
            "plan {plan_id} is {}; only a pending plan can be approved",
            plan.status.as_str()
        );
    }
    store
        .approve_plan(PlanId(plan_id), now_ms())
        .with_context(|| format!("approving plan {plan_id}"))?;
    finish_output(writeln!(
        out,
        "approved plan {plan_id}: the next cycle that crosses a brake is applied if it plans \
         no more than this plan did (`{} discard {plan_id}` withdraws the approval until then)",
        command_prefix(config)
    ))?;
    Ok(0)
}

pub fn discard(config: &Config, plan_id: i64) -> Result<i32> {
    let store = open_existing_state(config)?;
    let plan = load(&store, plan_id)?;
    let mut out = std::io::stdout().lock();
    finish_output(write_header(&plan, &mut out))?;
    if !matches!(plan.status, PlanStatus::Pending | PlanStatus::Approved) {
        bail!(
            "plan {plan_id} is {}; only a pending or approved plan can be discarded",
            plan.status.as_str()
        );
    }
    store
        .discard_plan(PlanId(plan_id), now_ms())
        .with_context(|| format!("discarding plan {plan_id}"))?;
    finish_output(writeln!(
        out,
        "discarded plan {plan_id}: nothing of it is applied; while the cloud still asks for \
         these changes, the next cycle that crosses a brake is held again"
    ))?;
    Ok(0)
}

pub fn show_plan(config: &Config, plan_id: i64, json: bool) -> Result<i32> {
    let store = open_existing_state(config)?;
    let plan = load(&store, plan_id)?;
    let mut out = std::io::stdout().lock();
    if json {
        let view = PlanView {
            id: plan.id.0,
            cycle: plan.cycle.0,
            status: plan.status.as_str(),
            reason: &plan.reason,
            held_at: rfc3339(plan.held_at),
            decided_at: rfc3339_opt(plan.decided_at),
            summary: summary(&plan),
            objects: plan.plan.get("objects").unwrap_or(&Value::Null),
        };
        let text = serde_json::to_string_pretty(&view).context("encoding the plan")?;
        finish_output(writeln!(out, "{text}"))?;
    } else {
        finish_output(write_plan(&plan, &command_prefix(config), &mut out))?;
    }
    Ok(0)
}

fn write_plan(plan: &HeldPlan, prefix: &str, out: &mut dyn Write) -> std::io::Result<()> {
    write_header(plan, out)?;
    for object in objects(plan) {
        let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("?");
        writeln!(
            out,
            "\n{}  {}",
            printable(text("cloud_id")),
            printable(text("dn"))
        )?;
        let changes = object.get("changes").and_then(Value::as_array);
        for change in changes.map_or(&[][..], Vec::as_slice) {
            let field = |key: &str| change.get(key).and_then(Value::as_str).unwrap_or("?");
            let values: Vec<String> = change
                .get("values")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            let values = if values.is_empty() {
                "(all values)".to_string()
            } else {
                value_list(&values)
            };
            writeln!(
                out,
                "    {:<7} {} {values}",
                printable(field("op")),
                printable(field("attribute"))
            )?;
        }
    }
    if plan.status == PlanStatus::Pending {
        writeln!(
            out,
            "\napprove: {prefix} approve {id}\ndiscard: {prefix} discard {id}",
            id = plan.id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use writeback_state::CycleId;

    fn held(plan: Value, status: PlanStatus) -> HeldPlan {
        HeldPlan {
            id: PlanId(4),
            cycle: CycleId(9),
            reason: "600 objects would change".into(),
            plan,
            held_at: 0,
            status,
            decided_at: None,
        }
    }

    #[test]
    fn a_plan_kept_in_part_says_how_many_objects_it_has_in_all() {
        let object = serde_json::json!({"cloud_id": "m", "dn": "CN=A,DC=x", "changes": []});
        let plan = held(
            serde_json::json!({"summary": {"planned": 7}, "objects": [object.clone(), object], "objects_omitted": 5}),
            PlanStatus::Pending,
        );
        let mut out = Vec::new();
        write_header(&plan, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("objects: 7 (the first 2 are kept for review)"), "{text}");
    }

    #[test]
    fn plan_text_lists_each_change_and_the_next_step() {
        let plan = held(
            serde_json::json!({
                "summary": {"planned": 1, "values_cleared": 1},
                "objects": [{
                    "cloud_id": "m1",
                    "dn": "CN=A,DC=x",
                    "changes": [
                        {"attribute": "extensionAttribute1", "op": "delete", "values": ["old"]},
                        {"attribute": "extensionAttribute1", "op": "add", "values": ["new"]},
                        {"attribute": "extensionAttribute2", "op": "delete", "values": []}
                    ]
                }]
            }),
            PlanStatus::Pending,
        );
        let mut out = Vec::new();
        write_plan(&plan, "writeback --config x.toml", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("plan 4 (pending), held at 1970-01-01T00:00:00.000Z by cycle 9\n"),
            "{text}"
        );
        assert!(
            text.contains("summary: planned=1 values_cleared=1"),
            "{text}"
        );
        assert!(text.contains("\nm1  CN=A,DC=x\n"), "{text}");
        assert!(
            text.contains("    delete  extensionAttribute1 \"old\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    add     extensionAttribute1 \"new\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    delete  extensionAttribute2 (all values)\n"),
            "{text}"
        );
        assert!(
            text.contains("approve: writeback --config x.toml approve 4"),
            "{text}"
        );
    }

    #[test]
    fn a_plan_of_unexpected_shape_still_shows() {
        let plan = held(
            serde_json::json!({"objects": [{"changes": "nonsense"}, 7]}),
            PlanStatus::Applied,
        );
        let mut out = Vec::new();
        write_plan(&plan, "writeback", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("objects: 2"), "{text}");
        assert!(text.contains("\n?  ?\n"), "{text}");
        assert!(
            !text.contains("approve:"),
            "only a pending plan offers approval: {text}"
        );
    }
}
