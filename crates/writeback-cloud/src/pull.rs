//! `writeback cloud pull`: every cloud-managed mailbox, joined with its Graph identity anchors.
//!
//! Memory: the Graph side is read first into a map of user id → anchors (a 16-byte key and up
//! to three short strings per user, roughly 200 bytes), so it grows with the number of users
//! in the tenant; the Exchange side is streamed page by page and never held whole.

use crate::config::CloudConfig;
use crate::error::{CloudError, MailboxError};
use crate::exchange::{PassKind, PassSummary};
use crate::graph::DeltaCursor;
use crate::graph_parse::GraphUser;
use crate::CloudReaders;
use std::collections::HashMap;
use writeback_core::{Anchors, Mailbox};

/// What a pull did, for the command's closing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSummary {
    pub exchange: PassSummary,
    pub graph_users: u64,
    /// Mailboxes whose user was not in the Graph round (emitted with empty anchors).
    pub unanchored: u64,
}

/// User id → anchors, keyed by the GUID's 128 bits so case and braces do not matter.
#[derive(Debug, Default)]
pub struct AnchorIndex {
    by_guid: HashMap<u128, Anchors>,
    by_text: HashMap<String, Anchors>,
}

impl AnchorIndex {
    /// Merges one delta entry: absent properties keep what is known, `null` clears it.
    pub fn apply(&mut self, user: GraphUser) {
        let entry = match uuid::Uuid::parse_str(&user.id) {
            Ok(guid) => self.by_guid.entry(guid.as_u128()).or_default(),
            Err(_) => self
                .by_text
                .entry(user.id.to_ascii_lowercase())
                .or_default(),
        };
        user.on_premises_immutable_id
            .apply_to(&mut entry.immutable_id);
        user.on_premises_security_identifier
            .apply_to(&mut entry.sid);
        user.on_premises_distinguished_name.apply_to(&mut entry.dn);
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

    pub fn len(&self) -> usize {
        self.by_guid.len() + self.by_text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the readers from `config` and runs [`pull_with`].
pub async fn pull<F>(config: &CloudConfig, sink: F) -> Result<PullSummary, CloudError>
where
    F: FnMut(Result<Mailbox, MailboxError>),
{
    let readers = CloudReaders::from_config(config)?;
    pull_with(&readers, sink).await
}

/// Reads a full Graph round into an [`AnchorIndex`], then streams a full Exchange pass, handing
/// each mailbox (with anchors attached) or per-mailbox error to `sink`.
pub async fn pull_with<F>(readers: &CloudReaders, mut sink: F) -> Result<PullSummary, CloudError>
where
    F: FnMut(Result<Mailbox, MailboxError>),
{
    let mut index = AnchorIndex::default();
    let mut graph_users = 0u64;
    readers
        .graph
        .read_round(DeltaCursor::Initial, |page| {
            for user in &page.users {
                graph_users += 1;
                index.apply(user.clone());
            }
            for removed in &page.removed {
                index.remove(&removed.id);
            }
        })
        .await?;
    tracing::info!(users = index.len(), "Graph anchors loaded");

    let mut unanchored = 0u64;
    let exchange = readers
        .exchange
        .read_all(PassKind::Full, |page| {
            for item in page.mailboxes {
                let item = item.map(|mut mailbox| {
                    match index.get(&mailbox.cloud_id) {
                        Some(anchors) => mailbox.anchors = anchors.clone(),
                        None => unanchored += 1,
                    }
                    mailbox
                });
                sink(item);
            }
        })
        .await?;
    Ok(PullSummary {
        exchange,
        graph_users,
        unanchored,
    })
}
