//! What changed when: users by delta sequence, mailboxes by WhenChangedUTC. Incremental reads
//! (users/delta with a deltaLink, Get-Mailbox filtered on WhenChangedUTC, which writeback polls
//! every few seconds) use it to visit only the few objects that changed instead of walking the
//! whole tenant for each page. Kept by [`crate::model::Tenant`]'s mutators, rebuilt on load.

use std::collections::BTreeSet;
use std::ops::Bound;

#[derive(Clone, Debug, Default)]
pub(crate) struct ChangeIndex {
    /// (sequence, user id): every user once, at its latest sequence number.
    users_by_seq: BTreeSet<(u64, String)>,
    /// (WhenChangedUTC ticks, mailbox Guid).
    mailboxes_by_when_changed: BTreeSet<(i64, String)>,
}

impl ChangeIndex {
    pub(crate) fn clear(&mut self) {
        self.users_by_seq.clear();
        self.mailboxes_by_when_changed.clear();
    }

    /// A user's sequence moved from `old` (None: new user) to `new`.
    pub(crate) fn user_changed(&mut self, id: &str, old: Option<u64>, new: u64) {
        if let Some(old) = old {
            self.users_by_seq.remove(&(old, id.to_owned()));
        }
        self.users_by_seq.insert((new, id.to_owned()));
    }

    /// A mailbox's WhenChangedUTC moved from `old` to `new` (None: absent).
    pub(crate) fn mailbox_changed(&mut self, guid: &str, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.mailboxes_by_when_changed
                .remove(&(old, guid.to_owned()));
        }
        if let Some(new) = new {
            self.mailboxes_by_when_changed
                .insert((new, guid.to_owned()));
        }
    }

    /// Ids of the users whose sequence is above `since`, in id order; `None` if there are more
    /// than `cap` (then walking the tenant in order is the cheaper way).
    pub(crate) fn users_after(&self, since: u64, cap: usize) -> Option<Vec<&str>> {
        let start = Bound::Excluded((since, String::new()));
        let from_since = self
            .users_by_seq
            .range((start, Bound::Unbounded))
            .filter(|(seq, _)| *seq > since);
        sorted_ids(from_since.map(|(_, id)| id.as_str()), cap)
    }

    /// Guids of the mailboxes changed at or after `from` (ticks), in Guid order; `None` if there
    /// are more than `cap`.
    pub(crate) fn mailboxes_from(&self, from: i64, cap: usize) -> Option<Vec<&str>> {
        let start = Bound::Included((from, String::new()));
        let from_then = self
            .mailboxes_by_when_changed
            .range((start, Bound::Unbounded));
        sorted_ids(from_then.map(|(_, guid)| guid.as_str()), cap)
    }
}

fn sorted_ids<'a>(ids: impl Iterator<Item = &'a str>, cap: usize) -> Option<Vec<&'a str>> {
    let mut found = Vec::new();
    for id in ids {
        if found.len() >= cap {
            return None;
        }
        found.push(id);
    }
    found.sort_unstable();
    Some(found)
}

/// How many changed objects a page may collect from the index before walking the tenant in
/// order is cheaper: collecting and sorting is per page, walking stops after a page of matches.
pub(crate) fn index_cap(tenant_size: usize, page_size: usize) -> usize {
    (tenant_size / 64).max(page_size.saturating_mul(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_after_keeps_each_user_once_at_its_latest_sequence() {
        let mut index = ChangeIndex::default();
        index.user_changed("b", None, 1);
        index.user_changed("a", None, 2);
        index.user_changed("c", None, 3);
        index.user_changed("b", Some(1), 4);
        assert_eq!(index.users_after(0, 10), Some(vec!["a", "b", "c"]));
        assert_eq!(index.users_after(2, 10), Some(vec!["b", "c"]));
        assert_eq!(index.users_after(4, 10), Some(vec![]));
        assert_eq!(index.users_after(0, 2), None, "more than the cap");
        assert_eq!(index.users_after(2, 2), Some(vec!["b", "c"]));
    }

    #[test]
    fn mailboxes_from_is_inclusive_and_follows_moves_and_removals() {
        let mut index = ChangeIndex::default();
        index.mailbox_changed("g2", None, Some(10));
        index.mailbox_changed("g1", None, Some(20));
        index.mailbox_changed("g3", None, Some(20));
        assert_eq!(index.mailboxes_from(20, 10), Some(vec!["g1", "g3"]));
        index.mailbox_changed("g2", Some(10), Some(30));
        index.mailbox_changed("g3", Some(20), None);
        assert_eq!(index.mailboxes_from(11, 10), Some(vec!["g1", "g2"]));
        assert_eq!(index.mailboxes_from(i64::MIN, 1), None);
        index.clear();
        assert_eq!(index.mailboxes_from(i64::MIN, 1), Some(vec![]));
    }
}
