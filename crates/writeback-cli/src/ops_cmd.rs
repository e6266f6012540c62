//! The operator's commands that work from the state store alone: `init`, `status`, `errors`,
//! `audit`, `approve`, `discard`, `show-plan`, `release`. None of them talks to AD or the
//! cloud, so they answer even when either is down, which is when an operator needs them.

mod audit;
mod plans;
mod queue;
mod status;
mod text;

pub use audit::{audit, AuditArgs};
pub use plans::{approve, discard, show_plan};
pub use queue::{errors, release};
pub use status::status;

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use writeback_state::SqliteStore;

/// The commented sample config; `init` writes exactly this text.
pub const CONFIG_TEMPLATE: &str = include_str!("../../../packaging/writeback.toml.example");

/// Writes the sample config to `path`. Refuses to replace an existing file unless `force`:
/// the file an operator filled in is worth more than a template.
pub fn init(path: &Path, force: bool) -> Result<i32> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new fails atomically if the file exists, so there is no check-then-write race.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    // Set explicitly rather than at creation: that mode would be cut by the umask, and an
    // overwritten file would keep its old one. The template holds no secret, only the paths
    // of the files that do, so it may be world-readable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    file.write_all(CONFIG_TEMPLATE.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let shown = path.display().to_string();
    finish_output(writeln!(
        std::io::stdout().lock(),
        "wrote {}; fill in [cloud] and [ad], then check them with `writeback --config {} ad check`",
        text::printable(&shown),
        text::shell_word(&shown)
    ))?;
    Ok(0)
}

/// Opens the state store only if it exists: a read-only command pointed at the wrong config
/// must say so, not create an empty store and report that all is well.
fn open_existing_state(config: &Config) -> Result<SqliteStore> {
    let path = config.state_path();
    if !path.exists() {
        bail!(
            "no state store at {} (set [state] path in {}, or run writeback once to create it)",
            path.display(),
            config.path.display()
        );
    }
    config.open_state()
}

/// The current time in unix milliseconds, the unit of every time in the store.
fn now_ms() -> i64 {
    let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// `writeback` with the `--config` the operator is using, to print commands they can paste.
fn command_prefix(config: &Config) -> String {
    if config.path == Path::new("writeback.toml") {
        "writeback".to_string()
    } else {
        format!(
            "writeback --config {}",
            text::shell_word(&config.path.display().to_string())
        )
    }
}

/// Stdout, with a closed pipe (`writeback audit | head`) treated as the reader being done.
fn finish_output(result: std::io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

#[cfg(test)]
mod tests;
