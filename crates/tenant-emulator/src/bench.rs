//! `POST /_emulator/mailboxes/bench-change`: one deterministic change to every cloud-managed
//! mailbox at once, so a benchmark can measure how fast writeback carries a mass change back to
//! AD (see README.md). Each mailbox goes through Set-Mailbox's own code, so the rules, the
//! WhenChangedUTC stamp and the Graph side (mail/proxyAddresses, delta sequence) are the same as
//! for an admin's Set-Mailbox.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::exchange::set_mailbox::apply_set_mailbox;
use crate::model::{smtp_address, Mailbox, Tenant};

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct BenchChangeRequest {
    /// Which round (> 0): it is written into every changed value, so rounds are told apart.
    pub round: u64,
    /// Only the first `limit` cloud-managed mailboxes (in Guid order).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BenchChangeSummary {
    /// Mailboxes changed.
    pub changed: usize,
    /// Mailboxes changed without their new address: another mailbox already has it.
    pub skipped: usize,
    /// Mailboxes Set-Mailbox's rules refused to change at all (e.g. an invalid address they
    /// already had); not expected with imported or synthetic tenants.
    pub failed: usize,
}

/// What one mailbox gets, worked out before anything changes.
struct Change {
    guid: String,
    /// 1-based position among the changed mailboxes, in Guid order.
    position: usize,
    alias: String,
    hidden: bool,
    add: Option<String>,
    remove: Option<String>,
}

/// `marker` is `.b{R}@`, lower-case.
fn plan(mailbox: &Mailbox, position: usize, round: u64, marker: &str) -> Change {
    let add = mailbox
        .primary_smtp()
        .and_then(|primary| primary.split_once('@'))
        .map(|(_, domain)| format!("smtp:{}.b{round}@{domain}", mailbox.alias));
    // The first secondary SMTP address not added by this round: with `{alias}.b{R}` added each
    // round, the address count stays the same from round to round.
    let remove = mailbox
        .email_addresses
        .iter()
        .find(|proxy| {
            proxy
                .strip_prefix("smtp:")
                .is_some_and(|address| !address.to_ascii_lowercase().contains(marker))
        })
        .cloned();
    Change {
        guid: mailbox.guid.clone(),
        position,
        alias: mailbox.alias.clone(),
        hidden: mailbox.hidden_from_address_lists,
        add,
        remove,
    }
}

/// Changes every cloud-managed mailbox (or the first `limit`) the same way for the same round:
/// CustomAttribute2 = `b{R}-ca2-{alias}`, CustomAttribute3 = `b{R}-ca3-{n}`, CustomAttribute4 =
/// `b{R}-ca4`, adds `smtp:{alias}.b{R}@{primary's domain}`, removes one older secondary SMTP
/// address, and flips HiddenFromAddressListsEnabled.
pub fn bench_change(tenant: &mut Tenant, request: BenchChangeRequest) -> BenchChangeSummary {
    let round = request.round;
    let marker = format!(".b{round}@");
    let changes: Vec<Change> = tenant
        .mailboxes
        .values()
        .filter(|m| m.is_exchange_cloud_managed)
        .take(request.limit.unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, m)| plan(m, i + 1, round, &marker))
        .collect();
    let mut summary = BenchChangeSummary::default();
    for change in changes {
        let add = change.add.filter(|proxy| {
            smtp_address(proxy)
                .and_then(|address| tenant.smtp_owner(address))
                .is_none_or(|owner| owner == change.guid)
        });
        let skipped = add.is_none();
        let mut params = Map::new();
        params.insert("Identity".into(), Value::String(change.guid.clone()));
        params.insert(
            "CustomAttribute2".into(),
            Value::String(format!("b{round}-ca2-{}", change.alias)),
        );
        params.insert(
            "CustomAttribute3".into(),
            Value::String(format!("b{round}-ca3-{}", change.position)),
        );
        params.insert(
            "CustomAttribute4".into(),
            Value::String(format!("b{round}-ca4")),
        );
        params.insert(
            "HiddenFromAddressListsEnabled".into(),
            Value::Bool(!change.hidden),
        );
        if add.is_some() || change.remove.is_some() {
            params.insert(
                "EmailAddresses".into(),
                json!({"Add": add.into_iter().collect::<Vec<_>>(), "Remove": change.remove.into_iter().collect::<Vec<_>>()}),
            );
        }
        match apply_set_mailbox(tenant, &params) {
            Ok(_) if skipped => {
                summary.changed += 1;
                summary.skipped += 1;
            }
            Ok(_) => summary.changed += 1,
            Err(_) => {
                tracing::warn!(
                    "bench-change: Set-Mailbox's rules refused the change of mailbox {}",
                    change.guid
                );
                summary.failed += 1;
            }
        }
    }
    summary
}
