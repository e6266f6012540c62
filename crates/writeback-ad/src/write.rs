//! Writing to AD: the one path by which writeback modifies a directory object.
//!
//! Every modification passes `writeback_core::ensure_writable` here, immediately before the
//! request is encoded, whatever the caller checked before: "only the managed attributes are
//! ever written" is enforced in this one place.

use crate::directory::AdDirectory;
use crate::entry::AdUser;
use crate::error::AdError;
use ldap3::{LdapError, Mod};
use std::collections::HashSet;
use writeback_core::{ensure_writable, ModOp, Modification};

impl AdDirectory {
    /// Applies a planned modification list to `target` in ONE atomic modify request.
    ///
    /// The plan's value-specific deletes make this an optimistic-concurrency write: if the
    /// object changed since `target` was read, the DC rejects the whole request and
    /// [`AdError::Conflict`] tells the caller to re-read and re-plan. The object is addressed
    /// by its GUID, so a rename or move in between cannot redirect the write.
    pub async fn apply(&self, target: &AdUser, mods: &[Modification]) -> Result<(), AdError> {
        if mods.is_empty() {
            return Ok(());
        }
        if !self.config.allow_protected {
            if let Some(reason) = target.protection() {
                return Err(AdError::Protected {
                    dn: target.dn.clone(),
                    reason,
                });
            }
        }
        ensure_writable(mods)?;
        let request: Vec<Mod<String>> = mods.iter().map(to_ldap_mod).collect();
        let mut ldap = self.pool.get_for_writes().await?;
        let sent = std::time::Instant::now();
        let result = ldap
            .with_timeout(self.config.timeout)
            .modify(&target.guid_dn(), request)
            .await;
        metrics::histogram!("writeback_ad_modify_duration_seconds")
            .record(sent.elapsed().as_secs_f64());
        let dn = target.dn.clone();
        let outcome = match result {
            Ok(result) => classify(dn, result.rc, result.text),
            // The request may have reached the DC: the caller must re-read before deciding.
            Err(e @ (LdapError::Timeout { .. } | LdapError::ResultRecv { .. })) => {
                Err(AdError::OutcomeUnknown {
                    dn,
                    reason: e.to_string(),
                })
            }
            // Not sent at all: nothing was written.
            Err(e) => Err(AdError::Transport {
                operation: "modify",
                reason: e.to_string(),
            }),
        };
        metrics::counter!("writeback_ad_modifies_total", "result" => result_label(&outcome))
            .increment(1);
        outcome
    }
}

/// The `result` label of `writeback_ad_modifies_total`: what the DC answered, as a class.
fn result_label(outcome: &Result<(), AdError>) -> &'static str {
    match outcome {
        Ok(()) => "success",
        Err(AdError::Conflict { .. }) => "conflict",
        Err(AdError::OutcomeUnknown { .. }) => "unknown",
        Err(AdError::Transport { .. }) => "transport_error",
        Err(AdError::AccessDenied { .. }) => "access_denied",
        Err(_) => "rejected",
    }
}

/// The help text of the modify metrics, for the scrape endpoint.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "writeback_ad_modifies_total",
        "LDAP modify requests sent, by result (success, conflict, rejected, access_denied, \
         unknown, transport_error)"
    );
    metrics::describe_histogram!(
        "writeback_ad_modify_duration_seconds",
        metrics::Unit::Seconds,
        "Time from sending a modify to its result (pipelined requests included)"
    );
}

fn to_ldap_mod(modification: &Modification) -> Mod<String> {
    let name = modification.attribute.ldap_name().to_owned();
    let values: HashSet<String> = modification.values.iter().cloned().collect();
    match modification.op {
        ModOp::Add => Mod::Add(name, values),
        ModOp::Delete => Mod::Delete(name, values),
        ModOp::Replace => Mod::Replace(name, values),
    }
}

/// Maps a modify result code to what the engine must do about it.
fn classify(dn: String, code: u32, message: String) -> Result<(), AdError> {
    match code {
        0 => Ok(()),
        // Samba answers 16 both for a stale value and for an attribute the schema lacks;
        // only the diagnostic tells them apart.
        16 if mentions_schema(&message) => Err(AdError::SchemaMissing { dn, code, message }),
        16 | 20 => Err(AdError::Conflict { dn, code, message }),
        17 => Err(AdError::SchemaMissing { dn, code, message }),
        32 => Err(AdError::NoSuchObject { dn }),
        50 => Err(AdError::AccessDenied { dn, code, message }),
        19 | 21 | 65 => Err(AdError::ValueRejected { dn, code, message }),
        _ => Err(AdError::Ldap {
            operation: "modify",
            code,
            message,
        }),
    }
}

fn mentions_schema(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("schema") || lower.contains("not found in the schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_what_the_engine_does_next() {
        let c = |code, text: &str| classify("cn=x".into(), code, text.into());
        assert!(c(0, "").is_ok());
        assert!(matches!(c(16, "value not found"), Err(AdError::Conflict { .. })));
        assert!(matches!(c(20, ""), Err(AdError::Conflict { .. })));
        assert!(matches!(
            c(16, "attribute 'foo' not found in the schema"),
            Err(AdError::SchemaMissing { .. })
        ));
        assert!(matches!(c(32, ""), Err(AdError::NoSuchObject { .. })));
        assert!(matches!(c(50, ""), Err(AdError::AccessDenied { .. })));
        assert!(matches!(c(19, ""), Err(AdError::ValueRejected { .. })));
        assert!(matches!(c(53, ""), Err(AdError::Ldap { code: 53, .. })));
        assert!(c(16, "").unwrap_err().needs_reread());
    }

    #[test]
    fn modify_results_are_counted_by_class() {
        let dn = || "CN=x".to_owned();
        assert_eq!(result_label(&Ok(())), "success");
        assert_eq!(result_label(&classify(dn(), 16, "no such value".into())), "conflict");
        assert_eq!(result_label(&classify(dn(), 50, "denied".into())), "access_denied");
        assert_eq!(result_label(&classify(dn(), 21, "bad syntax".into())), "rejected");
        let unknown = Err(AdError::OutcomeUnknown { dn: dn(), reason: "timeout".into() });
        assert_eq!(result_label(&unknown), "unknown");
    }
}
