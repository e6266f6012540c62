//! The operator commands (`init`, `status`, `errors`, `audit`, `approve`, `discard`,
//! `show-plan`, `release`), run as the real binary against a real SQLite state file that the
//! test fills through the state store, the way the engine would.
// Test helpers outside #[test] functions may fail loudly: that is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;
use writeback_core::{AdValues, ManagedAttribute, Modification};
use writeback_state::{
    CycleId, Join, MatchedBy, Outcome, PlanId, PlanStatus, RetryPolicy, SqliteStore, StateStore,
    WriteIntent,
};

const TEMPLATE: &str = include_str!("../../../packaging/writeback.toml.example");

/// 2023-11-14T22:13:20Z and one day later: the times of the recorded writes.
const DAY_ONE: i64 = 1_700_000_000_000;
const DAY_TWO: i64 = DAY_ONE + 86_400_000;
const DN_ANNA: &str = "CN=Anna,OU=Sales,DC=example,DC=com";
const DN_BEN: &str = "CN=Doe\\, Ben \"B\",OU=R&D,DC=example,DC=com";

fn writeback(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writeback"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("WRITEBACK_LOG")
        .output()
        .expect("run writeback")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Runs the command, expects the exit code, returns stdout.
fn expect(config: &Path, args: &[&str], code: i32) -> String {
    let output = writeback(config, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "writeback {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn expect_json(config: &Path, args: &[&str], code: i32) -> Value {
    let text = expect(config, args, code);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A config folder holding only `[state] path = "state.db"`, and the store it names.
struct Fixture {
    _dir: TempDir,
    config: PathBuf,
    store: SqliteStore,
}

impl Fixture {
    fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("writeback.toml");
        std::fs::write(&config, "[state]\npath = \"state.db\"\n").unwrap();
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        Fixture {
            _dir: dir,
            config,
            store,
        }
    }

    /// What a few cycles leave behind: watermarks, joins, applied and failed writes (and so
    /// audit rows), one write still in flight, a waiting and a quarantined mailbox, and a
    /// held plan.
    fn populated() -> (Fixture, PlanId) {
        let f = Fixture::empty();
        let s = &f.store;
        s.set_watermarks(
            &[
                ("exchange.when_changed", "2023-11-14T22:00:00.0000000Z"),
                ("exchange.last_full_pass", &DAY_ONE.to_string()),
            ],
            DAY_ONE,
        )
        .unwrap();
        for (n, (cloud_id, dn)) in [("m-anna", DN_ANNA), ("m-ben", DN_BEN)]
            .into_iter()
            .enumerate()
        {
            s.upsert_join(&Join {
                cloud_id: cloud_id.into(),
                object_guid: [u8::try_from(n).unwrap() + 1; 16],
                dn: dn.into(),
                matched_by: MatchedBy::ImmutableId,
                verified_at: DAY_ONE,
            })
            .unwrap();
        }
        let cycle = s.begin_cycle(DAY_ONE - 5_000).unwrap();
        write(
            s,
            cycle,
            "m-anna",
            DN_ANNA,
            ("old-1", "new-1"),
            DAY_ONE,
            Some(Outcome::Applied),
        );
        write(
            s,
            cycle,
            "m-ben",
            DN_BEN,
            ("old-2", "new-2"),
            DAY_TWO,
            Some(Outcome::Failed {
                code: 50,
                message: "insufficient access".into(),
            }),
        );
        write(
            s,
            cycle,
            "m-anna",
            DN_ANNA,
            ("new-1", "newer-1"),
            DAY_TWO + 1_000,
            Some(Outcome::Applied),
        );
        write(
            s,
            cycle,
            "m-ben",
            DN_BEN,
            ("old-2", "in-flight"),
            DAY_TWO + 2_000,
            None,
        );
        s.finish_cycle(
            cycle,
            DAY_TWO + 3_000,
            &json!({"pass": "full", "mailboxes": 2, "planned": 2, "applied": 1, "failed": 1}),
        )
        .unwrap();

        let policy = RetryPolicy {
            base_delay_ms: 60_000,
            max_delay_ms: 600_000,
            quarantine_after: 2,
        };
        s.record_failure("m-waiting", "no AD object matches", &policy, DAY_ONE)
            .unwrap();
        s.record_failure("m-stuck", "ambiguous: 2 objects", &policy, DAY_ONE)
            .unwrap();
        s.record_failure("m-stuck", "ambiguous: 2 objects\u{1b}[2J", &policy, DAY_TWO)
            .unwrap();

        let plan = json!({
            "summary": {"planned": 600, "values_cleared": 3},
            "objects": [{
                "cloud_id": "m-anna",
                "dn": DN_ANNA,
                "changes": [
                    {"attribute": "extensionAttribute1", "op": "delete", "values": ["newer-1"]},
                    {"attribute": "extensionAttribute1", "op": "add", "values": ["held-1"]}
                ]
            }]
        });
        let plan_id = s
            .hold_plan(
                cycle,
                "600 objects would change, more than max_objects_changed = 500",
                &plan,
                DAY_TWO,
            )
            .unwrap();
        (f, plan_id)
    }
}

/// Journals one extensionAttribute1 change and, unless `outcome` is `None`, its outcome at `at`.
fn write(
    store: &SqliteStore,
    cycle: CycleId,
    cloud_id: &str,
    dn: &str,
    (old, new): (&str, &str),
    at: i64,
    outcome: Option<Outcome>,
) {
    let attribute = ManagedAttribute::ExtensionAttribute1;
    let mods = vec![
        Modification::delete(attribute, vec![old.into()]),
        Modification::add(attribute, vec![new.into()]),
    ];
    let mut before = AdValues::new();
    before.set(attribute, vec![old.into()]);
    let guid = if cloud_id == "m-anna" {
        [1; 16]
    } else {
        [2; 16]
    };
    let intent = WriteIntent {
        cycle,
        cloud_id,
        object_guid: guid,
        dn,
        mods: &mods,
        before: &before,
    };
    let id = store.record_intent(&intent, at - 1).unwrap();
    if let Some(outcome) = outcome {
        store.record_outcome(id, &outcome, at).unwrap();
    }
}

#[test]
fn init_writes_the_template_and_keeps_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.toml");
    let path_text = path.to_str().unwrap();
    // --config names a file that does not exist: init must not try to load it.
    let absent = dir.path().join("absent.toml");
    let out = expect(&absent, &["init", path_text], 0);
    assert!(out.contains("new.toml"), "{out}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), TEMPLATE);

    std::fs::write(&path, "# mine\n").unwrap();
    let output = writeback(&absent, &["init", path_text]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

    expect(&absent, &["init", "--force", path_text], 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), TEMPLATE);
}

#[test]
fn commands_refuse_a_missing_state_store_without_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("writeback.toml");
    std::fs::write(&config, "[state]\npath = \"nowhere.db\"\n").unwrap();
    for args in [
        &["status"][..],
        &["errors"],
        &["audit"],
        &["show-plan", "1"],
        &["release", "x"],
    ] {
        let output = writeback(&config, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("no state store"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(!dir.path().join("nowhere.db").exists());
}

#[test]
fn status_of_a_fresh_store_needs_nobody() {
    let f = Fixture::empty();
    let status = expect_json(&f.config, &["status", "--json"], 0);
    assert_eq!(status["needs_operator"], false);
    assert_eq!(status["last_cycle"], Value::Null);
    assert_eq!(status["joins"], 0);
    assert_eq!(status["watermarks"][0]["value"], Value::Null);
    let text = expect(&f.config, &["status"], 0);
    assert!(text.contains("last cycle     none yet"), "{text}");
    assert!(!text.contains("needs an operator"), "{text}");
}

#[test]
fn status_reports_everything_and_exits_1_while_an_operator_is_needed() {
    let (f, plan_id) = Fixture::populated();
    let status = expect_json(&f.config, &["status", "--json"], 1);
    assert_eq!(status["needs_operator"], true);
    assert_eq!(status["watermarks"][0]["name"], "exchange.when_changed");
    assert_eq!(status["watermarks"][0]["time"], "2023-11-14T22:00:00.000Z");
    assert_eq!(
        status["watermarks"][0]["value"],
        "2023-11-14T22:00:00.0000000Z"
    );
    assert_eq!(status["watermarks"][1]["time"], "2023-11-14T22:13:20.000Z");
    let cycle = &status["last_cycle"];
    assert_eq!(cycle["started_at"], "2023-11-14T22:13:15.000Z");
    assert_eq!(cycle["finished_at"], "2023-11-15T22:13:23.000Z");
    assert_eq!(cycle["duration_ms"], 86_408_000);
    assert_eq!(cycle["summary"]["applied"], 1);
    assert_eq!(status["joins"], 2);
    let in_flight = status["in_flight"].as_array().unwrap();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(in_flight[0]["cloud_id"], "m-ben");
    assert_eq!(in_flight[0]["dn"], DN_BEN);
    assert_eq!(status["retry_queue"]["waiting"], 1);
    assert_eq!(
        status["retry_queue"]["due"], 1,
        "its backoff ran out in 2023"
    );
    let quarantined = status["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["cloud_id"], "m-stuck");
    assert_eq!(
        quarantined[0]["last_error"],
        "ambiguous: 2 objects\u{1b}[2J"
    );
    let plans = status["held_plans"].as_array().unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0]["id"], plan_id.0);
    assert_eq!(plans[0]["status"], "pending");
    assert_eq!(plans[0]["objects"], 1);
    let approve = plans[0]["approve_command"].as_str().unwrap();
    assert!(
        approve.ends_with(&format!(" approve {plan_id}")),
        "{approve}"
    );
    assert!(
        approve.contains(f.config.to_str().unwrap()),
        "the operator's --config is kept: {approve}"
    );

    let text = expect(&f.config, &["status"], 1);
    assert!(text.contains("joins          2"), "{text}");
    assert!(text.contains("in flight      1 write journalled"), "{text}");
    assert!(text.contains("quarantined    1 mailbox,"), "{text}");
    assert!(text.contains("m-stuck  2 attempts"), "{text}");
    assert!(
        text.contains("\\u{1b}[2J") && !text.contains('\u{1b}'),
        "escape sequences are defused: {text}"
    );
    assert!(text.contains(&format!("plan {plan_id} pending")), "{text}");
    assert!(text.contains("max_objects_changed = 500"), "{text}");
    assert!(text.contains(approve), "{text}");
    assert!(text.contains("needs an operator"), "{text}");

    // The quarantined mailbox released, the pending plan alone still needs an operator.
    expect(&f.config, &["release", "m-stuck"], 0);
    expect(&f.config, &["status"], 1);
    // Approved, it waits for the engine, not for an operator.
    expect(&f.config, &["approve", &plan_id.to_string()], 0);
    let status = expect_json(&f.config, &["status", "--json"], 0);
    assert_eq!(status["needs_operator"], false);
    assert_eq!(status["held_plans"][0]["status"], "approved");
    assert_eq!(status["held_plans"][0]["approve_command"], Value::Null);
}

#[test]
fn a_quarantined_mailbox_alone_makes_status_exit_1() {
    let f = Fixture::empty();
    let policy = RetryPolicy {
        quarantine_after: 1,
        ..RetryPolicy::default()
    };
    f.store
        .record_failure("m-1", "invalid proxy address", &policy, DAY_ONE)
        .unwrap();
    let status = expect_json(&f.config, &["status", "--json"], 1);
    assert_eq!(status["quarantined"][0]["cloud_id"], "m-1");
    assert_eq!(status["held_plans"], json!([]));
}

#[test]
fn errors_lists_the_queue_as_data() {
    let (f, _) = Fixture::populated();
    let errors = expect_json(&f.config, &["errors", "--json"], 0);
    assert_eq!(
        errors,
        json!([
            {
                "cloud_id": "m-stuck",
                "attempts": 2,
                "first_failed_at": "2023-11-14T22:13:20.000Z",
                "last_failed_at": "2023-11-15T22:13:20.000Z",
                "next_attempt_at": null,
                "quarantined": true,
                "last_error": "ambiguous: 2 objects\u{1b}[2J"
            },
            {
                "cloud_id": "m-waiting",
                "attempts": 1,
                "first_failed_at": "2023-11-14T22:13:20.000Z",
                "last_failed_at": "2023-11-14T22:13:20.000Z",
                "next_attempt_at": "2023-11-14T22:14:20.000Z",
                "quarantined": false,
                "last_error": "no AD object matches"
            }
        ])
    );
    let text = expect(&f.config, &["errors"], 0);
    assert!(text.starts_with("CLOUD ID"), "{text}");
    assert!(text.contains("quarantined"), "{text}");
    assert!(text.contains("due (2023-11-14T22:14:20.000Z)"), "{text}");
    assert_eq!(
        expect_json(&Fixture::empty().config, &["errors", "--json"], 0),
        json!([])
    );
}

/// Audit rows as `audit --json` prints them: (cloud id, time, outcome).
fn audit_rows(config: &Path, filters: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(filters);
    expect(config, &args, 0)
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            let text = |k: &str| row[k].as_str().unwrap().to_string();
            (text("cloud_id"), text("time"), text("outcome"))
        })
        .collect()
}

#[test]
fn audit_filters_by_time_mailbox_and_dn() {
    let (f, _) = Fixture::populated();
    let all = audit_rows(&f.config, &[]);
    assert_eq!(
        all,
        [
            (
                "m-anna".into(),
                "2023-11-14T22:13:20.000Z".into(),
                "applied".into()
            ),
            (
                "m-ben".into(),
                "2023-11-15T22:13:20.000Z".into(),
                "failed".into()
            ),
            (
                "m-anna".into(),
                "2023-11-15T22:13:21.000Z".into(),
                "applied".into()
            ),
        ],
        "the in-flight write has no audit row yet"
    );
    let times =
        |rows: Vec<(String, String, String)>| rows.into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(
        times(audit_rows(&f.config, &["--mailbox", "m-anna"])),
        ["2023-11-14T22:13:20.000Z", "2023-11-15T22:13:21.000Z"]
    );
    assert_eq!(
        times(audit_rows(&f.config, &["--dn", "ou=r&d"])),
        ["2023-11-15T22:13:20.000Z"]
    );
    assert_eq!(
        times(audit_rows(
            &f.config,
            &[
                "--since",
                "2023-11-15T00:00:00Z",
                "--until",
                "2023-11-15T22:13:21Z"
            ]
        )),
        ["2023-11-15T22:13:20.000Z"],
        "since is inclusive, until exclusive"
    );
    assert_eq!(
        times(audit_rows(
            &f.config,
            &[
                "--since",
                "2023-11-15T23:13:20+01:00",
                "--mailbox",
                "m-anna"
            ]
        )),
        ["2023-11-15T22:13:21.000Z"],
        "offsets are honoured"
    );
    assert_eq!(audit_rows(&f.config, &["--limit", "1"]).len(), 1);

    // Ages count back from now: the 2023 rows are older than a day, a fresh one is not.
    assert!(audit_rows(&f.config, &["--since", "1d"]).is_empty());
    let cycle = f.store.begin_cycle(now_ms()).unwrap();
    write(
        &f.store,
        cycle,
        "m-anna",
        DN_ANNA,
        ("newer-1", "now-1"),
        now_ms(),
        Some(Outcome::Applied),
    );
    let recent = audit_rows(&f.config, &["--since", "30m"]);
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].0, "m-anna");
    assert_eq!(audit_rows(&f.config, &["--until", "1h"]).len(), 3);

    let bad = writeback(&f.config, &["audit", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    assert!(stderr(&bad).contains("30m"), "{}", stderr(&bad));
    let both = writeback(&f.config, &["audit", "--json", "--csv"]);
    assert_eq!(both.status.code(), Some(2), "--json and --csv conflict");
}

#[test]
fn audit_json_lines_carry_values_and_errors() {
    let (f, _) = Fixture::populated();
    let text = expect(&f.config, &["audit", "--json", "--mailbox", "m-ben"], 0);
    let row: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(row["dn"], DN_BEN);
    assert_eq!(row["attribute"], "extensionAttribute1");
    assert_eq!(row["before"], json!(["old-2"]));
    assert_eq!(row["after"], json!(["new-2"]));
    assert_eq!(row["error_code"], 50);
    assert_eq!(row["error_message"], "insufficient access");
    assert_eq!(row["at_ms"], DAY_TWO);
}

/// RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "CSV ends mid-record"
    );
    records
}

#[test]
fn audit_csv_parses_back() {
    let (f, _) = Fixture::populated();
    let records = parse_csv(&expect(&f.config, &["audit", "--csv"], 0));
    let header = &records[0];
    assert_eq!(header[0], "id");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(records.len(), 4, "header and three rows");
    for record in &records {
        assert_eq!(record.len(), header.len());
    }
    let ben = &records[2];
    assert_eq!(ben[column("cloud_id")], "m-ben");
    assert_eq!(
        ben[column("dn")],
        DN_BEN,
        "commas, quotes and backslashes survive"
    );
    assert_eq!(ben[column("time")], "2023-11-15T22:13:20.000Z");
    assert_eq!(ben[column("outcome")], "failed");
    assert_eq!(ben[column("error_code")], "50");
    let before: Vec<String> = serde_json::from_str(&ben[column("before")]).unwrap();
    assert_eq!(before, ["old-2"]);
    let filtered = parse_csv(&expect(
        &f.config,
        &["audit", "--csv", "--mailbox", "m-anna", "--limit", "1"],
        0,
    ));
    assert_eq!(filtered.len(), 2);
    assert_eq!(filtered[1][column("after")], "[\"new-1\"]");
}

#[test]
fn audit_table_shows_what_changed() {
    let (f, _) = Fixture::populated();
    let text = expect(&f.config, &["audit"], 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("TIME"), "{text}");
    assert!(
        lines[1].contains("m-anna") && lines[1].ends_with("-\"old-1\" +\"new-1\""),
        "{text}"
    );
    assert!(
        lines[2].contains("failed:50") && lines[2].ends_with("(insufficient access)"),
        "{text}"
    );
    let none = expect(&f.config, &["audit", "--mailbox", "nobody"], 0);
    assert_eq!(none, "no audit rows match\n");
}

#[test]
fn show_plan_approve_and_discard_walk_a_held_plan_through_its_states() {
    let (f, plan_id) = Fixture::populated();
    let id = plan_id.to_string();
    let plan = expect_json(&f.config, &["show-plan", &id, "--json"], 0);
    assert_eq!(plan["id"], plan_id.0);
    assert_eq!(plan["status"], "pending");
    assert_eq!(plan["held_at"], "2023-11-15T22:13:20.000Z");
    assert_eq!(plan["summary"]["planned"], 600);
    assert_eq!(plan["objects"][0]["dn"], DN_ANNA);
    assert_eq!(
        plan["objects"][0]["changes"][1]["values"],
        json!(["held-1"])
    );
    let text = expect(&f.config, &["show-plan", &id], 0);
    assert!(text.contains("reason:  600 objects would change"), "{text}");
    assert!(
        text.contains("    add     extensionAttribute1 \"held-1\""),
        "{text}"
    );
    assert!(text.contains(&format!("approve {id}")), "{text}");

    let approved = expect(&f.config, &["approve", &id], 0);
    assert!(
        approved.contains("reason:  600 objects would change"),
        "the reason comes first: {approved}"
    );
    assert!(approved.contains("planned=600"), "{approved}");
    assert!(
        approved.contains(&format!("approved plan {id}")),
        "{approved}"
    );
    assert_eq!(
        f.store.held_plan(plan_id).unwrap().unwrap().status,
        PlanStatus::Approved
    );

    let again = writeback(&f.config, &["approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("is approved"), "{}", stderr(&again));

    expect(&f.config, &["discard", &id], 0);
    let plan = f.store.held_plan(plan_id).unwrap().unwrap();
    assert_eq!(plan.status, PlanStatus::Discarded);
    assert!(plan.decided_at.is_some());
    let again = writeback(&f.config, &["discard", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("is discarded"),
        "{}",
        stderr(&again)
    );

    let missing = writeback(&f.config, &["show-plan", "999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no held plan 999"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        writeback(&f.config, &["approve", "999"]).status.code(),
        Some(1)
    );
}

#[test]
fn discarding_a_pending_plan_needs_no_approval_first() {
    let (f, plan_id) = Fixture::populated();
    expect(&f.config, &["discard", &plan_id.to_string()], 0);
    assert_eq!(
        f.store.held_plan(plan_id).unwrap().unwrap().status,
        PlanStatus::Discarded
    );
    let status = expect_json(&f.config, &["status", "--json"], 1);
    assert_eq!(status["held_plans"], json!([]), "decided plans are history");
}

#[test]
fn release_makes_a_quarantined_mailbox_due_now() {
    let (f, _) = Fixture::populated();
    let before_release = now_ms();
    let out = expect(&f.config, &["release", "m-stuck"], 0);
    assert!(out.contains("released m-stuck"), "{out}");
    let failure = f.store.failure("m-stuck").unwrap().unwrap();
    assert!(!failure.quarantined);
    assert_eq!(failure.attempts, 0);
    let next = failure.next_attempt_at.unwrap();
    assert!(
        next >= before_release && next <= now_ms(),
        "due now: {next}"
    );
    assert!(f
        .store
        .due_retries(now_ms())
        .unwrap()
        .contains(&"m-stuck".to_string()));

    let waiting = writeback(&f.config, &["release", "m-waiting"]);
    assert_eq!(waiting.status.code(), Some(1));
    assert!(
        stderr(&waiting).contains("not quarantined"),
        "{}",
        stderr(&waiting)
    );
    let unknown = writeback(&f.config, &["release", "m-unknown"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("not in the error queue"),
        "{}",
        stderr(&unknown)
    );
}
