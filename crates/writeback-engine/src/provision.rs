//! The on-demand path for one mailbox (`writeback provision`), and applying a saved plan
//! (`writeback apply FILE`). Both journal and audit their writes like a cycle does.

use crate::apply::Final;
use crate::cycle::ObjectSink;
use crate::engine::{now_ms, Assessment, Engine};
use crate::error::EngineError;
use crate::report::{CycleSummary, ObjectReport};
use writeback_ad::{ids, UserKey};
use writeback_core::Mailbox;
use writeback_state::{Outcome, StagedWrite, StateStore, WriteIntent};

/// Receives `(step, what happened)` lines: read, match, plan, write, verify.
pub type StepSink<'a> = &'a mut (dyn FnMut(&str, String) + Send);

/// How a provision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionOutcome {
    Written,
    AlreadyInSync,
    Planned,
    NotFound,
    Skipped,
    Failed,
}

impl<S: StateStore + ?Sized> Engine<S> {
    /// Reads one mailbox (by SMTP address, cloud id, or the DN of its AD user), matches,
    /// plans, writes (unless `dry_run`) and verifies, reporting each step.
    pub async fn provision(
        &self,
        identity: &str,
        dry_run: bool,
        step: StepSink<'_>,
    ) -> Result<ProvisionOutcome, EngineError> {
        self.refresh_anchors().await?;
        let Some(mailbox) = self.read_for_provision(identity, step).await? else {
            return Ok(ProvisionOutcome::NotFound);
        };
        step("read", format!(
            "Exchange Online: {} <{}>, {}, cloud-managed",
            mailbox.cloud_id,
            mailbox.primary_smtp.as_deref().unwrap_or("-"),
            mailbox.recipient_type_details.as_deref().unwrap_or("-"),
        ));
        let now = now_ms();
        let (mailbox, assessment) = self.assess(mailbox, now).await?;
        let (user, mods) = match assessment {
            Assessment::Planned { user, mods } => (user, mods),
            Assessment::InSync { user } => {
                step("match", format!("AD: {}", user.dn));
                step("plan", "nothing to write: AD already matches the cloud".into());
                return Ok(ProvisionOutcome::AlreadyInSync);
            }
            Assessment::Skipped(reason) => {
                step("match", format!("skipped ({}): {reason}", reason.code()));
                return Ok(ProvisionOutcome::Skipped);
            }
            Assessment::Invalid { dn, error } => {
                step("match", format!("AD: {}", dn.unwrap_or_else(|| "-".into())));
                step("plan", format!("the cloud record is invalid: {error}"));
                return Ok(ProvisionOutcome::Failed);
            }
            Assessment::Quarantined { error } => {
                step("match", format!("quarantined after repeated failures (last: {error}); `writeback release {}` first", mailbox.cloud_id));
                return Ok(ProvisionOutcome::Skipped);
            }
        };
        step("match", format!("AD: {} (objectGUID {})", user.dn, user.guid_string()));
        step("plan", format!("{} change(s):", mods.len()));
        for m in &mods {
            step("plan", format!("  {:<7} {}: {:?}", m.op.as_str(), m.attribute.ldap_name(), m.values));
        }
        if dry_run {
            return Ok(ProvisionOutcome::Planned);
        }
        let cycle = self.store.begin_cycle(now)?;
        let write = StagedWrite {
            cloud_id: mailbox.cloud_id.clone(),
            object_guid: user.object_guid,
            dn: user.dn.clone(),
            usn_changed: user.usn_changed,
            mods,
            before: user.values.clone(),
            mailbox,
        };
        let intent = WriteIntent {
            cycle,
            cloud_id: &write.cloud_id,
            object_guid: write.object_guid,
            dn: &write.dn,
            mods: &write.mods,
            before: &write.before,
        };
        let id = self.store.record_intent(&intent, now_ms())?;
        let (_, outcome, final_state, write) = self.apply_one(cycle, id, write).await?;
        self.store.record_outcome(id, &outcome, now_ms())?;
        let mut summary = CycleSummary { cycle: Some(cycle.0), pass: "provision", mailboxes: 1, planned: 1, complete: true, ..CycleSummary::default() };
        let result = match final_state {
            Final::Applied(_) => {
                summary.applied = 1;
                self.store.clear_failure(&write.cloud_id)?;
                step("write", "written".into());
                ProvisionOutcome::Written
            }
            Final::InSync => {
                step("write", "the object changed meanwhile and now already matches".into());
                ProvisionOutcome::AlreadyInSync
            }
            Final::Failed(error) => {
                summary.failed = 1;
                step("write", format!("failed: {error}"));
                ProvisionOutcome::Failed
            }
        };
        self.store.finish_cycle(cycle, now_ms(), &serde_json::to_value(&summary).unwrap_or_default())?;
        if result == ProvisionOutcome::Written {
            let guid_dn = ids::guid_dn(&write.object_guid);
            match self.dir.read(&guid_dn).await? {
                Some(now_user) => match self.plan_for(&write.mailbox, now_user) {
                    Assessment::InSync { .. } => step("verify", "re-read: AD matches the cloud".into()),
                    other => step("verify", format!("re-read: still differs ({other:?})")),
                },
                None => step("verify", "re-read: the object is gone".into()),
            }
        }
        Ok(result)
    }

    async fn read_for_provision(&self, identity: &str, step: StepSink<'_>) -> Result<Option<Mailbox>, EngineError> {
        let cloud_identity = if identity.contains('=') && identity.contains(',') {
            // A DN: find the AD object, then its cloud user through the Graph anchors.
            let Some(user) = self.dir.find(&UserKey::Dn(identity.to_owned())).await?.into_iter().next() else {
                step("read", format!("no AD object at {identity}"));
                return Ok(None);
            };
            // mS-DS-ConsistencyGuid first: it is the source anchor when set, as in the matcher.
            let immutable_ids: Vec<String> = user
                .consistency_guid
                .as_deref()
                .map(ids::bytes_to_immutable_id)
                .into_iter()
                .chain(std::iter::once(ids::bytes_to_immutable_id(&user.object_guid)))
                .collect();
            let found = self.store.anchor_owner(&immutable_ids, user.object_sid.as_deref())?;
            match found {
                Some(id) => id,
                None => {
                    step("read", format!("no cloud user is anchored to {identity}"));
                    return Ok(None);
                }
            }
        } else {
            identity.to_owned()
        };
        match self.cloud.exchange.lookup(&cloud_identity).await? {
            None => {
                step("read", format!("Exchange Online has no mailbox {cloud_identity}"));
                Ok(None)
            }
            Some(Err(e)) => {
                step("read", format!("mailbox {cloud_identity} cannot be used: {}: {}", e.field, e.detail));
                Ok(None)
            }
            Some(Ok(mailbox)) => Ok(Some(mailbox)),
        }
    }

    /// Applies a plan saved by `writeback plan --out`, object by object, refusing any object
    /// that changed in AD since the plan was made (its uSNChanged moved) or that may no
    /// longer be written.
    pub async fn apply_saved(&self, objects: &[ObjectReport], sink: ObjectSink<'_>) -> Result<CycleSummary, EngineError> {
        let cycle = self.store.begin_cycle(now_ms())?;
        let mut summary = CycleSummary { cycle: Some(cycle.0), pass: "saved-plan", complete: true, ..CycleSummary::default() };
        let scope = self.scope();
        for object in objects.iter().filter(|o| !o.changes.is_empty()) {
            summary.planned += 1;
            let mut report = ObjectReport { cloud_id: object.cloud_id.clone(), dn: object.dn.clone(), changes: object.changes.clone(), ..ObjectReport::default() };
            let refuse = |report: &mut ObjectReport, why: String| {
                report.status = "refused".into();
                report.error = Some(why);
            };
            let guid = object.object_guid.as_deref().and_then(ids::guid_from_string);
            let (Some(guid), Some(usn)) = (guid, object.usn_changed) else {
                summary.failed += 1;
                refuse(&mut report, "the plan entry lacks object_guid/usn_changed".into());
                sink(&report);
                continue;
            };
            let user = self.dir.read(&ids::guid_dn(&guid)).await?;
            let refusal = match &user {
                None => Some("the object no longer exists".to_string()),
                Some(u) if u.usn_changed != usn => Some(format!("AD changed since the plan (uSNChanged {usn} → {}): plan again", u.usn_changed)),
                Some(u) if !u.is_user() => Some("not a user object".into()),
                Some(u) if u.protection().is_some() => u.protection().map(|r| format!("protected: {r}")),
                Some(u) if !crate::matcher::in_scope(&u.dn, &scope) => Some("outside the configured scope".into()),
                Some(_) => None,
            };
            let Some(user) = user.filter(|_| refusal.is_none()) else {
                summary.failed += 1;
                refuse(&mut report, refusal.unwrap_or_default());
                sink(&report);
                continue;
            };
            let intent = WriteIntent { cycle, cloud_id: &object.cloud_id, object_guid: user.object_guid, dn: &user.dn, mods: &object.changes, before: &user.values };
            let id = self.store.record_intent(&intent, now_ms())?;
            let outcome = match self.dir.apply(&user, &object.changes).await {
                Ok(()) => {
                    summary.applied += 1;
                    report.status = "applied".into();
                    Outcome::Applied
                }
                Err(e) => {
                    summary.failed += 1;
                    refuse(&mut report, e.to_string());
                    crate::apply::outcome_of(&e)
                }
            };
            self.store.record_outcome(id, &outcome, now_ms())?;
            sink(&report);
        }
        self.store.finish_cycle(cycle, now_ms(), &serde_json::to_value(&summary).unwrap_or_default())?;
        Ok(summary)
    }
}
