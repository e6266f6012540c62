//! `writeback`: keeps on-premises AD in step with Exchange Online's cloud-managed mailboxes.
//!
//! This is the binary's edge: errors get `anyhow` context here and become a message and an
//! exit code; everything below it returns typed errors.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ad_cmd;
mod cloud_cmd;
mod config;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "writeback", version, about)]
struct Cli {
    /// The TOML config file.
    #[arg(long, global = true, default_value = "writeback.toml")]
    config: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The AD side: check the connection and schema, show an object, write one mailbox.
    #[command(subcommand)]
    Ad(ad_cmd::AdCommand),
    /// The cloud side: read the cloud-managed mailboxes from Exchange Online and Graph.
    #[command(subcommand)]
    Cloud(cloud_cmd::CloudCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<i32> {
    let config = config::Config::load(&cli.config)?;
    match cli.command {
        Command::Ad(command) => {
            let dir = writeback_ad::AdDirectory::connect(config.ad()?).await?;
            ad_cmd::run(command, dir).await
        }
        Command::Cloud(command) => cloud_cmd::run(command, config.cloud()?).await,
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRITEBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
