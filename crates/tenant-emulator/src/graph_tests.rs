use super::*;
use crate::model::RemovedReason;
use serde_json::Value;

/// A tenant with changes after its creation: property changes, soft and hard removals.
fn changed_tenant() -> (Tenant, u64) {
    let mut tenant = Tenant::default();
    crate::provisioning::add_synthetic_mailboxes(&mut tenant, "contoso.onmicrosoft.com", 300);
    let created = tenant.seq;
    let ids: Vec<String> = tenant.users.keys().cloned().collect();
    for (i, id) in ids.iter().enumerate() {
        match i % 37 {
            0 => {
                tenant.set_user_prop(id, UserProp::Surname, Some(Value::String(format!("s{i}"))));
            }
            5 => {
                tenant.remove_user(id, RemovedReason::Changed);
            }
            11 => {
                tenant.remove_user(id, RemovedReason::Deleted);
            }
            _ => {}
        }
    }
    (tenant, created)
}

fn page_text(
    tenant: &Tenant,
    state: &DeltaState,
    limit: usize,
    minimal: bool,
    cap: usize,
) -> (String, Option<String>, bool) {
    let selected = selected_in_name_order(&state.select);
    let (page, last, more) = build_page_with_cap(tenant, &selected, state, limit, minimal, cap);
    (serde_json::to_string(&page).unwrap(), last, more)
}

/// The change index is only a shortcut: every round, cursor and page size gives the same page
/// with it as by walking all users.
#[test]
fn incremental_pages_are_the_same_with_and_without_the_change_index() {
    let (tenant, created) = changed_tenant();
    let first_change = created + 1;
    for since in [0, 1, created, first_change, tenant.seq - 1, tenant.seq] {
        for limit in [1, 3, 7, 100] {
            for minimal in [false, true] {
                let mut after = None;
                let mut pages = 0;
                loop {
                    let state = DeltaState {
                        since,
                        upto: Some(tenant.seq),
                        after: after.clone(),
                        select: vec!["surname".into(), "mail".into()],
                        epoch: 0,
                        resync: 0,
                        issued: 0,
                    };
                    let walked = page_text(&tenant, &state, limit, minimal, 0);
                    let indexed = page_text(&tenant, &state, limit, minimal, usize::MAX);
                    assert_eq!(
                        walked, indexed,
                        "since {since}, after {after:?}, limit {limit}"
                    );
                    pages += 1;
                    if !walked.2 {
                        break;
                    }
                    after = walked.1;
                }
                if since == created {
                    let changed = tenant.users.values().filter(|u| u.seq > created).count();
                    assert_eq!(pages, changed.div_ceil(limit).max(1), "{limit}");
                }
            }
        }
    }
}

#[test]
fn the_index_lists_exactly_the_users_changed_after_a_sequence() {
    let (tenant, created) = changed_tenant();
    let mut expected: Vec<&str> = tenant
        .users
        .values()
        .filter(|u| u.seq > created)
        .map(|u| u.id.as_str())
        .collect();
    expected.sort_unstable();
    assert_eq!(expected.len(), 9 + 8 + 8);
    assert_eq!(
        tenant.users_changed_after(created, usize::MAX),
        Some(expected)
    );
    assert_eq!(tenant.users_changed_after(tenant.seq, 0), Some(vec![]));
}
