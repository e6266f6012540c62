#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tenant-emulator serve …` / `tenant-emulator import-ad …` (see README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tenant_emulator::{EmulatorConfig, RunningEmulator};

#[derive(Parser)]
#[command(
    name = "tenant-emulator",
    about = "A stand-in for Entra, Graph users/delta and the Exchange Online admin API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS until SIGINT/SIGTERM.
    Serve {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        bind: SocketAddr,
        #[arg(long, default_value = "contoso.onmicrosoft.com")]
        tenant: String,
        /// Build a synthetic tenant of this many mailboxes if the state dir has none yet.
        #[arg(long, default_value_t = 0)]
        mailboxes: usize,
        #[arg(long, default_value_t = 3599)]
        token_lifetime: u64,
        /// users/delta default page size.
        #[arg(long, default_value_t = 100)]
        graph_page_size: usize,
        /// Keep the tenant in memory only: never write tenant.json (certificates, the app's
        /// files and emulator.json are still written). For benchmarks of large tenants.
        #[arg(long)]
        no_persist: bool,
    },
    /// Import AD users into the tenant kept in --state-dir (the emulator must not be serving that
    /// dir at the same time; against a running one use POST /_emulator/import-ad).
    ImportAd {
        #[arg(long)]
        env: PathBuf,
        #[arg(long)]
        ou: Option<String>,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "contoso.onmicrosoft.com")]
        tenant: String,
        /// Make every imported mailbox cloud-managed (IsExchangeCloudManaged = true).
        #[arg(long)]
        cloud_managed: bool,
    },
}

/// Listens for SIGINT/SIGTERM from the moment it is called (not from the first poll): a
/// signal sent right after the banner is printed must stop the server cleanly, not kill it.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(cli: Cli) -> Result<(), tenant_emulator::EmulatorError> {
    match cli.command {
        Command::Serve {
            state_dir,
            bind,
            tenant,
            mailboxes,
            token_lifetime,
            graph_page_size,
            no_persist,
        } => {
            if !bind.ip().is_loopback() {
                eprintln!("warning: {bind} is not a loopback address; the control API is protected only by its token");
            }
            let mut config = EmulatorConfig::new(state_dir);
            config.bind = bind;
            config.tenant_id = tenant;
            config.synthetic_mailboxes = mailboxes;
            config.token_lifetime = Duration::from_secs(token_lifetime);
            config.graph_page_size = graph_page_size;
            config.persist = !no_persist;
            let stop = stop_signal();
            let started = std::time::Instant::now();
            let emulator = RunningEmulator::start(config).await?;
            let (cert, key) = emulator.client_cert_paths();
            let dir = emulator.state_dir();
            println!("tenant-emulator ready in {:.2?}", started.elapsed());
            println!("base URL:       {}", emulator.base_url());
            println!(
                "tenant:         {} ({})",
                emulator.tenant_id(),
                emulator.tenant_guid()
            );
            println!("client id:      {}", emulator.client_id());
            println!("CA certificate: {}", emulator.ca_cert_path().display());
            println!(
                "client secret:  {} (file)",
                dir.join("client-secret").display()
            );
            println!("client cert:    {} / key {}", cert.display(), key.display());
            println!(
                "control token:  {} (file)",
                dir.join("control-token").display()
            );
            stop.await;
            emulator.shutdown().await;
            if no_persist {
                println!("stopped; the tenant was not saved (--no-persist)");
            } else {
                println!("stopped; tenant saved in {}", dir.display());
            }
            Ok(())
        }
        Command::ImportAd {
            env,
            ou,
            state_dir,
            tenant,
            cloud_managed,
        } => {
            let mut config = EmulatorConfig::new(state_dir);
            config.tenant_id = tenant;
            let emulator = RunningEmulator::start(config).await?;
            let options = tenant_emulator::import::ImportOptions { cloud_managed };
            let result = emulator.import_ad(&env, ou.as_deref(), options).await;
            emulator.shutdown().await;
            let summary = result?;
            println!(
                "imported: {} created, {} updated, {} unchanged, {} addresses quarantined, {} errors",
                summary.created,
                summary.updated,
                summary.unchanged,
                summary.quarantined.len(),
                summary.errors.len()
            );
            for e in &summary.errors {
                eprintln!("  {e}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
