//! The sample config: `init` writes it safely, it loads, and every default it documents is
//! the default the code applies.

use super::*;
use crate::config::Config;
use writeback_ad::AdSection;
use writeback_engine::{Brakes, EngineSection};

/// The template with every `#key = value` line switched on. Prose comments start with `# `
/// (hash, space), settings at their default with `#` and the key.
fn uncommented_template() -> (String, usize) {
    let mut switched_on = 0;
    let text = CONFIG_TEMPLATE
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => {
                switched_on += 1;
                rest.to_string()
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, switched_on)
}

fn load_text(dir: &Path, name: &str, text: &str) -> Config {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

#[test]
fn init_writes_the_template_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writeback.toml");
    assert_eq!(init(&path, false).unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG_TEMPLATE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    std::fs::write(&path, "# filled in by the operator\n").unwrap();
    let refused = init(&path, false).unwrap_err();
    assert!(refused.to_string().contains("--force"), "{refused:#}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# filled in by the operator\n"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(init(&path, true).unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG_TEMPLATE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "--force resets the mode too");
    }
}

#[test]
fn init_reports_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let error = init(&dir.path().join("absent/writeback.toml"), false).unwrap_err();
    assert!(error.to_string().contains("cannot create"), "{error:#}");
}

#[test]
fn the_template_loads_with_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_text(dir.path(), "writeback.toml", CONFIG_TEMPLATE);
    let cloud = config.file.cloud.as_ref().unwrap();
    assert!(cloud.client_secret_file.is_some());
    cloud.validate().unwrap();
    let ad = config.file.ad.as_ref().unwrap();
    assert_eq!(ad.url, "ldaps://dc1.example.com");
    assert_eq!(
        config.state_path(),
        Path::new("/var/lib/writeback/writeback.db"),
        "the path the systemd unit makes writable"
    );
    assert_eq!(config.file.brakes, Brakes::default());
}

#[test]
fn every_default_the_template_documents_is_the_codes_default() {
    let (text, switched_on) = uncommented_template();
    assert!(switched_on >= 40, "only {switched_on} settings found");
    let dir = tempfile::tempdir().unwrap();
    let documented = load_text(dir.path(), "documented.toml", &text);
    let implicit = load_text(dir.path(), "implicit.toml", CONFIG_TEMPLATE);

    assert_eq!(documented.file.brakes, Brakes::default());
    let engine = &documented.file.engine;
    let code = EngineSection::default();
    assert_eq!(engine.poll_interval_secs, code.poll_interval_secs);
    assert_eq!(engine.max_in_flight, code.max_in_flight);
    assert_eq!(engine.conflict_retries, code.conflict_retries);
    assert_eq!(engine.retry_base_secs, code.retry_base_secs);
    assert_eq!(engine.retry_max_secs, code.retry_max_secs);
    assert_eq!(engine.quarantine_after, code.quarantine_after);
    assert_eq!(engine.audit_retention_days, code.audit_retention_days);
    assert_eq!(
        engine.excluded_address_types.as_deref(),
        Some(&writeback_core::PlanPolicy::default().excluded_address_types[..])
    );

    // Cloud: the documented values equal what serde fills in when the keys are absent.
    let (doc, imp) = (
        documented.file.cloud.clone().unwrap(),
        implicit.file.cloud.clone().unwrap(),
    );
    assert_eq!(doc.certificate_algorithm, imp.certificate_algorithm);
    assert_eq!(doc.environment, imp.environment);
    assert_eq!(doc.exchange_page_size, imp.exchange_page_size);
    assert_eq!(doc.request_timeout_secs, imp.request_timeout_secs);
    assert_eq!(doc.connect_timeout_secs, imp.connect_timeout_secs);
    assert_eq!(doc.max_retry_wait_secs, imp.max_retry_wait_secs);
    assert_eq!(doc.retry_base_delay_ms, imp.retry_base_delay_ms);
    assert_eq!(doc.retry_max_delay_secs, imp.retry_max_delay_secs);
    assert_eq!(doc.watermark_overlap_secs, imp.watermark_overlap_secs);
    assert_eq!(doc.full_pass_interval_hours, imp.full_pass_interval_hours);
    assert_eq!(doc.max_query_restarts, imp.max_query_restarts);
    // The documented host overrides are the worldwide presets, i.e. no change.
    assert_eq!(doc.endpoints(), imp.endpoints());

    // AD: the defaults live in `resolve`, so resolve both with the same password file.
    std::fs::write(dir.path().join("pw"), "secret").unwrap();
    let resolve = |section: &AdSection| {
        let mut section = section.clone();
        section.bind_password_file = Some("pw".into());
        section.bind_password_env = None;
        section.resolve(dir.path()).unwrap()
    };
    let doc = resolve(documented.file.ad.as_ref().unwrap());
    let imp = resolve(implicit.file.ad.as_ref().unwrap());
    assert_eq!(doc.transport, imp.transport);
    assert_eq!(doc.scope, imp.scope);
    assert_eq!(doc.pool_size, imp.pool_size);
    assert_eq!(doc.timeout, imp.timeout);
    assert_eq!(doc.page_size, imp.page_size);
    assert_eq!(doc.scan_streams, imp.scan_streams);
    assert_eq!(doc.allow_protected, imp.allow_protected);

    assert_eq!(documented.file.log.format.as_deref(), Some("human"));
}
