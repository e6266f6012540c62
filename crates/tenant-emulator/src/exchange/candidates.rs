//! Which mailboxes a Get-Mailbox page looks at: all of them from the cursor on (Guid order), or,
//! when the filter bounds WhenChangedUTC from below and few mailboxes changed since (writeback's
//! incremental poll), only those, from the change index.

use std::ops::Bound;

use crate::change_index::index_cap;
use crate::model::{Mailbox, Tenant};
use crate::opath::{Expr, Field, Op};

/// The earliest WhenChangedUTC (ticks) a mailbox matching `filter` can have, if it implies one.
pub fn when_changed_floor(filter: &Expr) -> Option<i64> {
    match filter {
        Expr::And(a, b) => match (when_changed_floor(a), when_changed_floor(b)) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
        Expr::Or(a, b) => Some(when_changed_floor(a)?.min(when_changed_floor(b)?)),
        Expr::Compare {
            field: Field::WhenChangedUtc,
            op,
            value,
        } => {
            let at = value.as_date()?;
            match op {
                Op::Gt => at.checked_add(1),
                Op::Ge | Op::Eq => Some(at),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Mailboxes after the cursor `after` in Guid order that may match `filter` (the caller still
/// applies it). A page collecting `page_size` matches uses the change index when it is cheaper.
pub(crate) fn candidates<'a>(
    tenant: &'a Tenant,
    filter: Option<&Expr>,
    after: Option<&'a str>,
    page_size: usize,
) -> Box<dyn Iterator<Item = &'a Mailbox> + 'a> {
    let cap = index_cap(tenant.mailboxes.len(), page_size);
    candidates_with_cap(tenant, filter, after, cap)
}

fn candidates_with_cap<'a>(
    tenant: &'a Tenant,
    filter: Option<&Expr>,
    after: Option<&'a str>,
    cap: usize,
) -> Box<dyn Iterator<Item = &'a Mailbox> + 'a> {
    let changed = filter
        .and_then(when_changed_floor)
        .and_then(|from| tenant.mailboxes_changed_from(from, cap));
    match changed {
        Some(guids) => Box::new(
            guids
                .into_iter()
                .filter(move |guid| after.is_none_or(|a| *guid > a))
                .filter_map(|guid| tenant.mailboxes.get(guid)),
        ),
        None => {
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            Box::new(
                tenant
                    .mailboxes
                    .range::<str, _>((lower, Bound::Unbounded))
                    .map(|(_, m)| m),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TICKS_PER_SECOND;
    use crate::opath::parse;

    /// Synthetic mailbox n has WhenChangedUTC 2024-01-01 00:00:00 + n seconds.
    fn at(n: i64) -> i64 {
        crate::clock::days_from_civil(2024, 1, 1) * 86_400 * TICKS_PER_SECOND + n * TICKS_PER_SECOND
    }

    #[test]
    fn floor_follows_and_or_and_the_comparison() {
        let floor = |f: &str| when_changed_floor(&parse(f).unwrap());
        assert_eq!(
            floor("WhenChangedUTC -ge '2024-01-01 00:00:05'"),
            Some(at(5))
        );
        assert_eq!(
            floor("WhenChangedUTC -gt '2024-01-01 00:00:05'"),
            Some(at(5) + 1)
        );
        assert_eq!(floor("WhenChanged -eq '2024-01-01 00:00:05'"), Some(at(5)));
        assert_eq!(
            floor("IsExchangeCloudManaged -eq $true -and WhenChangedUTC -gt '2024-01-01 00:00:05'"),
            Some(at(5) + 1)
        );
        assert_eq!(
            floor("WhenChangedUTC -ge '2024-01-01 00:00:09' -and WhenChangedUTC -ge '2024-01-01 00:00:05'"),
            Some(at(9))
        );
        assert_eq!(
            floor("WhenChangedUTC -ge '2024-01-01 00:00:09' -or WhenChangedUTC -ge '2024-01-01 00:00:05'"),
            Some(at(5))
        );
        for unbounded in [
            "WhenChangedUTC -lt '2024-01-01 00:00:05'",
            "-not (WhenChangedUTC -ge '2024-01-01 00:00:05')",
            "WhenChangedUTC -ge '2024-01-01 00:00:05' -or Alias -eq 'x'",
            "WhenCreatedUTC -ge '2024-01-01 00:00:05'",
            "WhenChangedUTC -ne $null",
        ] {
            assert_eq!(floor(unbounded), None, "{unbounded}");
        }
    }

    /// The index is only a shortcut: for every filter and cursor, the matching mailboxes (in
    /// order) are the same with it as by walking all of them.
    #[test]
    fn candidates_match_the_same_mailboxes_with_and_without_the_index() {
        let mut tenant = Tenant::default();
        crate::provisioning::add_synthetic_mailboxes(&mut tenant, "contoso.onmicrosoft.com", 200);
        let guids: Vec<String> = tenant.mailboxes.keys().cloned().collect();
        let removed = guids[17].clone();
        tenant.remove_mailbox(&removed);
        let mut moved = tenant.mailboxes[&guids[3]].clone();
        moved.when_changed = at(150);
        tenant.put_mailbox(moved);
        let cursors: Vec<Option<&str>> = [
            None,
            Some(""),
            Some(guids[3].as_str()),
            Some(removed.as_str()),
        ]
        .into_iter()
        .chain(guids.iter().step_by(41).map(|g| Some(g.as_str())))
        .collect();
        for filter in [
            "WhenChangedUTC -gt '2024-01-01 00:00:50'",
            "WhenChangedUTC -ge '2024-01-01 00:02:30' -and IsExchangeCloudManaged -eq $true",
            "WhenChangedUTC -eq '2024-01-01 00:02:30'",
            "WhenChangedUTC -gt '2024-01-01 00:00:10' -or WhenChangedUTC -ge '2024-01-01 00:03:00'",
            "WhenChangedUTC -gt '2030-01-01 00:00:00'",
            "IsExchangeCloudManaged -eq $true",
        ] {
            let expr = parse(filter).unwrap();
            for after in &cursors {
                let matching = |cap| -> Vec<&str> {
                    candidates_with_cap(&tenant, Some(&expr), *after, cap)
                        .filter(|m| expr.matches(m))
                        .map(|m| m.guid.as_str())
                        .collect()
                };
                let walked = matching(0);
                assert_eq!(walked, matching(usize::MAX), "{filter} after {after:?}");
                assert!(walked.windows(2).all(|w| w[0] < w[1]));
            }
        }
        let expr = parse("WhenChangedUTC -ge '2024-01-01 00:02:30'").unwrap();
        let found = candidates_with_cap(&tenant, Some(&expr), None, usize::MAX)
            .filter(|m| expr.matches(m))
            .count();
        assert_eq!(found, 51 + 1, "mailboxes 150..=200 and the moved one");
    }
}
