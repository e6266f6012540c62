//! Joining a cloud mailbox to exactly one AD user, never by guessing.
//!
//! Order: a remembered join (re-verified: the object is read by GUID, so moves and renames
//! are followed, and its anchors must still agree); then `onPremisesImmutableId`
//! (mS-DS-ConsistencyGuid, then objectGUID); then `onPremisesSecurityIdentifier`; then the
//! DN hint, accepted only when the object found there proves to be the mailbox's user (its
//! anchors agree, or, without anchors, it carries the mailbox's primary SMTP address).
//! Whatever is found must be a single user object, unprotected, inside the configured scope,
//! and not already joined to another mailbox.

use crate::error::EngineError;
use std::fmt;
use writeback_ad::{ids, AdDirectory, AdUser, UserKey};
use writeback_core::{Mailbox, ManagedAttribute};
use writeback_state::{Join, MatchedBy, StateStore};

/// Why a mailbox was not matched; reported, and retried later with backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    NoAnchor,
    InvalidAnchor(String),
    NotFound,
    Ambiguous { count: usize },
    NotAUser { dn: String },
    Protected { dn: String, reason: &'static str },
    OutOfScope { dn: String },
    AnchorMismatch { dn: String, detail: String },
    JoinedElsewhere { dn: String, cloud_id: String },
}

impl SkipReason {
    /// A stable, low-cardinality name (metrics labels, JSON).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NoAnchor => "no_anchor",
            SkipReason::InvalidAnchor(_) => "invalid_anchor",
            SkipReason::NotFound => "no_match",
            SkipReason::Ambiguous { .. } => "ambiguous",
            SkipReason::NotAUser { .. } => "not_a_user",
            SkipReason::Protected { .. } => "protected",
            SkipReason::OutOfScope { .. } => "out_of_scope",
            SkipReason::AnchorMismatch { .. } => "anchor_mismatch",
            SkipReason::JoinedElsewhere { .. } => "joined_elsewhere",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoAnchor => f.write_str("no identity anchor from Graph (immutable id, SID or DN)"),
            SkipReason::InvalidAnchor(e) => write!(f, "invalid anchor: {e}"),
            SkipReason::NotFound => f.write_str("no AD object matches the mailbox's anchors"),
            SkipReason::Ambiguous { count } => write!(f, "{count} AD objects match; refusing to guess"),
            SkipReason::NotAUser { dn } => write!(f, "{dn} is not a user object"),
            SkipReason::Protected { dn, reason } => write!(f, "{dn} is protected ({reason})"),
            SkipReason::OutOfScope { dn } => write!(f, "{dn} is outside the configured scope"),
            SkipReason::AnchorMismatch { dn, detail } => write!(f, "{dn} does not belong to this mailbox: {detail}"),
            SkipReason::JoinedElsewhere { dn, cloud_id } => {
                write!(f, "{dn} is already joined to mailbox {cloud_id}")
            }
        }
    }
}

/// A verified match.
#[derive(Debug, Clone)]
pub struct Matched {
    pub user: AdUser,
    pub matched_by: MatchedBy,
}

pub(crate) struct Matcher<'a, S: ?Sized> {
    pub dir: &'a AdDirectory,
    pub store: &'a S,
    pub scope: &'a [String],
}

impl<S: StateStore + ?Sized> Matcher<'_, S> {
    /// Finds and verifies the mailbox's AD user, remembering the join.
    pub async fn find(&self, mailbox: &Mailbox, now: i64) -> Result<Result<Matched, SkipReason>, EngineError> {
        if let Some(join) = self.store.join(&mailbox.cloud_id)? {
            let guid_dn = ids::guid_dn(&join.object_guid);
            if let Some(user) = self.dir.read(&guid_dn).await? {
                if anchors_disagree(mailbox, &user).is_none() {
                    let matched = Matched { user, matched_by: join.matched_by };
                    return accept(self.store, self.scope, mailbox, matched, Some(&join), now);
                }
            }
            // Gone, or no longer this mailbox's object: forget and match afresh.
            tracing::info!(cloud_id = %mailbox.cloud_id, dn = %join.dn, "join no longer verifies; matching again");
            self.store.remove_join(&mailbox.cloud_id)?;
        }
        let found = match self.search(mailbox).await? {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        accept(self.store, self.scope, mailbox, found, None, now)
    }

    async fn search(&self, mailbox: &Mailbox) -> Result<Result<Matched, SkipReason>, EngineError> {
        let anchors = &mailbox.anchors;
        let key_and_kind = if let Some(immutable_id) = anchors.immutable_id.as_deref().filter(|s| !s.is_empty()) {
            match ids::immutable_id_to_bytes(immutable_id) {
                Ok(bytes) => Some((bytes, MatchedBy::ImmutableId)),
                Err(e) => return Ok(Err(SkipReason::InvalidAnchor(e.to_string()))),
            }
        } else {
            None
        };
        if let Some((bytes, _)) = key_and_kind {
            let mut found = self.find_scoped(&UserKey::ConsistencyGuid(bytes.to_vec())).await?;
            if found.is_empty() {
                found = self.find_scoped(&UserKey::ObjectGuid(bytes)).await?;
            }
            return Ok(single(found, MatchedBy::ImmutableId));
        }
        if let Some(sid) = anchors.sid.as_deref().filter(|s| !s.is_empty()) {
            return match self.find_scoped(&UserKey::Sid(sid.to_owned())).await {
                Ok(found) => Ok(single(found, MatchedBy::Sid)),
                Err(EngineError::Ad(writeback_ad::AdError::InvalidKey(e))) => Ok(Err(SkipReason::InvalidAnchor(e))),
                Err(e) => Err(e),
            };
        }
        if let Some(dn) = anchors.dn.as_deref().filter(|s| !s.is_empty()) {
            let found = match self.dir.find(&UserKey::Dn(dn.to_owned())).await {
                Ok(found) => found,
                Err(writeback_ad::AdError::InvalidKey(e)) => return Ok(Err(SkipReason::InvalidAnchor(e))),
                Err(e) => return Err(e.into()),
            };
            let matched = match single(found, MatchedBy::Dn) {
                Ok(m) => m,
                Err(reason) => return Ok(Err(reason)),
            };
            if !carries_primary_smtp(mailbox, &matched.user) {
                return Ok(Err(SkipReason::AnchorMismatch {
                    dn: matched.user.dn.clone(),
                    detail: "the DN hint's object does not carry the mailbox's primary SMTP address".into(),
                }));
            }
            return Ok(Ok(matched));
        }
        Ok(Err(SkipReason::NoAnchor))
    }

    /// Searches the scope subtrees; only when nothing is there, the whole domain, so that an
    /// object outside the scope is reported as such rather than as "no match".
    async fn find_scoped(&self, key: &UserKey) -> Result<Vec<AdUser>, EngineError> {
        let mut found: Vec<AdUser> = Vec::new();
        for base in self.scope {
            for user in self.dir.find_in(key, base).await? {
                if !found.iter().any(|u| u.object_guid == user.object_guid) {
                    found.push(user);
                }
            }
        }
        if found.is_empty() {
            found = self.dir.find(key).await?;
        }
        Ok(found)
    }
}

/// Verifies a match found live and remembers its join (or refreshes its DN).
pub(crate) fn accept<S: StateStore + ?Sized>(
    store: &S,
    scope: &[String],
    mailbox: &Mailbox,
    matched: Matched,
    known: Option<&Join>,
    now: i64,
) -> Result<Result<Matched, SkipReason>, EngineError> {
    let holder = match known {
        // The mailbox's own join to this very object needs no second lookup: joins are
        // unique by GUID, so no other mailbox can hold it.
        Some(join) if join.object_guid == matched.user.object_guid => None,
        _ => store.join_by_guid(&matched.user.object_guid)?,
    };
    match verify(scope, mailbox, &matched, known, holder.as_ref().map(|j| j.cloud_id.as_str()), now) {
        Err(reason) => Ok(Err(reason)),
        Ok(join) => {
            if let Some(join) = join {
                store.upsert_join(&join)?;
            }
            Ok(Ok(matched))
        }
    }
}

/// The checks every match passes, however it was found (a live search or a scope snapshot).
/// `holder` is the mailbox (cloud id) holding a join to the matched object, looked up by the
/// caller, who may batch those lookups. On success, the join to record, if it is new or its DN
/// changed.
pub(crate) fn verify(
    scope: &[String],
    mailbox: &Mailbox,
    matched: &Matched,
    known: Option<&Join>,
    holder: Option<&str>,
    now: i64,
) -> Result<Option<Join>, SkipReason> {
    let user = &matched.user;
    if let Some(detail) = anchors_disagree(mailbox, user) {
        return Err(SkipReason::AnchorMismatch { dn: user.dn.clone(), detail });
    }
    if !user.is_user() {
        return Err(SkipReason::NotAUser { dn: user.dn.clone() });
    }
    if let Some(reason) = user.protection() {
        return Err(SkipReason::Protected { dn: user.dn.clone(), reason });
    }
    if !in_scope(&user.dn, scope) {
        return Err(SkipReason::OutOfScope { dn: user.dn.clone() });
    }
    if let Some(other) = holder.filter(|h| *h != mailbox.cloud_id) {
        return Err(SkipReason::JoinedElsewhere { dn: user.dn.clone(), cloud_id: other.to_owned() });
    }
    let unchanged = known.is_some_and(|j| j.dn == user.dn && j.object_guid == user.object_guid);
    if unchanged {
        return Ok(None);
    }
    if let Some(old) = known {
        tracing::info!(cloud_id = %mailbox.cloud_id, from = %old.dn, to = %user.dn, "joined object moved or renamed");
    }
    Ok(Some(Join {
        cloud_id: mailbox.cloud_id.clone(),
        object_guid: user.object_guid,
        dn: user.dn.clone(),
        matched_by: matched.matched_by,
        verified_at: now,
    }))
}

fn single(mut found: Vec<AdUser>, by: MatchedBy) -> Result<Matched, SkipReason> {
    match found.len() {
        0 => Err(SkipReason::NotFound),
        1 => Ok(Matched { user: found.remove(0), matched_by: by }),
        count => Err(SkipReason::Ambiguous { count }),
    }
}

/// When the mailbox carries anchors, the object must agree with every one of them.
pub(crate) fn anchors_disagree(mailbox: &Mailbox, user: &AdUser) -> Option<String> {
    if let Some(immutable_id) = mailbox.anchors.immutable_id.as_deref().filter(|s| !s.is_empty()) {
        let Ok(bytes) = ids::immutable_id_to_bytes(immutable_id) else {
            return Some(format!("immutable id {immutable_id:?} is not valid"));
        };
        let by_cg = user.consistency_guid.as_deref() == Some(&bytes[..]);
        if !by_cg && user.object_guid != bytes {
            return Some("neither mS-DS-ConsistencyGuid nor objectGUID equals the immutable id".into());
        }
    }
    if let Some(sid) = mailbox.anchors.sid.as_deref().filter(|s| !s.is_empty()) {
        if user.object_sid.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case(sid)) {
            return Some(format!("objectSid differs from {sid}"));
        }
    }
    None
}

fn carries_primary_smtp(mailbox: &Mailbox, user: &AdUser) -> bool {
    let Some(primary) = mailbox
        .proxy_addresses
        .iter()
        .find_map(|p| p.strip_prefix("SMTP:"))
        .or(mailbox.primary_smtp.as_deref())
    else {
        return false;
    };
    let proxies = user.values.get(ManagedAttribute::ProxyAddresses);
    let mail = user.values.get(ManagedAttribute::Mail);
    proxies.iter().chain(mail).any(|v| {
        let address = v.split_once(':').map_or(v.as_str(), |(_, a)| a);
        address.eq_ignore_ascii_case(primary)
    })
}

/// `dn` is one of the scope DNs or below one (RFC 4514 DNs compared case-insensitively).
pub(crate) fn in_scope(dn: &str, scope: &[String]) -> bool {
    let dn = dn.to_ascii_lowercase();
    scope.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        dn == s || dn.ends_with(&format!(",{s}"))
    })
}

#[cfg(test)]
mod tests {
    use super::in_scope;

    #[test]
    fn scope_is_a_subtree_test_not_a_substring_test() {
        let scope = vec!["OU=Staff,DC=x".to_string()];
        assert!(in_scope("CN=a,OU=Staff,DC=x", &scope));
        assert!(in_scope("cn=a,ou=team,ou=staff,dc=x", &scope));
        assert!(!in_scope("CN=a,OU=NotStaff,DC=x", &scope));
        assert!(!in_scope("CN=a,OU=Staff,DC=y", &scope));
        assert!(in_scope("OU=Staff,DC=x", &scope));
    }
}
