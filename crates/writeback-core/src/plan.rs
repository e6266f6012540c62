//! The planner: (desired cloud record, current AD values) → the minimal LDAP modifications.
//!
//! Optimistic concurrency. AD and Samba implement no assertion control, so the only way to
//! say "change X only if it is still what I read" is to name the old value: every change is
//! a value-specific `Delete{old}` followed by `Add{new}` in the same modify request. A modify
//! is atomic, so if an on-prem edit changed the value after it was read, the request fails
//! (noSuchAttribute or attributeOrValueExists) and nothing is written; the engine re-reads
//! and plans again. `Replace` would overwrite blindly and is never planned.
//!
//! Comparison rules:
//! - Single-valued strings (extensionAttribute1–15, mail, the two type attributes) compare
//!   exactly: a case-only change is written (Delete{old} + Add{new}; AD's delete matches
//!   case-insensitively, so that works).
//! - proxyAddresses compare the Exchange way (see [`crate::address`]): a value whose type
//!   and address match a desired one ignoring case is left alone, even if the address case
//!   differs; a primary↔secondary change deletes the old form and adds the new one in the
//!   same request. Types excluded by the [`PlanPolicy`] are neither added nor removed.
//! - msExchExtensionCustomAttribute1–5: values are identified case-insensitively (AD's
//!   matching rule); a case-only change is written as delete + add.
//! - msExchHideFromAddressLists: `Some(true)` wants `TRUE`; `Some(false)` wants `FALSE`, but
//!   an absent AD value already means FALSE, so nothing is written then; `None` leaves the
//!   attribute untouched.
//! - msExchRecipientTypeDetails / msExchRecipientDisplayType come from the type mapping;
//!   a record without a type leaves both untouched.
//!
//! Output order: attributes in [`ManagedAttribute::ALL`] order; per attribute at most one
//! `Delete` (values in AD's order) then at most one `Add` (values in the record's order).

use crate::address::ProxyAddress;
use crate::apply::values_match;
use crate::attribute::ManagedAttribute;
use crate::error::ValidationError;
use crate::mailbox::Mailbox;
use crate::modification::Modification;
use crate::policy::PlanPolicy;
use crate::validate::{validate, DesiredState};
use crate::values::AdValues;

/// Validates `desired` and plans the modifications that make `current` match it.
/// A record failing validation plans nothing and returns the error.
pub fn plan(
    desired: &Mailbox,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Result<Vec<Modification>, ValidationError> {
    let state = validate(desired)?;
    Ok(plan_desired(&state, current, policy))
}

/// Plans from an already validated state.
pub fn plan_desired(
    desired: &DesiredState,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Vec<Modification> {
    let mut mods = Vec::new();
    for attr in ManagedAttribute::ALL {
        let have = current.get(attr);
        let (deletes, adds) = match attr {
            ManagedAttribute::ProxyAddresses => {
                let Some(want) = desired.values(attr) else {
                    continue;
                };
                let excluded =
                    |v: &str| ProxyAddress::parse(v).is_ok_and(|p| policy.excludes_type(&p.prefix));
                let want: Vec<String> = want.iter().filter(|v| !excluded(v)).cloned().collect();
                diff(attr, have, &want, excluded, same_proxy_value)
            }
            ManagedAttribute::MsExchHideFromAddressLists => {
                match desired.hidden_from_address_lists() {
                    None => continue,
                    Some(false) if have.is_empty() => continue,
                    Some(hidden) => {
                        let want = [if hidden { "TRUE" } else { "FALSE" }.to_owned()];
                        diff(attr, have, &want, |_| false, |a, b| a == b)
                    }
                }
            }
            _ => {
                let Some(want) = desired.values(attr) else {
                    continue;
                };
                diff(attr, have, want, |_| false, |a, b| a == b)
            }
        };
        if !deletes.is_empty() {
            mods.push(Modification::delete(attr, deletes));
        }
        if !adds.is_empty() {
            mods.push(Modification::add(attr, adds));
        }
    }
    mods
}

fn same_proxy_value(have: &str, want: &str) -> bool {
    match (ProxyAddress::parse(have), ProxyAddress::parse(want)) {
        (Ok(h), Ok(w)) => h.same_value(&w),
        _ => have == want,
    }
}

/// What happens to one current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Outside writeback's ownership (an excluded proxy address type).
    Untouchable,
    /// Stays, standing for the desired value at this index.
    KeptFor(usize),
    Delete,
}

/// Values to delete and values to add so that `have` becomes `want` under `same`.
///
/// Each desired value keeps at most one current value it is `same` as; current values kept
/// by nobody are deleted, unless `untouchable`. One subtlety: AD deletes the FIRST value
/// matching case-insensitively, so deleting a value while keeping another that matches it
/// case-insensitively could remove the wrong one. When that happens the kept value is
/// deleted too and its desired form re-added, which is correct whichever one AD removes
/// first. (Untouchable values cannot collide that way: they are excluded by address type,
/// and values equal ignoring case have the same type.)
fn diff(
    attr: ManagedAttribute,
    have: &[String],
    want: &[String],
    untouchable: impl Fn(&str) -> bool,
    same: impl Fn(&str, &str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut claimed = vec![false; want.len()];
    let mut fates = Vec::with_capacity(have.len());
    for h in have {
        let fate = if untouchable(h) {
            Fate::Untouchable
        } else {
            let free_match = want
                .iter()
                .zip(claimed.iter_mut())
                .enumerate()
                .find(|(_, (w, c))| !**c && same(h, w));
            match free_match {
                Some((j, (_, c))) => {
                    *c = true;
                    Fate::KeptFor(j)
                }
                None => Fate::Delete,
            }
        };
        fates.push(fate);
    }

    loop {
        let deleted: Vec<&String> = have
            .iter()
            .zip(&fates)
            .filter(|(_, f)| **f == Fate::Delete)
            .map(|(h, _)| h)
            .collect();
        let mut changed = false;
        for (h, fate) in have.iter().zip(fates.iter_mut()) {
            if let Fate::KeptFor(j) = *fate {
                if deleted.iter().any(|d| values_match(attr, d, h)) {
                    if let Some(c) = claimed.get_mut(j) {
                        *c = false;
                    }
                    *fate = Fate::Delete;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    let deletes = have
        .iter()
        .zip(&fates)
        .filter(|(_, f)| **f == Fate::Delete)
        .map(|(h, _)| h.clone())
        .collect();
    let adds = want
        .iter()
        .zip(&claimed)
        .filter(|(_, c)| !**c)
        .map(|(w, _)| w.clone())
        .collect();
    (deletes, adds)
}
