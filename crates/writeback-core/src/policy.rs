//! Which proxy address types writeback owns.
//!
//! Exchange Online returns cloud-internal addresses such as SharePoint's
//! `SPO:SPO_<guid>@SPO_<guid>`. They mean nothing on-premises, so by default the `SPO` type is
//! excluded. An excluded type is outside writeback's ownership in BOTH directions: its
//! values are never added to AD, and values of that type already in AD are never removed
//! (someone else put them there, and writeback has no say over them). Validation still
//! looks at every value the cloud sent; exclusion only affects what is planned.

use serde::{Deserialize, Serialize};

/// Planning options that are policy, not fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPolicy {
    /// Proxy address types (prefixes without the colon, any case) writeback leaves alone.
    pub excluded_address_types: Vec<String>,
}

impl Default for PlanPolicy {
    fn default() -> Self {
        PlanPolicy {
            excluded_address_types: vec!["SPO".to_owned()],
        }
    }
}

impl PlanPolicy {
    /// Whether a proxy address type (prefix) is excluded, ignoring case.
    pub fn excludes_type(&self, prefix: &str) -> bool {
        self.excluded_address_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_excludes_spo_in_any_case() {
        let policy = PlanPolicy::default();
        assert!(policy.excludes_type("SPO"));
        assert!(policy.excludes_type("spo"));
        assert!(!policy.excludes_type("SMTP"));
        assert!(!PlanPolicy {
            excluded_address_types: vec![]
        }
        .excludes_type("SPO"));
    }
}
