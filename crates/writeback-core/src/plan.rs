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

use crate::address::ProxyRef;
use crate::apply::values_match;
use crate::attribute::ManagedAttribute;
use crate::error::ValidationError;
use crate::mailbox::Mailbox;
use crate::modification::Modification;
use crate::policy::PlanPolicy;
use crate::validate::{with_checked, DesiredState};
use crate::values::AdValues;

/// Validates `desired` and plans the modifications that make `current` match it.
/// A record failing validation plans nothing and returns the error.
pub fn plan(
    desired: &Mailbox,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Result<Vec<Modification>, ValidationError> {
    with_checked(desired, |checked| {
        plan_wanted(
            |attr| checked.wanted(attr),
            checked.hidden(),
            current,
            policy,
        )
    })
}

/// Plans from an already validated state.
pub fn plan_desired(
    desired: &DesiredState,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Vec<Modification> {
    plan_wanted(
        |attr| desired.values(attr),
        desired.hidden_from_address_lists(),
        current,
        policy,
    )
}

/// The planner proper. `wanted` gives an attribute's desired values, `None` when the record
/// leaves it untouched; `hidden` is the desired msExchHideFromAddressLists.
fn plan_wanted<'w, S: AsRef<str> + 'w>(
    wanted: impl Fn(ManagedAttribute) -> Option<&'w [S]>,
    hidden: Option<bool>,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Vec<Modification> {
    let mut mods = Vec::new();
    // `current` iterates its present attributes in ALL's order: walk both together instead
    // of looking each attribute up.
    let mut present = current.iter().peekable();
    for attr in ManagedAttribute::ALL {
        let have = present
            .next_if(|(a, _)| *a == attr)
            .map_or(&[][..], |(_, values)| values);
        let (deletes, adds) = match attr {
            ManagedAttribute::ProxyAddresses => {
                let Some(want) = wanted(attr) else {
                    continue;
                };
                diff_proxy_addresses(have, want, policy)
            }
            ManagedAttribute::MsExchHideFromAddressLists => match hidden {
                None => continue,
                Some(false) if have.is_empty() => continue,
                Some(hidden) => {
                    let want = [if hidden { "TRUE" } else { "FALSE" }];
                    diff_exact(attr, have, &want)
                }
            },
            _ => {
                let Some(want) = wanted(attr) else {
                    continue;
                };
                diff_exact(attr, have, want)
            }
        };
        if mods.capacity() == 0 && !(deletes.is_empty() && adds.is_empty()) {
            // Room for a typical change at once rather than growing by doubling.
            mods.reserve(8);
        }
        if !deletes.is_empty() {
            mods.push(Modification::delete(attr, deletes));
        }
        if !adds.is_empty() {
            mods.push(Modification::add(attr, adds));
        }
    }
    mods
}

/// [`diff`] where a value stays only if it is exactly a desired one.
fn diff_exact<S: AsRef<str>>(
    attr: ManagedAttribute,
    have: &[String],
    want: &[S],
) -> (Vec<String>, Vec<String>) {
    if have.len() <= 1 && want.len() <= 1 {
        // What `diff` gives for at most one value a side, without its bookkeeping: the one
        // value is kept if equal, else deleted and the desired one added (a lone value
        // collides with nothing).
        return match (have.first(), want.first()) {
            (Some(h), Some(w)) if h == w.as_ref() => (Vec::new(), Vec::new()),
            _ => (
                have.to_vec(),
                want.iter().map(|w| w.as_ref().to_owned()).collect(),
            ),
        };
    }
    diff(
        attr,
        have,
        want,
        |_| false,
        |_| false,
        |(_, h), (_, w)| h == w,
    )
}

/// [`diff`] with Exchange's proxy address comparison. Values of excluded types are
/// untouchable in AD and left out of the desired list (here: counted as kept already, which
/// plans the same as filtering them out). Every value is parsed once, not once per pair.
fn diff_proxy_addresses<S: AsRef<str>>(
    have: &[String],
    want: &[S],
    policy: &PlanPolicy,
) -> (Vec<String>, Vec<String>) {
    let have_parsed: Vec<Option<ProxyRef<'_>>> =
        have.iter().map(|h| ProxyRef::parse(h).ok()).collect();
    let want_parsed: Vec<Option<ProxyRef<'_>>> = want
        .iter()
        .map(|w| ProxyRef::parse(w.as_ref()).ok())
        .collect();
    let excluded = |p: Option<&Option<ProxyRef<'_>>>| {
        p.is_some_and(|p| p.is_some_and(|p| policy.excludes_type(p.prefix)))
    };
    diff(
        ManagedAttribute::ProxyAddresses,
        have,
        want,
        |i| excluded(have_parsed.get(i)),
        |j| excluded(want_parsed.get(j)),
        |(i, h), (j, w)| match (have_parsed.get(i), want_parsed.get(j)) {
            (Some(Some(hp)), Some(Some(wp))) => hp.same_value(wp),
            _ => h == w,
        },
    )
}

/// Whether [`diff`] would find nothing to do: the matching pass of `diff` without its
/// allocations (claims in a bit set), answering true only when every current value is kept
/// or untouchable and every desired value is claimed. With nothing deleted nothing collides,
/// so that is exactly when `diff` returns two empty lists. Lists longer than 64 values are
/// left to `diff`.
fn already_in_sync<S: AsRef<str>>(
    have: &[String],
    want: &[S],
    untouchable: impl Fn(usize) -> bool,
    settled: impl Fn(usize) -> bool,
    same: impl Fn((usize, &str), (usize, &str)) -> bool,
) -> bool {
    const MAX: usize = u64::BITS as usize;
    if want.len() > MAX {
        return false;
    }
    let mut claimed = (0..want.len())
        .filter(|j| settled(*j))
        .fold(0u64, |bits, j| bits | 1 << j);
    for (i, h) in have.iter().enumerate() {
        if untouchable(i) {
            continue;
        }
        let free_match = want
            .iter()
            .enumerate()
            .find(|(j, w)| claimed & 1 << j == 0 && same((i, h), (*j, w.as_ref())));
        match free_match {
            Some((j, _)) => claimed |= 1 << j,
            None => return false,
        }
    }
    let all = if want.len() == MAX {
        u64::MAX
    } else {
        (1u64 << want.len()) - 1
    };
    claimed == all
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

/// Values to delete and values to add so that `have` becomes `want` under `same` (given
/// index and value of each side).
///
/// Each desired value keeps at most one current value it is `same` as; current values kept
/// by nobody are deleted, unless `untouchable`. Desired values that are `settled` are
/// neither matched nor added. One subtlety: AD deletes the FIRST value matching
/// case-insensitively, so deleting a value while keeping another that matches it
/// case-insensitively could remove the wrong one. When that happens the kept value is
/// deleted too and its desired form re-added, which is correct whichever one AD removes
/// first. (Untouchable values cannot collide that way: they are excluded by address type,
/// and values equal ignoring case have the same type.)
fn diff<S: AsRef<str>>(
    attr: ManagedAttribute,
    have: &[String],
    want: &[S],
    untouchable: impl Fn(usize) -> bool,
    settled: impl Fn(usize) -> bool,
    same: impl Fn((usize, &str), (usize, &str)) -> bool,
) -> (Vec<String>, Vec<String>) {
    if already_in_sync(have, want, &untouchable, &settled, &same) {
        return (Vec::new(), Vec::new());
    }
    let mut claimed: Vec<bool> = (0..want.len()).map(settled).collect();
    let mut fates = Vec::with_capacity(have.len());
    for (i, h) in have.iter().enumerate() {
        let fate = if untouchable(i) {
            Fate::Untouchable
        } else {
            let free_match = want
                .iter()
                .zip(claimed.iter_mut())
                .enumerate()
                .find(|(j, (w, c))| !**c && same((i, h), (*j, w.as_ref())));
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

    // Deleting spreads to every kept value matching a deleted one, until nothing changes.
    // The end result is the same whatever order values are visited in.
    if fates.contains(&Fate::Delete) {
        loop {
            let mut changed = false;
            for k in 0..fates.len() {
                let (Some(Fate::KeptFor(j)), Some(h)) = (fates.get(k).copied(), have.get(k)) else {
                    continue;
                };
                let collides = have
                    .iter()
                    .zip(&fates)
                    .any(|(d, f)| *f == Fate::Delete && values_match(attr, d, h));
                if collides {
                    if let Some(fate) = fates.get_mut(k) {
                        *fate = Fate::Delete;
                    }
                    if let Some(c) = claimed.get_mut(j) {
                        *c = false;
                    }
                    changed = true;
                }
            }
            if !changed {
                break;
            }
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
        .map(|(w, _)| w.as_ref().to_owned())
        .collect();
    (deletes, adds)
}
