//! `writeback cloud pull`: every cloud-managed mailbox, joined with its Graph identity anchors.
//!
//! Memory: the Graph round is written page by page into an [`AnchorStore`] and the Exchange
//! side is streamed page by page, so a pull holds one page at a time. Where the anchors live
//! is the caller's choice: the CLI keeps them in a temporary state store on disk (memory flat
//! at any tenant size); [`AnchorIndex`] keeps them in memory (tests, small tenants).

use crate::config::CloudConfig;
use crate::error::{CloudError, MailboxError};
use crate::exchange::{PassKind, PassSummary};
use crate::graph::DeltaCursor;
use crate::graph_parse::{DeltaPage, GraphUser};
use crate::CloudReaders;
use std::collections::HashMap;
use writeback_core::{Anchors, Mailbox};

/// Pages one users/delta round may take at most: a round is finite, and a server that never
/// ends one is an error, not a hang.
pub const MAX_DELTA_PAGES: u32 = 1_000_000;

/// What a pull did, for the command's closing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSummary {
    pub exchange: PassSummary,
    pub graph_users: u64,
    /// Mailboxes whose user was not in the Graph round (emitted with empty anchors).
    pub unanchored: u64,
}

/// The key anchors are kept under for a cloud user id: a GUID in its hyphenated lower-case
/// form (so case, braces and missing hyphens do not matter, as Exchange and Graph spell the
/// same id differently), anything else lower-cased.
pub fn anchor_key(id: &str) -> String {
    match uuid::Uuid::parse_str(id) {
        Ok(guid) => guid.hyphenated().to_string(),
        Err(_) => id.to_ascii_lowercase(),
    }
}

/// One delta page resolved into whole rows: the anchors each user now has, and the users
/// that left. Keys are [`anchor_key`]s; a key is in at most one of the two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorChanges {
    pub upserts: Vec<(String, Anchors)>,
    pub removals: Vec<String>,
}

/// Resolves a delta page against what is known (read-modify-write): an absent property keeps
/// the known value, `null` clears it, a value replaces it. `known` is asked only for users
/// whose entry leaves a property absent, once per user per page, and never on a `resynced`
/// page (the round starts from nothing). A user listed twice in a page merges in order; a
/// user both changed and removed in one page is removed (as Graph lists removals after).
pub fn merge_delta_page<E>(
    page: &DeltaPage,
    mut known: impl FnMut(&str) -> Result<Option<Anchors>, E>,
) -> Result<AnchorChanges, E> {
    let mut changes = AnchorChanges::default();
    let mut position: HashMap<String, usize> = HashMap::new();
    for user in &page.users {
        let key = anchor_key(&user.id);
        let slot = match position.get(&key) {
            Some(&slot) => slot,
            None => {
                let needs_known = !page.resynced
                    && (user.on_premises_immutable_id.is_absent()
                        || user.on_premises_security_identifier.is_absent()
                        || user.on_premises_distinguished_name.is_absent());
                let base = if needs_known {
                    known(&key)?.unwrap_or_default()
                } else {
                    Anchors::default()
                };
                let slot = changes.upserts.len();
                changes.upserts.push((key.clone(), base));
                position.insert(key, slot);
                slot
            }
        };
        if let Some((_, anchors)) = changes.upserts.get_mut(slot) {
            merge_user(user, anchors);
        }
    }
    if !page.removed.is_empty() {
        let removed: HashMap<String, ()> = page
            .removed
            .iter()
            .map(|r| (anchor_key(&r.id), ()))
            .collect();
        changes
            .upserts
            .retain(|(key, _)| !removed.contains_key(key));
        changes.removals = removed.into_keys().collect();
        changes.removals.sort_unstable();
    }
    Ok(changes)
}

fn merge_user(user: &GraphUser, anchors: &mut Anchors) {
    user.on_premises_immutable_id
        .clone()
        .apply_to(&mut anchors.immutable_id);
    user.on_premises_security_identifier
        .clone()
        .apply_to(&mut anchors.sid);
    user.on_premises_distinguished_name
        .clone()
        .apply_to(&mut anchors.dn);
}

/// Where a pull keeps the anchors of its Graph round. Errors must be able to carry a
/// [`CloudError`], since the pull reports both through one type.
pub trait AnchorStore {
    type Error: From<CloudError>;

    /// The anchors known for `key` (an [`anchor_key`]).
    fn anchors(&self, key: &str) -> Result<Option<Anchors>, Self::Error>;

    /// Writes one resolved page. `resynced`: the page starts a new full round, so everything
    /// known before goes first. `cursor` is the page's cursor, for stores that keep it.
    fn apply_page(
        &mut self,
        changes: &AnchorChanges,
        resynced: bool,
        cursor: &DeltaCursor,
    ) -> Result<(), Self::Error>;
}

/// User id → anchors in memory, keyed by the GUID's 128 bits so case and braces do not matter.
/// About 300 bytes a user: for tests and small tenants; a pull of a large tenant should use a
/// store on disk.
#[derive(Debug, Default)]
pub struct AnchorIndex {
    by_guid: HashMap<u128, Anchors>,
    by_text: HashMap<String, Anchors>,
}

impl AnchorIndex {
    /// Merges one delta entry: absent properties keep what is known, `null` clears it.
    pub fn apply(&mut self, user: GraphUser) {
        let entry = self.entry(&user.id);
        user.on_premises_immutable_id
            .apply_to(&mut entry.immutable_id);
        user.on_premises_security_identifier
            .apply_to(&mut entry.sid);
        user.on_premises_distinguished_name.apply_to(&mut entry.dn);
    }

    /// Sets a user's anchors whole.
    pub fn insert(&mut self, id: &str, anchors: Anchors) {
        *self.entry(id) = anchors;
    }

    fn entry(&mut self, id: &str) -> &mut Anchors {
        match uuid::Uuid::parse_str(id) {
            Ok(guid) => self.by_guid.entry(guid.as_u128()).or_default(),
            Err(_) => self.by_text.entry(id.to_ascii_lowercase()).or_default(),
        }
    }

    pub fn remove(&mut self, id: &str) {
        match uuid::Uuid::parse_str(id) {
            Ok(guid) => self.by_guid.remove(&guid.as_u128()),
            Err(_) => self.by_text.remove(&id.to_ascii_lowercase()),
        };
    }

    pub fn get(&self, id: &str) -> Option<&Anchors> {
        match uuid::Uuid::parse_str(id) {
            Ok(guid) => self.by_guid.get(&guid.as_u128()),
            Err(_) => self.by_text.get(&id.to_ascii_lowercase()),
        }
    }

    /// The id of the first user whose anchors satisfy `matches` (a reverse lookup, for the
    /// on-demand path from an AD object to its cloud user: linear, use it for one object).
    pub fn find_id(&self, mut matches: impl FnMut(&Anchors) -> bool) -> Option<String> {
        self.by_guid
            .iter()
            .find(|(_, a)| matches(a))
            .map(|(guid, _)| uuid::Uuid::from_u128(*guid).hyphenated().to_string())
            .or_else(|| {
                self.by_text
                    .iter()
                    .find(|(_, a)| matches(a))
                    .map(|(id, _)| id.clone())
            })
    }

    pub fn clear(&mut self) {
        self.by_guid.clear();
        self.by_text.clear();
    }

    pub fn len(&self) -> usize {
        self.by_guid.len() + self.by_text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AnchorStore for AnchorIndex {
    type Error = CloudError;

    fn anchors(&self, key: &str) -> Result<Option<Anchors>, CloudError> {
        Ok(self.get(key).cloned())
    }

    fn apply_page(
        &mut self,
        changes: &AnchorChanges,
        resynced: bool,
        _cursor: &DeltaCursor,
    ) -> Result<(), CloudError> {
        if resynced {
            self.clear();
        }
        for (key, anchors) in &changes.upserts {
            self.insert(key, anchors.clone());
        }
        for key in &changes.removals {
            self.remove(key);
        }
        Ok(())
    }
}

/// Builds the readers from `config` and runs [`pull_with`] (anchors in memory).
pub async fn pull<F>(config: &CloudConfig, sink: F) -> Result<PullSummary, CloudError>
where
    F: FnMut(Result<Mailbox, MailboxError>),
{
    let readers = CloudReaders::from_config(config)?;
    pull_with(&readers, sink).await
}

/// [`pull_with_anchors`] with the anchors in an in-memory [`AnchorIndex`].
pub async fn pull_with<F>(readers: &CloudReaders, sink: F) -> Result<PullSummary, CloudError>
where
    F: FnMut(Result<Mailbox, MailboxError>),
{
    let mut index = AnchorIndex::default();
    pull_with_anchors(readers, &mut index, sink).await
}

/// Writes a full Graph round into `anchors` page by page, then streams a full Exchange pass,
/// handing each mailbox (with its anchors attached) or per-mailbox error to `sink`. Holds one
/// page at a time; `anchors` should start empty.
pub async fn pull_with_anchors<A, F>(
    readers: &CloudReaders,
    anchors: &mut A,
    mut sink: F,
) -> Result<PullSummary, A::Error>
where
    A: AnchorStore,
    F: FnMut(Result<Mailbox, MailboxError>),
{
    let mut graph_users = 0u64;
    let mut cursor = DeltaCursor::Initial;
    let mut pages = 0u32;
    while !cursor.is_round_complete() {
        pages += 1;
        if pages > MAX_DELTA_PAGES {
            return Err(CloudError::MalformedResponse {
                endpoint: "GET users/delta".into(),
                path: "@odata.nextLink".into(),
                detail: format!("the round did not end after {MAX_DELTA_PAGES} pages"),
            }
            .into());
        }
        let page = readers.graph.next_page(&cursor).await?;
        graph_users += u64::try_from(page.users.len()).unwrap_or(u64::MAX);
        let changes = merge_delta_page(&page, |key| anchors.anchors(key))?;
        anchors.apply_page(&changes, page.resynced, &page.cursor)?;
        cursor = page.cursor;
    }
    tracing::info!(users = graph_users, pages, "Graph anchors loaded");

    let mut unanchored = 0u64;
    let mut pass = readers.exchange.pass(PassKind::Full);
    while let Some(page) = pass.next_page().await? {
        for item in page.mailboxes {
            let item = match item {
                Ok(mut mailbox) => {
                    match anchors.anchors(&anchor_key(&mailbox.cloud_id))? {
                        Some(found) => mailbox.anchors = found,
                        None => unanchored += 1,
                    }
                    Ok(mailbox)
                }
                Err(e) => Err(e),
            };
            sink(item);
        }
    }
    let exchange = pass.into_summary();
    Ok(PullSummary {
        exchange,
        graph_users,
        unanchored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_parse::parse_delta_page;
    use serde_json::json;

    const A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn page(value: serde_json::Value, resynced: bool) -> DeltaPage {
        let body = json!({"@odata.nextLink": "https://graph.test/next", "value": value});
        let mut page = parse_delta_page(body.to_string().as_bytes()).unwrap();
        page.resynced = resynced;
        page
    }

    fn anchors(imm: Option<&str>, sid: Option<&str>, dn: Option<&str>) -> Anchors {
        Anchors {
            immutable_id: imm.map(str::to_owned),
            sid: sid.map(str::to_owned),
            dn: dn.map(str::to_owned),
        }
    }

    #[test]
    fn ids_in_any_spelling_of_a_guid_share_one_key() {
        let key = anchor_key(A);
        assert_eq!(anchor_key(&A.to_uppercase()), key);
        assert_eq!(anchor_key(&format!("{{{A}}}")), key);
        assert_eq!(anchor_key(&A.replace('-', "")), key);
        assert_eq!(anchor_key("Not-A-Guid"), "not-a-guid");
    }

    #[test]
    fn absent_keeps_the_known_value_null_clears_it_a_value_replaces_it() {
        let known = anchors(Some("old-imm"), Some("S-1-old"), Some("CN=Old"));
        let mut asked = Vec::new();
        let changes = merge_delta_page(
            &page(
                json!([{"id": A.to_uppercase(), "onPremisesSecurityIdentifier": null,
                         "onPremisesDistinguishedName": "CN=New"}]),
                false,
            ),
            |key| {
                asked.push(key.to_owned());
                Ok::<_, CloudError>(Some(known.clone()))
            },
        )
        .unwrap();
        assert_eq!(asked, [A]);
        assert_eq!(
            changes.upserts,
            [(A.to_owned(), anchors(Some("old-imm"), None, Some("CN=New")))]
        );
        assert!(changes.removals.is_empty());
    }

    #[test]
    fn a_user_with_every_property_present_or_a_resynced_page_needs_no_read() {
        let full = json!([{"id": A, "onPremisesImmutableId": "imm",
            "onPremisesSecurityIdentifier": null, "onPremisesDistinguishedName": "CN=A"}]);
        let never = |_: &str| -> Result<Option<Anchors>, CloudError> { panic!("no read expected") };
        let changes = merge_delta_page(&page(full, false), never).unwrap();
        assert_eq!(
            changes.upserts,
            [(A.to_owned(), anchors(Some("imm"), None, Some("CN=A")))]
        );

        let partial = json!([{"id": A, "onPremisesImmutableId": "imm"}]);
        let changes = merge_delta_page(&page(partial, true), never).unwrap();
        assert_eq!(
            changes.upserts,
            [(A.to_owned(), anchors(Some("imm"), None, None))]
        );
    }

    #[test]
    fn a_user_listed_twice_merges_in_order_and_is_read_once() {
        let mut reads = 0;
        let changes = merge_delta_page(
            &page(
                json!([{"id": A, "onPremisesImmutableId": "first"},
                       {"id": "user-x", "onPremisesSecurityIdentifier": "S-1-x"},
                       {"id": A.to_uppercase(), "onPremisesImmutableId": "second",
                        "onPremisesDistinguishedName": null}]),
                false,
            ),
            |_| {
                reads += 1;
                Ok::<_, CloudError>(Some(anchors(
                    Some("known"),
                    Some("S-1-known"),
                    Some("CN=K"),
                )))
            },
        )
        .unwrap();
        assert_eq!(reads, 2, "once for A, once for user-x");
        assert_eq!(
            changes.upserts,
            [
                (
                    A.to_owned(),
                    anchors(Some("second"), Some("S-1-known"), None)
                ),
                (
                    "user-x".to_owned(),
                    anchors(Some("known"), Some("S-1-x"), Some("CN=K"))
                ),
            ]
        );
    }

    #[test]
    fn an_unknown_user_starts_from_nothing() {
        let changes = merge_delta_page(
            &page(
                json!([{"id": A, "onPremisesSecurityIdentifier": "S-1-a"}]),
                false,
            ),
            |_| Ok::<_, CloudError>(None),
        )
        .unwrap();
        assert_eq!(
            changes.upserts,
            [(A.to_owned(), anchors(None, Some("S-1-a"), None))]
        );
    }

    #[test]
    fn a_user_changed_and_removed_in_one_page_is_removed() {
        let changes = merge_delta_page(
            &page(
                json!([{"id": A, "onPremisesImmutableId": "x"},
                       {"id": "user-b", "onPremisesImmutableId": "b"},
                       {"id": format!("{{{}}}", A.to_uppercase()), "@removed": {"reason": "deleted"}},
                       {"id": "User-C", "@removed": {"reason": "changed"}}]),
                false,
            ),
            |_| Ok::<_, CloudError>(None),
        )
        .unwrap();
        assert_eq!(
            changes.upserts,
            [("user-b".to_owned(), anchors(Some("b"), None, None))]
        );
        assert_eq!(changes.removals, [A.to_owned(), "user-c".to_owned()]);
    }

    #[test]
    fn the_memory_index_applies_pages_like_a_store_and_forgets_all_on_resync() {
        let mut index = AnchorIndex::default();
        let cursor = DeltaCursor::Next("n".into());
        let first = AnchorChanges {
            upserts: vec![
                (A.to_owned(), anchors(Some("a"), None, None)),
                ("user-b".to_owned(), anchors(Some("b"), None, None)),
            ],
            removals: vec![],
        };
        index.apply_page(&first, false, &cursor).unwrap();
        assert_eq!(
            index.anchors(&A.to_uppercase()).unwrap(),
            Some(anchors(Some("a"), None, None))
        );
        let second = AnchorChanges {
            upserts: vec![(A.to_owned(), anchors(None, Some("S-1"), None))],
            removals: vec!["user-b".to_owned()],
        };
        index.apply_page(&second, false, &cursor).unwrap();
        assert_eq!(
            index.get(A),
            Some(&anchors(None, Some("S-1"), None)),
            "upserts replace whole rows"
        );
        assert_eq!(index.len(), 1);
        let third = AnchorChanges {
            upserts: vec![("user-c".to_owned(), Anchors::default())],
            removals: vec![],
        };
        index.apply_page(&third, true, &cursor).unwrap();
        assert_eq!(index.get(A), None);
        assert_eq!(index.len(), 1);
    }
}
