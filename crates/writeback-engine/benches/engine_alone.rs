//! Engine cost alone (issue 5, figure 4): the snapshot planner and the SQLite state store on N
//! synthetic mailboxes, with no network at all.
//!
//! `cargo bench -p writeback-engine --bench engine_alone` (N from `ENGINE_ALONE_N`, default
//! 1,000,000). Phases, each timed on its own:
//! - **load**: N AD users → `snapshot_row` → `ScopeSnapshot::insert` per 1000 → `finish_loading`;
//! - **plan, first pass**: pages of 1000 mailboxes through `SnapshotPlanner::assess` (first
//!   matches, so every join is recorded), a `StagedWrite` and a report per planned mailbox and
//!   `stage_writes` per page, as `cycle.rs` does;
//! - **apply bookkeeping**: `apply.rs` minus the LDAP modify: per batch of 500,
//!   `staged_writes` → `record_intents` → `record_outcomes(Applied)` → `clear_failures`; then
//!   `clear_staged` and the cycle's `finish_cycle`/`purge_before`;
//! - **plan, steady state**: a second pass over a snapshot holding the values after the writes
//!   (each plan run through writeback-core's modify simulator): all in sync, joins known.
//!
//! Building the synthetic users and mailboxes is not engine work (in production they arrive
//! from LDAP and Exchange pages, already parsed): it happens outside the timed sections, and
//! its cost is printed separately. CPU time per section comes from `/proc/thread-self/schedstat`
//! (nanoseconds; the bench is single-threaded, which is checked); process totals from
//! `/proc/self/stat` are printed beside it as a cross-check.

use std::error::Error;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use writeback_ad::{ids, AdUser};
use writeback_cloud::anchor_key;
use writeback_core::{plan, AdValues, Anchors, Mailbox, ManagedAttribute as A, Modification, PlanPolicy};
use writeback_engine::report::{values_cleared, ObjectReport};
use writeback_engine::scope_snapshot::snapshot_row;
use writeback_engine::{Assessment, Resolution, SnapshotPlanner};
use writeback_state::{
    JournalId, Outcome, ScopeSnapshot, SnapshotRow, SqliteStore, StagedWrite, StateStore, WriteIntent,
};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_N: u64 = 1_000_000;
/// An Exchange page, and the engine's snapshot batch.
const PAGE: u64 = 1000;
/// `apply.rs`'s batch.
const APPLY_BATCH: u32 = 500;
const SCOPE: &str = "OU=Bench,DC=bench,DC=test";
/// The attributes every first-pass plan must touch (the scale benchmark's change).
const CHANGED: [A; 5] = [
    A::ExtensionAttribute2,
    A::ExtensionAttribute3,
    A::ExtensionAttribute4,
    A::ProxyAddresses,
    A::MsExchHideFromAddressLists,
];

fn main() -> BenchResult<()> {
    let n: u64 = match std::env::var("ENGINE_ALONE_N") {
        Ok(text) => text.trim().parse()?,
        Err(_) => DEFAULT_N,
    };
    if n == 0 {
        return Err("ENGINE_ALONE_N must be at least 1".into());
    }
    // ENGINE_ALONE_DIR: where the temp dir goes (default: the system's); ENGINE_ALONE_KEEP:
    // leave the files behind to inspect them.
    let dir = match std::env::var_os("ENGINE_ALONE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let store = SqliteStore::open(dir.path().join("state.db"))?;
    let policy = PlanPolicy::default();
    let scope = vec![SCOPE.to_owned()];
    let now = now_ms();
    let mut report = Report::default();
    println!("engine alone: N = {n} synthetic mailboxes, state and snapshot in {}", dir.path().display());

    // Graph's anchors, as the engine's refresh writes them: one users/delta page per transaction.
    let mut generation = Sample::default();
    let mut anchors_phase = Sample::default();
    for start in (0..n).step_by(page_len()) {
        let (upserts, took) = generate(|| (start..end(start, n)).map(graph_anchors).collect::<Vec<_>>())?;
        generation += took;
        let cursor = format!("{{\"next\":{start}}}");
        anchors_phase +=
            timed(|| Ok(store.apply_anchor_page(&upserts, &[], Some(("graph.delta_cursor", &cursor)), now)?))?.1;
    }
    assert_eq!(store.anchor_count()?, n);
    report.row("anchors (users/delta pages)", n, anchors_phase);

    // Load: the paged scope search's results into the snapshot.
    let snapshot = ScopeSnapshot::create(&dir.path().join("scope-1.snapshot"))?;
    let (load, took) = load_snapshot(&snapshot, n, |i| Ok(user(i)))?;
    generation += took;
    assert_eq!(snapshot.len()?, n);
    report.row("load", n, load);
    let first_snapshot_bytes = file_size(snapshot.path());

    // Plan, first pass.
    let cycle = store.begin_cycle(now)?;
    store.clear_stale_stages(Some(cycle))?;
    let planner = SnapshotPlanner { store: &store, snapshot: &snapshot, scope: &scope, policy: &policy };
    let mut first = PassCounts::default();
    let mut plan_phase = Sample::default();
    for start in (0..n).step_by(page_len()) {
        let (page, took) = generate(|| (start..end(start, n)).map(mailbox).collect::<Vec<_>>())?;
        generation += took;
        plan_phase += timed(|| plan_page(&planner, &store, Some(cycle), page, now, &mut first))?.1;
    }
    assert_eq!((first.planned, first.in_sync), (n, 0), "every mailbox differs on the first pass");
    assert_eq!(first.expected_changes, n, "every plan touches exactly the changed attributes");
    assert_eq!(store.join_count()?, n, "every first match recorded its join");
    assert_eq!(store.staged_count(cycle)?, n);
    report.row("plan, first pass", n, plan_phase);
    drop(snapshot);

    // Apply bookkeeping.
    let (applied, apply_phase) = timed(|| apply_bookkeeping(&store, cycle, now))?;
    assert_eq!(applied, n, "every staged write journalled and recorded as applied");
    assert!(store.in_flight()?.is_empty(), "nothing left in flight");
    assert_eq!(store.staged_count(cycle)?, 0);
    for i in [0, n / 2, n - 1] {
        let written: Vec<A> = store.last_written(&cloud_id(i))?.iter().map(|w| w.attribute).collect();
        assert_eq!(sorted(written), sorted(CHANGED.to_vec()), "last written values of mailbox {i}");
    }
    report.row("apply bookkeeping", n, apply_phase);

    // Plan, steady state, against the directory as the writes left it.
    let snapshot = ScopeSnapshot::create(&dir.path().join("scope-2.snapshot"))?;
    let (reload, took) = load_snapshot(&snapshot, n, |i| user_after_writes(i, &policy))?;
    generation += took;
    report.row("load (after the writes)", n, reload);
    let cycle = store.begin_cycle(now)?;
    let planner = SnapshotPlanner { store: &store, snapshot: &snapshot, scope: &scope, policy: &policy };
    let mut steady = PassCounts::default();
    let mut steady_phase = Sample::default();
    for start in (0..n).step_by(page_len()) {
        let (page, took) = generate(|| (start..end(start, n)).map(mailbox).collect::<Vec<_>>())?;
        generation += took;
        steady_phase += timed(|| plan_page(&planner, &store, Some(cycle), page, now, &mut steady))?.1;
    }
    assert_eq!((steady.planned, steady.in_sync), (0, n), "everything in sync after the writes");
    assert_eq!(store.staged_count(cycle)?, 0);
    report.row("plan, steady state", n, steady_phase);

    let mut headline = plan_phase;
    headline += apply_phase;
    report.separator();
    report.row("planning + state bookkeeping", n, headline);
    report.print();

    println!();
    println!(
        "synthetic data generation (outside the timed sections): wall {:.2} s, CPU {:.2} s",
        generation.wall_s(),
        generation.cpu_s()
    );
    let status = std::fs::read_to_string("/proc/self/status")?;
    println!(
        "process totals (/proc/self/stat): CPU {:.2} s; threads: {}",
        process_cpu_seconds()?,
        status_field(&status, "Threads:").unwrap_or("?")
    );
    println!("peak RSS (VmHWM): {}", status_field(&status, "VmHWM:").unwrap_or("?"));
    let state_bytes = file_size(store.path()) + file_size(&store.path().with_extension("db-wal"));
    println!(
        "state store: {:.1} MiB (with its WAL); scope snapshot: {:.1} MiB (first pass), {:.1} MiB (steady state)",
        mib(state_bytes),
        mib(first_snapshot_bytes),
        mib(file_size(snapshot.path()))
    );
    let per_core = headline.per_cpu_second(n);
    let verdict = if per_core >= 50_000.0 { "met" } else { "MISSED" };
    println!("target ≥ 50,000 mailboxes/s per core through planning and state bookkeeping: {per_core:.0}/s, {verdict}");
    if std::env::var_os("ENGINE_ALONE_KEEP").is_some() {
        drop(snapshot);
        println!("kept: {}", dir.keep().display());
    }
    Ok(())
}

/// Loads users `0..n` (from `make`) into `snapshot` in batches of 1000 as `load_snapshot` does;
/// returns the timed engine work and the generation time.
fn load_snapshot(
    snapshot: &ScopeSnapshot,
    n: u64,
    make: impl Fn(u64) -> BenchResult<AdUser>,
) -> BenchResult<(Sample, Sample)> {
    let mut work = Sample::default();
    let mut generation = Sample::default();
    for start in (0..n).step_by(page_len()) {
        let (users, took) = generate(|| (start..end(start, n)).map(&make).collect::<BenchResult<Vec<_>>>())?;
        generation += took;
        let users = users?;
        work += timed(|| {
            let rows = users.iter().map(snapshot_row).collect::<Result<Vec<SnapshotRow>, _>>()?;
            snapshot.insert(&rows)?;
            Ok(())
        })?
        .1;
    }
    work += timed(|| Ok(snapshot.finish_loading()?))?.1;
    Ok((work, generation))
}

#[derive(Default)]
struct PassCounts {
    planned: u64,
    in_sync: u64,
    values_cleared: u64,
    expected_changes: u64,
}

/// One Exchange page through the snapshot planner, with what `cycle.rs`'s `plan_page` does
/// with each assessment: the report, the staged write, the cleared failures.
fn plan_page(
    planner: &SnapshotPlanner<'_, SqliteStore>,
    store: &SqliteStore,
    cycle: Option<writeback_state::CycleId>,
    page: Vec<Mailbox>,
    now: i64,
    counts: &mut PassCounts,
) -> BenchResult<()> {
    let mut staged = Vec::with_capacity(page.len());
    let mut cleared: Vec<String> = Vec::new();
    for (mailbox, resolution) in planner.assess_page(page, now)? {
        let (assessment, had_failure) = match resolution {
            Resolution::Decided { assessment, had_failure } => (assessment, had_failure),
            Resolution::Live => return Err(format!("mailbox {} needed a live lookup", mailbox.cloud_id).into()),
        };
        let mut report = ObjectReport { cloud_id: mailbox.cloud_id.clone(), ..ObjectReport::default() };
        match assessment {
            Assessment::Planned { user, mods } => {
                counts.planned += 1;
                counts.values_cleared += values_cleared(&mods);
                if touches_exactly(&mods, &CHANGED) {
                    counts.expected_changes += 1;
                }
                report.dn = Some(user.dn.clone());
                report.object_guid = Some(user.guid_string());
                report.usn_changed = Some(user.usn_changed);
                report.changes = mods.clone();
                report.status = "planned".into();
                staged.push(writeback_engine::staged_write(mailbox, *user, mods));
            }
            Assessment::InSync { user } => {
                counts.in_sync += 1;
                report.dn = Some(user.dn.clone());
                if had_failure {
                    cleared.push(mailbox.cloud_id.clone());
                }
            }
            other => return Err(format!("mailbox {}: unexpected {other:?}", mailbox.cloud_id).into()),
        }
        black_box(&report);
    }
    if let (Some(cycle), false) = (cycle, staged.is_empty()) {
        store.stage_writes(cycle, &staged)?;
    }
    let cleared: Vec<&str> = cleared.iter().map(String::as_str).collect();
    store.clear_failures(&cleared)?;
    Ok(())
}

/// `apply.rs`'s `apply_stage` with every LDAP modify succeeding at once. Returns writes applied.
fn apply_bookkeeping(store: &SqliteStore, cycle: writeback_state::CycleId, now: i64) -> BenchResult<u64> {
    let mut after = 0u64;
    let mut applied = 0u64;
    loop {
        let page = store.staged_writes(cycle, after, APPLY_BATCH)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let writes: Vec<StagedWrite> = page.into_iter().map(|(_, w)| w).collect();
        let intents: Vec<WriteIntent<'_>> = writes
            .iter()
            .map(|w| WriteIntent {
                cycle,
                cloud_id: &w.cloud_id,
                object_guid: w.object_guid,
                dn: &w.dn,
                mods: &w.mods,
                before: &w.before,
            })
            .collect();
        let journal_ids: Vec<JournalId> = store.record_intents(&intents, now)?;
        drop(intents);
        // What `apply_one` hands back for a modify the DC accepted.
        let finals: Vec<(JournalId, Outcome, Vec<Modification>, StagedWrite)> =
            journal_ids.into_iter().zip(writes).map(|(id, w)| (id, Outcome::Applied, w.mods.clone(), w)).collect();
        let outcomes: Vec<(JournalId, Outcome)> =
            finals.iter().map(|(id, outcome, _, _)| (*id, outcome.clone())).collect();
        store.record_outcomes(&outcomes, now)?;
        let mut succeeded: Vec<String> = Vec::with_capacity(finals.len());
        for (_, _, mods, write) in finals {
            let report = ObjectReport {
                cloud_id: write.cloud_id.clone(),
                dn: Some(write.dn.clone()),
                status: "applied".into(),
                changes: mods,
                ..ObjectReport::default()
            };
            black_box(&report);
            applied += 1;
            succeeded.push(write.cloud_id);
        }
        let succeeded: Vec<&str> = succeeded.iter().map(String::as_str).collect();
        store.clear_failures(&succeeded)?;
    }
    store.clear_staged(cycle)?;
    store.finish_cycle(cycle, now, &serde_json::json!({ "applied": applied }))?;
    store.purge_before(now - 90 * 86_400_000)?;
    Ok(applied)
}

fn touches_exactly(mods: &[Modification], attributes: &[A]) -> bool {
    sorted(mods.iter().map(|m| m.attribute).collect()) == sorted(attributes.to_vec())
}

fn sorted(mut attributes: Vec<A>) -> Vec<A> {
    attributes.sort();
    attributes.dedup();
    attributes
}

// --- the synthetic directory and tenant: the same numbers give the same objects on every run

/// Which identifier of user `i` a GUID is.
#[derive(Clone, Copy)]
enum GuidKind {
    Object = 0,
    Consistency = 1,
    Cloud = 2,
}

/// splitmix64: a bijection, so distinct inputs give distinct GUIDs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn guid(i: u64, kind: GuidKind) -> [u8; 16] {
    let high = mix(i.wrapping_mul(4).wrapping_add(kind as u64));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&high.to_le_bytes());
    out[8..].copy_from_slice(&mix(high).to_le_bytes());
    out
}

/// 60% of the users carry an mS-DS-ConsistencyGuid (then the immutable id is its base64).
fn has_consistency_guid(i: u64) -> bool {
    i % 5 < 3
}

fn cloud_id(i: u64) -> String {
    ids::guid_to_string(&guid(i, GuidKind::Cloud))
}

fn dn(i: u64) -> String {
    format!("CN=Bench User {i:07},{SCOPE}")
}

fn sid(i: u64) -> String {
    format!("S-1-5-21-3623811015-3361044348-30300820-{}", 1000 + i)
}

fn primary(i: u64) -> String {
    format!("user{i:07}@bench.test")
}

/// The proxy addresses both sides share; AD also has `u.old`, the cloud instead `.b1`.
fn shared_proxies(i: u64) -> Vec<String> {
    vec![
        format!("SMTP:{}", primary(i)),
        format!("smtp:user{i:07}@benchtenant.mail.onmicrosoft.com"),
        format!("smtp:u{i}.alias@bench.test"),
        format!("X500:/o=Bench/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=user{i:07}"),
        format!("SIP:{}", primary(i)),
    ]
}

fn user(i: u64) -> AdUser {
    let mut values = AdValues::new();
    values.set(A::ExtensionAttribute1, vec![format!("Dept-{:02}", i % 97)]);
    values.set(A::ExtensionAttribute2, vec![format!("old-ca2-user{i:07}")]);
    values.set(A::ExtensionAttribute3, vec![format!("old-ca3-{i}")]);
    values.set(A::ExtensionAttribute4, vec!["old-ca4".to_owned()]);
    values.set(A::ExtensionAttribute5, vec![format!("Cost-{:03}", i % 211)]);
    values.set(A::ExtensionAttribute10, vec![format!("Site-{:02}", i % 13)]);
    if i % 3 == 0 {
        values.set(A::MsExchExtensionCustomAttribute1, vec![format!("skill-{}", i % 7), "lang-en".to_owned()]);
    }
    let mut proxies = shared_proxies(i);
    proxies.insert(3, format!("smtp:u{i}.old@bench.test"));
    values.set(A::ProxyAddresses, proxies);
    values.set(A::Mail, vec![primary(i)]);
    values.set(A::MsExchRecipientTypeDetails, vec!["2147483648".to_owned()]);
    values.set(A::MsExchRecipientDisplayType, vec!["-2147483642".to_owned()]);
    match i % 4 {
        0 => values.set(A::MsExchHideFromAddressLists, vec!["TRUE".to_owned()]),
        1 => values.set(A::MsExchHideFromAddressLists, vec!["FALSE".to_owned()]),
        _ => {}
    }
    AdUser {
        dn: dn(i),
        object_guid: guid(i, GuidKind::Object),
        object_sid: Some(sid(i)),
        consistency_guid: has_consistency_guid(i).then(|| guid(i, GuidKind::Consistency).to_vec()),
        sam_account_name: Some(format!("bench{i:07}")),
        object_classes: ["top", "person", "organizationalPerson", "user"].map(str::to_owned).to_vec(),
        admin_count: false,
        critical_system_object: false,
        usn_changed: 20_000 + i,
        usn_created: 10_000 + i,
        values,
    }
}

/// User `i` as the DC holds it once the first pass's write for it went through.
fn user_after_writes(i: u64, policy: &PlanPolicy) -> BenchResult<AdUser> {
    let mut user = user(i);
    let mods = plan(&mailbox(i), &user.values, policy)?;
    user.values = user.values.apply(&mods)?;
    user.usn_changed += 1_000_000_000;
    Ok(user)
}

/// The Exchange record of user `i`'s mailbox: three custom attributes, one address added and
/// one removed, and the hidden flag differ from AD. Anchors come from Graph (the store).
fn mailbox(i: u64) -> Mailbox {
    let mut proxy_addresses = shared_proxies(i);
    proxy_addresses.push(format!("smtp:user{i:07}.b1@bench.test"));
    let mut custom_attributes = std::collections::BTreeMap::new();
    custom_attributes.insert("1".to_owned(), format!("Dept-{:02}", i % 97));
    custom_attributes.insert("2".to_owned(), format!("b1-ca2-user{i:07}"));
    custom_attributes.insert("3".to_owned(), format!("b1-ca3-{}", i + 1));
    custom_attributes.insert("4".to_owned(), "b1-ca4".to_owned());
    custom_attributes.insert("5".to_owned(), format!("Cost-{:03}", i % 211));
    custom_attributes.insert("10".to_owned(), format!("Site-{:02}", i % 13));
    let mut extension_custom_attributes = std::collections::BTreeMap::new();
    if i % 3 == 0 {
        extension_custom_attributes.insert("1".to_owned(), vec![format!("skill-{}", i % 7), "lang-en".to_owned()]);
    }
    Mailbox {
        cloud_id: cloud_id(i),
        primary_smtp: Some(primary(i)),
        proxy_addresses,
        custom_attributes,
        extension_custom_attributes,
        hidden_from_address_lists: Some(i % 4 != 0),
        recipient_type_details: Some("UserMailbox".to_owned()),
        anchors: Anchors::default(),
        when_changed_utc: Some("2025-11-27T12:00:00.0000000Z".to_owned()),
    }
}

/// What Graph's users/delta says about user `i`.
fn graph_anchors(i: u64) -> (String, Anchors) {
    let immutable = if has_consistency_guid(i) { guid(i, GuidKind::Consistency) } else { guid(i, GuidKind::Object) };
    let anchors =
        Anchors { immutable_id: Some(ids::bytes_to_immutable_id(&immutable)), sid: Some(sid(i)), dn: Some(dn(i)) };
    (anchor_key(&cloud_id(i)), anchors)
}

// --- measuring

/// Wall and CPU time of some work.
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu_ns: u64,
}

impl std::ops::AddAssign for Sample {
    fn add_assign(&mut self, other: Sample) {
        self.wall += other.wall;
        self.cpu_ns += other.cpu_ns;
    }
}

impl Sample {
    fn wall_s(self) -> f64 {
        self.wall.as_secs_f64()
    }
    fn cpu_s(self) -> f64 {
        self.cpu_ns as f64 / 1e9
    }
    fn per_cpu_second(self, n: u64) -> f64 {
        n as f64 / self.cpu_s().max(1e-9)
    }
}

fn timed<T>(work: impl FnOnce() -> BenchResult<T>) -> BenchResult<(T, Sample)> {
    let (cpu0, wall0) = (thread_cpu_ns()?, Instant::now());
    let value = work()?;
    let sample = Sample { wall: wall0.elapsed(), cpu_ns: thread_cpu_ns()?.saturating_sub(cpu0) };
    Ok((value, sample))
}

fn generate<T>(work: impl FnOnce() -> T) -> BenchResult<(T, Sample)> {
    timed(|| Ok(work()))
}

/// This thread's time on a CPU (user + system), in nanoseconds: the first field of schedstat.
fn thread_cpu_ns() -> BenchResult<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    Ok(text.split_whitespace().next().ok_or("empty schedstat")?.parse()?)
}

/// The process's user + system CPU seconds (fields 14 and 15 of /proc/self/stat, in clock
/// ticks; USER_HZ is 100 on every Linux architecture this runs on).
fn process_cpu_seconds() -> BenchResult<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may contain spaces; the fields after it start past the ')'.
    let rest = stat.rsplit_once(')').ok_or("unreadable /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> BenchResult<u64> { Ok(fields.get(i).ok_or("short /proc/self/stat")?.parse()?) };
    // Field 3 (state) is index 0 here, so utime (14) and stime (15) are 11 and 12.
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn page_len() -> usize {
    PAGE as usize
}

fn end(start: u64, n: u64) -> u64 {
    (start + PAGE).min(n)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn row(&mut self, phase: &str, n: u64, sample: Sample) {
        self.lines.push(format!(
            "{phase:<30} {n:>10} {:>9.2} {:>9.2} {:>14.0} {:>14.0}",
            sample.wall_s(),
            sample.cpu_s(),
            n as f64 / sample.wall_s().max(1e-9),
            sample.per_cpu_second(n)
        ));
    }

    fn separator(&mut self) {
        self.lines.push("-".repeat(91));
    }

    fn print(&self) {
        println!();
        println!(
            "{:<30} {:>10} {:>9} {:>9} {:>14} {:>14}",
            "phase", "mailboxes", "wall s", "CPU s", "mailboxes/s", "per CPU-s"
        );
        println!("{}", "-".repeat(91));
        for line in &self.lines {
            println!("{line}");
        }
    }
}
