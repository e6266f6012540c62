//! `writeback cloud ...`: the cloud side on its own (an inventory export of the
//! cloud-managed mailboxes, with their identity anchors).

use anyhow::Result;
use clap::Subcommand;
use std::io::Write;
use writeback_cloud::{CloudConfig, Mailbox, MailboxError};

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
    let summary = writeback_cloud::pull(config, |item: Result<Mailbox, MailboxError>| {
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
    })
    .await?;
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
    Ok(if !exchange.complete { 1 } else if bad > 0 { 2 } else { 0 })
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
