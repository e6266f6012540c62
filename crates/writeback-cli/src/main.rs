//! `writeback`: keeps on-premises AD in step with Exchange Online's cloud-managed mailboxes.
//!
//! This is the binary's edge: errors get `anyhow` context here and become a message and an
//! exit code; everything below it returns typed errors.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ad_cmd;
mod cloud_cmd;
mod config;
mod engine_cmd;
mod out;
mod ops_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "writeback", version, about, long_about = None)]
struct Cli {
    /// The TOML config file.
    #[arg(long, global = true, default_value = "writeback.toml")]
    config: PathBuf,
    /// Log as JSON lines (overrides [log] format).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented config template (to PATH, default: the --config path).
    Init {
        path: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Verify the config, reach and authenticate to every endpoint, check the AD schema and
    /// the service account's write permissions. Exit 1 when anything failed.
    Check,
    /// Read everything and print, per mailbox, the changes writeback would make and why it
    /// would skip any. Writes nothing to AD.
    Plan {
        #[arg(long)]
        json: bool,
        /// Save the plan for `writeback apply FILE`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also list mailboxes that are already in sync.
        #[arg(long)]
        all: bool,
    },
    /// Apply a plan saved with `plan --out`; objects changed in AD since are refused.
    Apply {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// One cycle. Exit 0 when all went well, 2 when some mailboxes failed or were skipped,
    /// 3 when a safety brake held the cycle.
    Sync {
        /// Required: `sync` runs one cycle (use `run` for the service).
        #[arg(long, required = true)]
        once: bool,
        /// A full pass over every cloud-managed mailbox (repairs on-prem drift).
        #[arg(long)]
        full: bool,
        /// One JSON object per mailbox on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The continuous service: polls the cloud every few seconds; stops cleanly on
    /// SIGTERM/SIGINT after finishing the writes in flight.
    Run,
    /// The on-demand path for one mailbox (SMTP address, cloud id, or the DN of its AD user),
    /// printing each step.
    Provision {
        mailbox: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Where the engine stands: watermarks, last cycle, joins, in-flight writes, retry queue,
    /// quarantined mailboxes, held plans. Exit status 0 when all is well, 1 when an operator is
    /// needed (a quarantined mailbox or a pending held plan).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The retry queue and quarantined mailboxes, as data.
    Errors {
        #[arg(long)]
        json: bool,
    },
    /// The audit log of every write: filter, and print as a table, JSON lines or CSV.
    Audit(ops_cmd::AuditArgs),
    /// Approve a plan held by a safety brake: the next cycle applies it.
    Approve { plan_id: i64 },
    /// Discard a held plan.
    Discard { plan_id: i64 },
    /// Show a held plan's objects and changes.
    ShowPlan {
        plan_id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Release a quarantined mailbox: it is retried at the next cycle.
    Release { cloud_id: String },
    /// The AD side alone: check the connection and schema, show an object, write one record.
    #[command(subcommand)]
    Ad(ad_cmd::AdCommand),
    /// The cloud side alone: read the cloud-managed mailboxes from Exchange Online and Graph.
    #[command(subcommand)]
    Cloud(cloud_cmd::CloudCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `init` makes the config file, so it runs before there is one to load.
    if let Command::Init { path, force } = &cli.command {
        let path = path.clone().unwrap_or_else(|| cli.config.clone());
        return match ops_cmd::init(&path, *force) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = config::Config::load(&cli.config);
    let log = config.as_ref().ok().map(|c| &c.file.log);
    init_logging(cli.log_json, log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = config.and_then(|config| runtime.block_on(run(cli.command, config)));
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: config::Config) -> Result<i32> {
    match command {
        Command::Check => engine_cmd::check(&config).await,
        Command::Plan { json, out, all } => engine_cmd::plan(&config, json, out.as_deref(), all).await,
        Command::Apply { file, json } => engine_cmd::apply(&config, &file, json).await,
        Command::Sync { once: _, full, json } => engine_cmd::sync_once(&config, full, json).await,
        Command::Run => engine_cmd::run(&config).await,
        Command::Provision { mailbox, dry_run } => engine_cmd::provision(&config, &mailbox, dry_run).await,
        Command::Init { .. } => Ok(0),
        Command::Status { json } => ops_cmd::status(&config, json),
        Command::Errors { json } => ops_cmd::errors(&config, json),
        Command::Audit(args) => ops_cmd::audit(&config, &args),
        Command::Approve { plan_id } => ops_cmd::approve(&config, plan_id),
        Command::Discard { plan_id } => ops_cmd::discard(&config, plan_id),
        Command::ShowPlan { plan_id, json } => ops_cmd::show_plan(&config, plan_id, json),
        Command::Release { cloud_id } => ops_cmd::release(&config, &cloud_id),
        Command::Ad(command) => {
            let dir = writeback_ad::AdDirectory::connect(config.ad()?).await?;
            ad_cmd::run(command, dir).await
        }
        Command::Cloud(command) => cloud_cmd::run(command, config.cloud()?).await,
    }
}

fn init_logging(json_flag: bool, log: Option<&config::LogSection>) {
    let level = log.and_then(|l| l.level.clone()).unwrap_or_else(|| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRITEBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = json_flag || log.and_then(|l| l.format.as_deref()) == Some("json");
    // Colour codes only for a person at a terminal, not in journald or a redirected file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
