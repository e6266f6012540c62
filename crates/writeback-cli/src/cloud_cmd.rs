//! `writeback cloud ...`: the cloud side on its own (an inventory export of the
//! cloud-managed mailboxes, with their identity anchors).

use anyhow::{Context, Result};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use writeback_cloud::{
    AnchorChanges, AnchorStore, Anchors, CloudConfig, CloudReaders, DeltaCursor, Mailbox,
    MailboxError,
};
use writeback_state::{SqliteStore, StateStore};

#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Print every cloud-managed mailbox as a normalised record (Exchange Online, with the
    /// identity anchors from Graph). Exit code 2 when some mailboxes could not be read.
    Pull {
        /// One JSON object per line (the record format the planner consumes).
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: CloudCommand, config: CloudConfig) -> Result<i32> {
    match command {
        CloudCommand::Pull { json } => pull(&config, json).await,
    }
}

async fn pull(config: &CloudConfig, json: bool) -> Result<i32> {
    // Locked and buffered: a tenant can have hundreds of thousands of lines.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error: Option<std::io::Error> = None;
    let mut bad = 0u64;
    let readers = CloudReaders::from_config(config)?;
    // Declared before the store so that the store is closed before its directory goes.
    let scratch = ScratchDir::create()?;
    let mut anchors = StoredAnchors {
        store: SqliteStore::open(scratch.path().join("anchors.db"))
            .context("opening the temporary anchor store")?,
    };
    let summary = writeback_cloud::pull_with_anchors(
        &readers,
        &mut anchors,
        |item: Result<Mailbox, MailboxError>| {
            if write_error.is_some() {
                return;
            }
            let written = match item {
                Ok(mailbox) if json => serde_json::to_writer(&mut out, &mailbox)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n")),
                Ok(mailbox) => writeln!(out, "{}", one_line(&mailbox)),
                Err(e) => {
                    bad += 1;
                    eprintln!(
                        "mailbox {}: {}: {}",
                        e.id.as_deref().unwrap_or("(no id)"),
                        e.field,
                        e.detail
                    );
                    Ok(())
                }
            };
            if let Err(e) = written {
                write_error = Some(e);
            }
        },
    )
    .await?;
    drop(anchors);
    drop(scratch);
    out.flush()?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let exchange = &summary.exchange;
    eprintln!(
        "{} cloud-managed mailboxes ({} without Graph anchors), {} unreadable; {} Graph users; pass {}",
        exchange.mailboxes,
        summary.unanchored,
        bad,
        summary.graph_users,
        if exchange.complete { "complete" } else { "INCOMPLETE (Exchange cut the result short)" },
    );
    Ok(if !exchange.complete {
        1
    } else if bad > 0 {
        2
    } else {
        0
    })
}

/// The Graph anchors of one pull, in a state store on disk so that memory does not grow with
/// the tenant. Throw-away: no cursor is kept.
struct StoredAnchors {
    store: SqliteStore,
}

impl AnchorStore for StoredAnchors {
    type Error = anyhow::Error;

    fn anchors(&self, key: &str) -> Result<Option<Anchors>> {
        Ok(self.store.anchors(key)?)
    }

    fn apply_page(
        &mut self,
        changes: &AnchorChanges,
        resynced: bool,
        _cursor: &DeltaCursor,
    ) -> Result<()> {
        if resynced {
            self.store.clear_anchors()?;
        }
        // No watermark is written, so the time is never stored.
        self.store
            .apply_anchor_page(&changes.upserts, &changes.removals, None, 0)?;
        Ok(())
    }
}

/// A private directory under the system temp dir, removed with everything in it on drop
/// (also when the pull fails).
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create() -> Result<Self> {
        let base = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut last_error = None;
        for attempt in 0..16u32 {
            let path = base.join(format!(
                "writeback-pull-{}-{stamp}-{attempt}",
                std::process::id()
            ));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            // `create`, not `create_all`: an existing directory (someone else's) is never reused.
            match builder.create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(last_error.map_or_else(|| anyhow::anyhow!("no attempt made"), anyhow::Error::from))
            .with_context(|| format!("creating a temporary directory in {}", base.display()))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the temporary anchor store");
        }
    }
}

fn one_line(m: &Mailbox) -> String {
    let anchor = m
        .anchors
        .immutable_id
        .as_deref()
        .map(|id| format!("immutableId={id}"))
        .or_else(|| m.anchors.sid.as_deref().map(|sid| format!("sid={sid}")))
        .unwrap_or_else(|| "no anchor".into());
    format!(
        "{}  {:<40} {:<16} {} addresses  {}",
        m.cloud_id,
        m.primary_smtp.as_deref().unwrap_or("-"),
        m.recipient_type_details.as_deref().unwrap_or("-"),
        m.proxy_addresses.len(),
        anchor
    )
}
