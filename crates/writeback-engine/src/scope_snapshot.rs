//! Full passes against a snapshot of the scope.
//!
//! A full pass looks at every cloud-managed mailbox. Reading each one's AD object with its own
//! search costs a round trip per mailbox; instead the pass starts with one paged search of
//! the scope (a round trip per thousand objects, after the Graph anchors are refreshed), kept
//! in a [`ScopeSnapshot`] on disk, and every mailbox's object is then looked up locally.
//!
//! Only the common, unambiguous cases are decided from the snapshot: a remembered join whose
//! object is in scope and still agrees with the anchors, or a first match that finds exactly
//! one object in scope (see [`SnapshotPlanner`]'s `first_match` for the rules). Everything
//! else (no object in the snapshot, several, only a DN hint) goes to the live matcher, which
//! searches the directory the way an incremental pass does and so reports out-of-scope,
//! ambiguous and not-a-user objects exactly as it always has. That matters for speed too:
//! mS-DS-ConsistencyGuid is not indexed on every DC, and the live matcher's domain-wide
//! search for it reads every object.
//!
//! A snapshot is as old as the pass; that is safe because every write is value-specific: an
//! object edited on-prem since the snapshot was read fails its write with a conflict and is
//! re-read and re-planned (see `apply.rs`).

use crate::cycle::WATERMARK_SCAN_BOUNDS;
use crate::engine::{now_ms, Assessment, Engine};
use crate::error::EngineError;
use crate::matcher::{anchors_disagree, verify, Matched};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use writeback_ad::scan::{LearnedBounds, UsnSample};
use writeback_ad::{ids, AdUser};
use writeback_cloud::{anchor_key, CloudError, DeliveredIds};
use writeback_core::{plan, Anchors, Mailbox, PlanPolicy};
use writeback_state::codec::{self, CompactValues};
use writeback_state::{Join, MailboxState, MatchedBy, ScopeSnapshot, SnapshotRow, StateStore};

/// The users a scope snapshot holds: every user account (computers are `user`s too, and are
/// left out like any other non-person object; the live matcher reports them).
const SNAPSHOT_FILTER: &str = "(&(objectCategory=person)(objectClass=user))";
/// Objects written to the snapshot per transaction.
const SNAPSHOT_BATCH: usize = 1000;

/// The largest change a full pass could plan from a snapshot: every user in it changed, every
/// managed value they hold cleared (a write can only clear values the object has).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScopeTotals {
    pub objects: u64,
    pub values: u64,
}

/// What the snapshot could decide about one mailbox.
#[derive(Debug)]
pub enum Resolution {
    /// Decided without the directory. `had_failure`: the mailbox is in the error queue (so
    /// a success must clear it; most mailboxes are not, and skip that write).
    Decided { assessment: Assessment, had_failure: bool },
    /// Needs a live lookup.
    Live,
}

/// Matches and plans mailboxes against a snapshot and the state store: no I/O beyond the two
/// local SQLite files, so it is also what the engine-alone benchmark measures.
pub struct SnapshotPlanner<'a, S: ?Sized> {
    pub store: &'a S,
    pub snapshot: &'a ScopeSnapshot,
    pub scope: &'a [String],
    pub policy: &'a PlanPolicy,
}

/// A mailbox part-way through [`SnapshotPlanner::assess_page`].
enum Step {
    Done(Resolution),
    /// Found in the snapshot; still to be verified (and planned).
    Found { matched: Box<Matched>, join: Option<Join>, had_failure: bool },
}

impl<S: StateStore + ?Sized> SnapshotPlanner<'_, S> {
    /// [`SnapshotPlanner::assess_page`] for one mailbox.
    pub fn assess(&self, mailbox: &mut Mailbox, now: i64) -> Result<Resolution, EngineError> {
        let page = self.assess_page(vec![std::mem::take(mailbox)], now)?;
        let Some((back, resolution)) = page.into_iter().next() else {
            return Err(EngineError::Snapshot("a page of one mailbox came back empty".into()));
        };
        *mailbox = back;
        Ok(resolution)
    }

    /// Attaches each mailbox's Graph anchors, then matches and plans it if the snapshot can,
    /// in order. The store is read twice for the whole page (what it knows of the mailboxes;
    /// who holds the objects first matched) and written once (the page's new joins), instead
    /// of several times per mailbox.
    pub fn assess_page(
        &self,
        mut mailboxes: Vec<Mailbox>,
        now: i64,
    ) -> Result<Vec<(Mailbox, Resolution)>, EngineError> {
        let anchor_keys: Vec<String> = mailboxes.iter().map(|m| anchor_key(&m.cloud_id)).collect();
        let keys: Vec<(&str, &str)> =
            mailboxes.iter().zip(&anchor_keys).map(|(m, key)| (m.cloud_id.as_str(), key.as_str())).collect();
        let states = self.store.mailbox_states(&keys)?;
        drop(keys);
        let mut steps = Vec::with_capacity(mailboxes.len());
        for (mailbox, state) in mailboxes.iter_mut().zip(states) {
            steps.push(self.find(mailbox, state)?);
        }
        // Who holds a join to each object matched for the first time (or newly re-matched).
        let first_guids: Vec<[u8; 16]> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Found { matched, join, .. } if !own_join(join.as_ref(), matched) => {
                    Some(matched.user.object_guid)
                }
                _ => None,
            })
            .collect();
        let mut holders = self.store.joins_by_guids(&first_guids)?.into_iter();
        // Objects claimed earlier in this page: their joins are not in the store yet.
        let mut claimed: HashMap<[u8; 16], String> = HashMap::new();
        let mut new_joins = Vec::new();
        let mut out = Vec::with_capacity(mailboxes.len());
        for (mailbox, step) in mailboxes.into_iter().zip(steps) {
            let (matched, join, had_failure) = match step {
                Step::Done(resolution) => {
                    out.push((mailbox, resolution));
                    continue;
                }
                Step::Found { matched, join, had_failure } => (*matched, join, had_failure),
            };
            let guid = matched.user.object_guid;
            let stored_holder;
            let holder = if own_join(join.as_ref(), &matched) {
                None
            } else {
                stored_holder = holders.next().flatten();
                stored_holder.as_ref().map(|j| j.cloud_id.as_str()).or_else(|| claimed.get(&guid).map(String::as_str))
            };
            let assessment = match verify(self.scope, &mailbox, &matched, join.as_ref(), holder, now) {
                Ok(record) => {
                    if let Some(record) = record {
                        claimed.insert(guid, record.cloud_id.clone());
                        new_joins.push(record);
                    }
                    plan_for(self.policy, &mailbox, matched.user)
                }
                Err(reason) => Assessment::Skipped(reason),
            };
            out.push((mailbox, Resolution::Decided { assessment, had_failure }));
        }
        self.store.upsert_joins(&new_joins)?;
        Ok(out)
    }

    /// The mailbox's object in the snapshot, by its join or a first match.
    fn find(&self, mailbox: &mut Mailbox, state: MailboxState) -> Result<Step, EngineError> {
        merge_anchors(mailbox, state.anchors);
        if let Some(failure) = &state.failure {
            if failure.quarantined {
                let assessment = Assessment::Quarantined { error: failure.last_error.clone() };
                return Ok(Step::Done(Resolution::Decided { assessment, had_failure: true }));
            }
        }
        let had_failure = state.failure.is_some();
        let matched = match &state.join {
            Some(join) => match self.user(&join.object_guid)? {
                Some(user) if anchors_disagree(mailbox, &user).is_none() => {
                    Matched { user, matched_by: join.matched_by }
                }
                // Moved out of scope, deleted, or no longer this mailbox's object.
                _ => return Ok(Step::Done(Resolution::Live)),
            },
            None => match self.first_match(mailbox)? {
                Some(matched) => matched,
                None => return Ok(Step::Done(Resolution::Live)),
            },
        };
        Ok(Step::Found { matched: Box::new(matched), join: state.join, had_failure })
    }

    /// A first match the snapshot can make on its own: exactly one object in scope with the
    /// mailbox's mS-DS-ConsistencyGuid; or, with none, the object in scope whose objectGUID
    /// is the immutable id, when Graph's onPremisesDistinguishedName names that very object
    /// (otherwise an object outside the scope could carry the id as its ConsistencyGuid, a
    /// migrated account, and only a live search of the domain can tell); or, without an
    /// immutable id, exactly one object in scope with the mailbox's SID.
    fn first_match(&self, mailbox: &Mailbox) -> Result<Option<Matched>, EngineError> {
        let anchors = &mailbox.anchors;
        if let Some(immutable_id) = anchors.immutable_id.as_deref().filter(|s| !s.is_empty()) {
            // An invalid id is for the live matcher to report.
            let Ok(bytes) = ids::immutable_id_to_bytes(immutable_id) else { return Ok(None) };
            let by_cg = self.snapshot.by_consistency_guid(&bytes)?;
            if !by_cg.is_empty() {
                return single(&by_cg, MatchedBy::ImmutableId);
            }
            let Some(user) = self.user(&bytes)? else { return Ok(None) };
            let own_cg_agrees = user.consistency_guid.as_deref().is_none_or(|cg| cg == bytes);
            let dn_agrees = anchors.dn.as_deref().is_some_and(|dn| dn.eq_ignore_ascii_case(&user.dn));
            return Ok((own_cg_agrees && dn_agrees).then_some(Matched { user, matched_by: MatchedBy::ImmutableId }));
        }
        if let Some(sid) = anchors.sid.as_deref().filter(|s| !s.is_empty()) {
            return single(&self.snapshot.by_sid(sid)?, MatchedBy::Sid);
        }
        Ok(None)
    }

    fn user(&self, guid: &[u8; 16]) -> Result<Option<AdUser>, EngineError> {
        self.snapshot.by_guid(guid)?.map(|payload| decode(&payload)).transpose()
    }
}

/// The ids a full pass's Exchange reader delivered, kept in the pass's scope snapshot (on disk)
/// rather than in memory: at millions of mailboxes that set was what still grew with the tenant.
pub(crate) struct SnapshotDeliveredIds<'a> {
    snapshot: &'a ScopeSnapshot,
    count: u64,
}

impl<'a> SnapshotDeliveredIds<'a> {
    pub(crate) fn new(snapshot: &'a ScopeSnapshot) -> Self {
        SnapshotDeliveredIds { snapshot, count: 0 }
    }
}

impl DeliveredIds for SnapshotDeliveredIds<'_> {
    fn first_delivery(&mut self, id: &str) -> Result<bool, CloudError> {
        // GUIDs in one spelling, so that they compare case-insensitively as the reader's own
        // in-memory set does.
        let first = self
            .snapshot
            .first_delivery(anchor_key(id).as_bytes())
            .map_err(|e| CloudError::DeliveredIds(e.to_string()))?;
        self.count += u64::from(first);
        Ok(first)
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// The mailbox's join to this very object: no other mailbox can hold it (joins are unique
/// by GUID), so who holds it needs no lookup.
fn own_join(join: Option<&Join>, matched: &Matched) -> bool {
    join.is_some_and(|j| j.object_guid == matched.user.object_guid)
}

/// Fills in the Graph anchors the Exchange record lacks, from the state store.
pub(crate) fn attach_anchors<S: StateStore + ?Sized>(store: &S, mailbox: &mut Mailbox) -> Result<(), EngineError> {
    let anchors = store.anchors(&anchor_key(&mailbox.cloud_id))?;
    merge_anchors(mailbox, anchors);
    Ok(())
}

fn merge_anchors(mailbox: &mut Mailbox, anchors: Option<Anchors>) {
    if let Some(anchors) = anchors {
        let mine = &mut mailbox.anchors;
        if mine.immutable_id.is_none() {
            mine.immutable_id = anchors.immutable_id;
        }
        if mine.sid.is_none() {
            mine.sid = anchors.sid;
        }
        if mine.dn.is_none() {
            mine.dn = anchors.dn;
        }
    }
}

/// Plans `mailbox` against the object as read.
pub(crate) fn plan_for(policy: &PlanPolicy, mailbox: &Mailbox, user: AdUser) -> Assessment {
    match plan(mailbox, &user.values, policy) {
        Ok(mods) if mods.is_empty() => Assessment::InSync { user: Box::new(user) },
        Ok(mods) => Assessment::Planned { user: Box::new(user), mods },
        Err(e) => Assessment::Invalid { dn: Some(user.dn), error: e.to_string() },
    }
}

/// The snapshot row of one object: its keys and the object itself, serialised.
pub fn snapshot_row(user: &AdUser) -> Result<SnapshotRow, EngineError> {
    let payload = codec::encode("snapshot object", &CompactUser::new(user))?;
    Ok(SnapshotRow {
        object_guid: user.object_guid,
        consistency_guid: user.consistency_guid.clone(),
        sid: user.object_sid.clone(),
        payload,
    })
}

/// [`AdUser`] in the snapshot's compact form (see `writeback_state::codec`).
#[derive(Serialize, Deserialize)]
struct CompactUser<'a> {
    #[serde(borrow)]
    dn: Cow<'a, str>,
    object_guid: [u8; 16],
    object_sid: Option<Cow<'a, str>>,
    consistency_guid: Option<Cow<'a, [u8]>>,
    sam_account_name: Option<Cow<'a, str>>,
    object_classes: Vec<Cow<'a, str>>,
    admin_count: bool,
    critical_system_object: bool,
    usn_changed: u64,
    values: CompactValues<'a>,
}

impl<'a> CompactUser<'a> {
    fn new(user: &'a AdUser) -> Self {
        CompactUser {
            dn: Cow::Borrowed(&user.dn),
            object_guid: user.object_guid,
            object_sid: user.object_sid.as_deref().map(Cow::Borrowed),
            consistency_guid: user.consistency_guid.as_deref().map(Cow::Borrowed),
            sam_account_name: user.sam_account_name.as_deref().map(Cow::Borrowed),
            object_classes: user.object_classes.iter().map(|c| Cow::Borrowed(c.as_str())).collect(),
            admin_count: user.admin_count,
            critical_system_object: user.critical_system_object,
            usn_changed: user.usn_changed,
            values: CompactValues::new(&user.values),
        }
    }

    fn into_user(self) -> Result<AdUser, EngineError> {
        Ok(AdUser {
            dn: self.dn.into_owned(),
            object_guid: self.object_guid,
            object_sid: self.object_sid.map(Cow::into_owned),
            consistency_guid: self.consistency_guid.map(Cow::into_owned),
            sam_account_name: self.sam_account_name.map(Cow::into_owned),
            object_classes: self.object_classes.into_iter().map(Cow::into_owned).collect(),
            admin_count: self.admin_count,
            critical_system_object: self.critical_system_object,
            usn_changed: self.usn_changed,
            // Only a scan's split uses it, and a snapshot is read after its scan.
            usn_created: 0,
            values: self.values.into_values()?,
        })
    }
}

/// The one object found, or none when there are several (the live matcher reports those).
fn single(found: &[Vec<u8>], by: MatchedBy) -> Result<Option<Matched>, EngineError> {
    match found {
        [payload] => Ok(Some(Matched { user: decode(payload)?, matched_by: by })),
        _ => Ok(None),
    }
}

fn decode(payload: &[u8]) -> Result<AdUser, EngineError> {
    codec::decode::<CompactUser<'_>>("snapshot object", payload)?.into_user()
}

impl<S: StateStore + ?Sized> Engine<S> {
    /// Reads every user in scope into a new snapshot, a page at a time, in `[ad] scan_streams`
    /// searches at once over disjoint parts of the scope (split by uSNCreated, a few parts a
    /// search, taken from a queue: see `writeback_ad::scan`). Where the last scan put the
    /// bounds is kept in the state store, so the parts stay about even as the domain's USNs
    /// move on; `dry_run` leaves it as it was.
    pub(crate) async fn load_snapshot(&self, dry_run: bool) -> Result<(ScopeSnapshot, ScopeTotals), EngineError> {
        let dir = self.settings.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
        let snapshot = ScopeSnapshot::create_in(&dir)?;
        let started = std::time::Instant::now();
        let learned = self.learned_scan_bounds()?;
        let sample = Mutex::new(UsnSample::default());
        // The same parts for every scope DN: they split by USN, not by place.
        let parts = self.dir.scan_parts(SNAPSHOT_FILTER, learned.as_ref()).await?;
        let streams = self.dir.config().scan_streams.clamp(1, parts.filters.len().max(1));
        let mut total = 0u64;
        let values = AtomicU64::new(0);
        for base in self.scope() {
            // `scan_streams` searches at once, each on a reader connection of its own and taking
            // the next part when it is done with one.
            let next = AtomicUsize::new(0);
            let (filters, next, snapshot, values, sample, base) = (&parts.filters, &next, &snapshot, &values, &sample, &base);
            let scans = (0..streams).map(|reader| async move {
                let mut read = 0u64;
                while let Some(filter) = filters.get(next.fetch_add(1, Ordering::Relaxed)) {
                    read += self.load_part(reader, snapshot, values, sample, base, filter).await?;
                }
                Ok::<u64, EngineError>(read)
            });
            total += futures_util::future::try_join_all(scans).await?.into_iter().sum::<u64>();
        }
        let values = values.into_inner();
        let sample = sample.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(next) = sample.learned(&parts.dc, parts.parts).filter(|_| !dry_run) {
            if learned.as_ref() != Some(&next) {
                let text = serde_json::to_string(&next).map_err(|e| EngineError::Snapshot(format!("scan bounds: {e}")))?;
                self.store.set_watermark(WATERMARK_SCAN_BOUNDS, &text, now_ms())?;
            }
        }
        snapshot.finish_loading()?;
        tracing::info!(objects = total, ms = started.elapsed().as_millis() as u64, "scope snapshot read");
        Ok((snapshot, ScopeTotals { objects: total, values }))
    }

    /// The bounds the last scan learned; none (an even split) if they cannot be read back.
    fn learned_scan_bounds(&self) -> Result<Option<LearnedBounds>, EngineError> {
        let Some(text) = self.store.watermark(WATERMARK_SCAN_BOUNDS)? else { return Ok(None) };
        match serde_json::from_str(&text) {
            Ok(learned) => Ok(Some(learned)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable scan bounds; splitting the scan evenly");
                Ok(None)
            }
        }
    }

    /// One part of the scan: its users into `snapshot` a batch at a time, their managed values
    /// counted into `values`. The parts' batches interleave in the snapshot; rows are unordered.
    async fn load_part(
        &self,
        reader: usize,
        snapshot: &ScopeSnapshot,
        values: &AtomicU64,
        sample: &Mutex<UsnSample>,
        base: &str,
        filter: &str,
    ) -> Result<u64, EngineError> {
        let mut batch: Vec<SnapshotRow> = Vec::with_capacity(SNAPSHOT_BATCH);
        let read = self
            .dir
            // Paged: Samba answers an unpaged search of any size about three times faster,
            // but it sends the whole result in one burst once it has it, and the LDAP client
            // buffers what is not consumed yet: memory would grow with the scope (measured:
            // 266 MiB at 200,000 users). A page at a time keeps it to a page a search.
            .for_each_user_on(reader, base, filter, |user| {
                values.fetch_add(user.values.iter().map(|(_, v)| v.len() as u64).sum::<u64>(), Ordering::Relaxed);
                sample.lock().unwrap_or_else(PoisonError::into_inner).add(user.usn_created);
                batch.push(snapshot_row(&user)?);
                if batch.len() >= SNAPSHOT_BATCH {
                    snapshot.insert(&batch)?;
                    batch.clear();
                }
                Ok::<(), EngineError>(())
            })
            .await?;
        snapshot.insert(&batch)?;
        Ok(read)
    }
}
