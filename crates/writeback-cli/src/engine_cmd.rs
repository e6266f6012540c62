//! The engine's commands: check, plan, apply, sync, run, provision.

use crate::config::Config;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use writeback_ad::AdDirectory;
use writeback_cloud::CloudReaders;
use writeback_core::ManagedAttribute;
use writeback_engine::{CycleOptions, CycleSummary, Engine, EngineSettings, ObjectReport, ProvisionOutcome, Shutdown};
use writeback_state::SqliteStore;

pub type WritebackEngine = Engine<SqliteStore>;

pub async fn build(config: &Config) -> Result<WritebackEngine> {
    let ad = config.ad()?;
    let cloud = config.cloud()?;
    let scope = ad.scope.clone();
    let dir = AdDirectory::connect(ad).await.context("connecting to AD")?;
    let readers = CloudReaders::from_config(&cloud).context("setting up the cloud readers")?;
    let store = Arc::new(config.open_state()?);
    let mut settings = EngineSettings::new(&config.file.engine, config.file.brakes.clone(), scope);
    settings.scratch_dir = config.state_path().parent().map(Path::to_path_buf);
    Ok(Engine::new(dir, readers, store, settings, cloud.full_pass_interval()))
}

/// `writeback check`: every item ok/failed with what to do about it.
pub async fn check(config: &Config) -> Result<i32> {
    let mut failed = 0;
    let mut report = |ok: bool, what: String, fix: &str| {
        if ok {
            crate::out::line(format_args!("ok      {what}"));
        } else {
            failed += 1;
            crate::out::line(format_args!("failed  {what}\n        fix: {fix}"));
        }
    };
    report(true, format!("config {} parsed", config.path.display()), "");
    match config.open_state() {
        Ok(_) => report(true, format!("state store {}", config.state_path().display()), ""),
        Err(e) => report(false, format!("state store: {e:#}"), "make [state] path writable by the service account"),
    }
    match config.ad() {
        Err(e) => report(false, format!("[ad]: {e:#}"), "see packaging/writeback.toml.example"),
        Ok(ad) => {
            let scope = if ad.scope.is_empty() { vec![ad.base_dn.clone()] } else { ad.scope.clone() };
            match AdDirectory::connect(ad.clone()).await {
                Err(e) => report(false, format!("AD {}: {e}", ad.url), "check url, ca_file (the CA that signed the DC's certificate), bind_dn and the password"),
                Ok(dir) => {
                    report(true, format!("AD {}: TLS validated, bound as {}", ad.url, ad.bind_dn), "");
                    match dir.missing_schema_attributes().await {
                        Ok(missing) if missing.is_empty() => report(true, format!("AD schema has all {} managed attributes", ManagedAttribute::ALL.len()), ""),
                        Ok(missing) => report(false, format!("AD schema lacks {}", missing.join(", ")), "extend the schema with Exchange's (Setup /PrepareSchema) before writing back"),
                        Err(e) => report(false, format!("reading the schema: {e}"), "the account needs read access to the schema container"),
                    }
                    for base in &scope {
                        match dir.sample_writable_attributes(base).await {
                            Ok(Some((dn, allowed))) => {
                                let missing: Vec<&str> = ManagedAttribute::ALL
                                    .iter()
                                    .map(|a| a.ldap_name())
                                    .filter(|n| !allowed.iter().any(|a| a.eq_ignore_ascii_case(n)))
                                    .collect();
                                if missing.is_empty() {
                                    report(true, format!("may write every managed attribute (checked on {dn})"), "");
                                } else {
                                    report(false, format!("may not write {} (checked on {dn})", missing.join(", ")), "grant the service account Write Property on exactly these attributes of user objects in scope");
                                }
                            }
                            Ok(None) => report(false, format!("no user under {base}"), "check [ad] scope"),
                            Err(e) => report(false, format!("reading {base}: {e}"), "check [ad] scope and read permissions"),
                        }
                    }
                }
            }
        }
    }
    match config.cloud() {
        Err(e) => report(false, format!("[cloud]: {e:#}"), "see packaging/writeback.toml.example"),
        Ok(cloud) => match CloudReaders::from_config(&cloud) {
            Err(e) => report(false, format!("cloud credentials: {e}"), "check client_secret_file or certificate_file/private_key_file"),
            Ok(readers) => {
                let endpoints = cloud.endpoints();
                for (name, resource) in [("Graph", &endpoints.graph), ("Exchange Online", &endpoints.exchange)] {
                    match readers.tokens.token(resource).await {
                        Ok(_) => report(true, format!("token for {name} ({resource}/.default)"), ""),
                        Err(e) => report(false, format!("token for {name}: {e}"), "check tenant_id, client_id and the app's credential and API permissions (User.Read.All; Exchange.ManageAsApp + an Exchange role)"),
                    }
                }
                match readers.exchange.lookup("writeback-connectivity-check@invalid").await {
                    Ok(_) => report(true, "Exchange Online admin API answers Get-Mailbox".into(), ""),
                    Err(e) => report(false, format!("Exchange Online admin API: {e}"), "the app needs Exchange.ManageAsApp and an Exchange administrator role"),
                }
            }
        },
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn print_change_lines(object: &ObjectReport) {
    let dn = object.dn.as_deref().unwrap_or("-");
    match (&object.error, object.changes.is_empty()) {
        (Some(error), _) => crate::out::line(format_args!("{} {}  {}: {error}", object.status, object.cloud_id, dn)),
        (None, false) => {
            crate::out::line(format_args!("{} {}  {}", object.status, object.cloud_id, dn));
            for m in &object.changes {
                crate::out::line(format_args!("    {:<7} {}: {:?}", m.op.as_str(), m.attribute.ldap_name(), m.values));
            }
        }
        (None, true) => {}
    }
}

fn print_summary(summary: &CycleSummary) {
    eprintln!(
        "{} pass: {} mailboxes, {} in sync, {} to change, {} applied, {} failed, {} skipped, {} invalid, {} quarantined, {} conflicts, {} values cleared, {} drift ({} ms)",
        summary.pass, summary.mailboxes, summary.in_sync, summary.planned, summary.applied, summary.failed,
        summary.skipped, summary.invalid + summary.unreadable, summary.quarantined, summary.conflicts,
        summary.values_cleared, summary.drift, summary.duration_ms
    );
    if let Some(held) = &summary.held {
        eprintln!("HELD by a safety brake: {}\n  nothing was written; review `writeback show-plan {}`, then `writeback approve {}`", held.reason, held.plan_id, held.plan_id);
    }
}

/// `writeback plan`: reads everything, writes nothing. The JSON document (`{"objects": [...],
/// "summary": {...}}`) is streamed out as the objects are planned, so a plan of any size
/// costs no memory.
pub async fn plan(config: &Config, json: bool, out: Option<&Path>, all: bool) -> Result<i32> {
    let engine = build(config).await?;
    let mut document = PlanDocument::open(json, out)?;
    let mut write_error: Option<std::io::Error> = None;
    let mut sink = |o: &ObjectReport| {
        let interesting = all || !o.changes.is_empty() || o.error.is_some();
        if !interesting {
            return;
        }
        if document.is_open() {
            if let Err(e) = document.object(o) {
                write_error.get_or_insert(e);
            }
        } else {
            print_change_lines(o);
        }
    };
    let options = CycleOptions { full: true, dry_run: true, ..CycleOptions::default() };
    let summary = engine.run_cycle(&options, &mut sink, &Shutdown::default()).await?;
    if let Some(e) = write_error {
        return Err(e).context("writing the plan");
    }
    document.finish(&summary)?;
    if let Some(path) = out {
        eprintln!("plan saved to {} ({} objects to change); apply it with `writeback apply {}`", path.display(), summary.planned, path.display());
    }
    if !json {
        print_summary(&summary);
    }
    Ok(0)
}

/// Where `writeback plan` streams its JSON document: stdout (`--json`), a file (`--out`),
/// both, or nowhere.
struct PlanDocument {
    targets: Vec<Box<dyn Write + Send>>,
    objects: u64,
}

impl PlanDocument {
    fn open(json: bool, out: Option<&Path>) -> Result<Self> {
        let mut targets: Vec<Box<dyn Write + Send>> = Vec::new();
        if let Some(path) = out {
            let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            targets.push(Box::new(std::io::BufWriter::new(file)));
        }
        if json {
            targets.push(Box::new(std::io::BufWriter::new(std::io::stdout())));
        }
        let mut document = PlanDocument { targets, objects: 0 };
        document.write_all(b"{\"objects\":[")?;
        Ok(document)
    }

    fn is_open(&self) -> bool {
        !self.targets.is_empty()
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.targets.iter_mut().try_for_each(|t| t.write_all(bytes))
    }

    fn object(&mut self, object: &ObjectReport) -> std::io::Result<()> {
        let text = serde_json::to_vec(object)?;
        if self.objects > 0 {
            self.write_all(b",\n")?;
        } else {
            self.write_all(b"\n")?;
        }
        self.objects += 1;
        self.write_all(&text)
    }

    fn finish(mut self, summary: &CycleSummary) -> Result<()> {
        let summary = serde_json::to_vec(summary)?;
        self.write_all(b"\n],\"summary\":")?;
        self.write_all(&summary)?;
        self.write_all(b"}\n")?;
        for target in &mut self.targets {
            target.flush()?;
        }
        Ok(())
    }
}

/// `writeback apply FILE`: applies a saved plan, refusing objects changed since.
pub async fn apply(config: &Config, file: &Path, json: bool) -> Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    #[derive(serde::Deserialize)]
    struct SavedPlan {
        objects: Vec<ObjectReport>,
    }
    let saved: SavedPlan = serde_json::from_str(&text).with_context(|| format!("{} is not a plan saved by `writeback plan --out`", file.display()))?;
    let engine = build(config).await?;
    let mut sink = |o: &ObjectReport| {
        if json {
            crate::out::line(format_args!("{}", serde_json::to_string(o).unwrap_or_default()));
        } else {
            print_change_lines(o);
        }
    };
    let summary = engine.apply_saved(&saved.objects, &mut sink).await?;
    print_summary(&summary);
    Ok(if summary.failed > 0 { 2 } else { 0 })
}

/// `writeback sync --once`: one cycle, a progress bar on a terminal, a summary.
pub async fn sync_once(config: &Config, full: bool, json: bool) -> Result<i32> {
    let engine = build(config).await?;
    let progress = progress_bar();
    let mut sink = |o: &ObjectReport| {
        if let Some(bar) = &progress {
            bar.inc(1);
            bar.set_message(o.status.clone());
        }
        // Outcomes only: the plan itself is what `writeback plan` is for.
        let outcome = o.status != "planned" && o.status != "in_sync";
        if json && outcome {
            crate::out::line(format_args!("{}", serde_json::to_string(o).unwrap_or_default()));
        } else if progress.is_none() && outcome {
            print_change_lines(o);
        }
    };
    let shutdown = Shutdown::default();
    spawn_signal_handler(shutdown.clone());
    let summary = engine.run_cycle(&CycleOptions { full, ..CycleOptions::default() }, &mut sink, &shutdown).await?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    print_summary(&summary);
    Ok(exit_code(&summary))
}

fn exit_code(summary: &CycleSummary) -> i32 {
    if summary.held.is_some() {
        3
    } else if summary.failed + summary.invalid + summary.unreadable + summary.skipped > 0 {
        2
    } else {
        0
    }
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {pos} mailboxes  {msg}  [{elapsed}]").ok()?);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn spawn_signal_handler(shutdown: Shutdown) {
    // The handlers are installed here, before the task is spawned: installed inside it, a
    // SIGTERM that came before the task first ran would have killed the process with the
    // default action instead of letting it finish the writes in flight.
    #[cfg(unix)]
    let (terminate, interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let received = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => stream.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = received(terminate) => {}
                _ = received(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        tracing::warn!("stop requested: finishing the writes in flight, then exiting");
        shutdown.trigger();
    });
}

/// The Prometheus scrape endpoint on `listen`, fed by the engine's and the cloud readers'
/// metrics and the AD writer's. Durations are histograms (with buckets, so they add up across agents).
fn serve_metrics(listen: std::net::SocketAddr) -> Result<()> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    const CYCLE_BUCKETS: [f64; 13] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];
    const MODIFY_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Full("writeback_cycle_duration_seconds".into()), &CYCLE_BUCKETS)
        .and_then(|builder| builder.set_buckets_for_metric(Matcher::Full("writeback_ad_modify_duration_seconds".into()), &MODIFY_BUCKETS))
        .and_then(|builder| builder.install())
        .with_context(|| format!("[metrics] listen = \"{listen}\": cannot serve metrics"))?;
    writeback_engine::describe_metrics();
    writeback_cloud::http::describe_metrics();
    writeback_ad::describe_metrics();
    tracing::info!(%listen, "serving metrics");
    Ok(())
}

/// `writeback run`: the continuous service.
pub async fn run(config: &Config) -> Result<i32> {
    if let Some(listen) = config.file.metrics.listen {
        serve_metrics(listen)?;
    }
    let engine = build(config).await?;
    let shutdown = Shutdown::default();
    spawn_signal_handler(shutdown.clone());
    let interval = engine.settings().poll_interval;
    tracing::info!(poll_interval_secs = interval.as_secs(), "writeback running");
    let mut consecutive_errors = 0u32;
    let mut held = false;
    while !shutdown.is_triggered() {
        let mut sink = |o: &ObjectReport| {
            if o.status != "in_sync" && o.status != "planned" {
                tracing::info!(cloud_id = %o.cloud_id, dn = o.dn.as_deref().unwrap_or("-"), status = %o.status, changes = o.changes.len(), error = o.error.as_deref().unwrap_or(""), "mailbox");
            }
        };
        match engine.run_cycle(&CycleOptions::polling(), &mut sink, &shutdown).await {
            Ok(summary) => {
                consecutive_errors = 0;
                // While a plan waits for an operator, re-planning every few seconds only
                // repeats the same answer: look again once a minute.
                held = summary.held.is_some();
                if summary.planned + summary.failed + summary.skipped + summary.invalid > 0 || summary.held.is_some() {
                    tracing::info!(summary = %serde_json::to_string(&summary).unwrap_or_default(), "cycle");
                }
            }
            Err(e) => {
                consecutive_errors = consecutive_errors.saturating_add(1);
                tracing::error!(error = %e, consecutive_errors, "cycle failed; retrying after a pause");
            }
        }
        // Back off on repeated failures (up to 5 minutes), poll at the interval otherwise.
        let mut pause = interval.saturating_mul(1u32 << consecutive_errors.min(6)).min(std::time::Duration::from_secs(300));
        if held {
            pause = pause.max(std::time::Duration::from_secs(60));
        }
        let deadline = tokio::time::Instant::now() + pause;
        while !shutdown.is_triggered() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    tracing::info!("writeback stopped cleanly");
    Ok(0)
}

/// `writeback provision <mailbox>`: one mailbox, each step printed.
pub async fn provision(config: &Config, identity: &str, dry_run: bool) -> Result<i32> {
    let engine = build(config).await?;
    let mut step = |name: &str, text: String| crate::out::line(format_args!("{name:<8}{text}"));
    let outcome = engine.provision(identity, dry_run, &mut step).await?;
    Ok(match outcome {
        ProvisionOutcome::Written | ProvisionOutcome::AlreadyInSync | ProvisionOutcome::Planned => 0,
        ProvisionOutcome::NotFound | ProvisionOutcome::Skipped | ProvisionOutcome::Failed => 2,
    })
}
