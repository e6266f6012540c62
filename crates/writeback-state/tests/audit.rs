//! Audit log: query filters, CSV and JSON lines export, retention purge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{ad_values, change_mail, guid, strings, TempStore};
use writeback_core::ManagedAttribute;
use writeback_state::export::CSV_HEADER;
use writeback_state::{
    write_audit_csv, write_audit_jsonl, AuditQuery, Outcome, StateStore, WriteIntent,
};

/// (cloud id, DN, time of the outcome, outcome) — one mail change each.
const WRITES: [(&str, &str, i64, Option<u32>); 5] = [
    ("cloud-a", "CN=Anna,OU=Sales,DC=corp,DC=test", 1_000, None),
    (
        "cloud-b",
        "CN=Ben,OU=Sales,DC=corp,DC=test",
        2_000,
        Some(53),
    ),
    ("cloud-a", "CN=Anna,OU=Sales,DC=corp,DC=test", 3_000, None),
    (
        "cloud-c",
        "CN=100% \"Cat\"\\, Jr.,OU=R_D,DC=corp,DC=test",
        4_000,
        None,
    ),
    (
        "=cmd|' /C calc'!A0",
        "CN=Eve,OU=Sales,DC=corp,DC=test",
        5_000,
        Some(1),
    ),
];

fn populated() -> TempStore {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    for (n, (cloud_id, dn, at, failure)) in WRITES.iter().enumerate() {
        let old = format!("old{n}@x.test");
        let new = format!("new{n}@x.test");
        let mods = change_mail(&old, &new);
        let before = ad_values(&[(ManagedAttribute::Mail, &[old.as_str()])]);
        let intent = WriteIntent {
            cycle,
            cloud_id,
            object_guid: guid(7),
            dn,
            mods: &mods,
            before: &before,
        };
        let id = t.store.record_intent(&intent, at - 1).unwrap();
        let outcome = match failure {
            None => Outcome::Applied,
            Some(code) => Outcome::Failed {
                code: *code,
                message: format!("-failure, \"quoted\"\nline two {code}"),
            },
        };
        t.store.record_outcome(id, &outcome, *at).unwrap();
    }
    t
}

fn cloud_ids(t: &TempStore, query: AuditQuery) -> Vec<(String, i64)> {
    t.store
        .query_audit(&query)
        .unwrap()
        .into_iter()
        .map(|r| (r.cloud_id, r.at))
        .collect()
}

#[test]
fn audit_queries_filter_by_time_cloud_id_dn_and_limit() {
    let t = populated();
    let all = cloud_ids(&t, AuditQuery::default());
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].1 <= w[1].1));

    let window = cloud_ids(
        &t,
        AuditQuery {
            since: Some(2_000),
            until: Some(4_000),
            ..Default::default()
        },
    );
    assert_eq!(
        window,
        [
            ("cloud-b".to_string(), 2_000),
            ("cloud-a".to_string(), 3_000)
        ]
    );

    let anna = cloud_ids(
        &t,
        AuditQuery {
            cloud_id: Some("cloud-a".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        anna.iter().map(|(_, at)| *at).collect::<Vec<_>>(),
        [1_000, 3_000]
    );

    let sales = cloud_ids(
        &t,
        AuditQuery {
            dn_contains: Some("ou=SALES".into()),
            ..Default::default()
        },
    );
    assert_eq!(sales.len(), 4, "DN match is case-insensitive");
    // % and _ are literal characters in a DN, not wildcards.
    let literal = cloud_ids(
        &t,
        AuditQuery {
            dn_contains: Some("100%".into()),
            ..Default::default()
        },
    );
    assert_eq!(literal, [("cloud-c".to_string(), 4_000)]);
    let underscore = cloud_ids(
        &t,
        AuditQuery {
            dn_contains: Some("R_D".into()),
            ..Default::default()
        },
    );
    assert_eq!(underscore.len(), 1);
    let no_wildcard = cloud_ids(
        &t,
        AuditQuery {
            dn_contains: Some("Sa_es".into()),
            ..Default::default()
        },
    );
    assert!(no_wildcard.is_empty());

    let combined = AuditQuery {
        dn_contains: Some("Sales".into()),
        since: Some(1_500),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        cloud_ids(&t, combined)
            .iter()
            .map(|(_, at)| *at)
            .collect::<Vec<_>>(),
        [2_000, 3_000]
    );

    let first_two = t
        .store
        .query_audit(&AuditQuery {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    let rest = t
        .store
        .query_audit(&AuditQuery {
            after_id: Some(first_two[1].id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest[0].id > first_two[1].id);
    assert!(t
        .store
        .query_audit(&AuditQuery {
            limit: Some(0),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
}

#[test]
fn csv_export_is_quoted_parses_back_and_defuses_formulas() {
    let t = populated();
    let mut out = Vec::new();
    let written = write_audit_csv(&t.store, &AuditQuery::default(), &mut out).unwrap();
    assert_eq!(written, 5);

    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        CSV_HEADER
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let column = |row: &csv::StringRecord, name: &str| {
        let i = CSV_HEADER.iter().position(|h| *h == name).unwrap();
        row.get(i).unwrap().to_string()
    };
    for (row, (cloud_id, dn, at, failure)) in rows.iter().zip(WRITES) {
        if cloud_id.starts_with('=') {
            assert_eq!(column(row, "cloud_id"), format!("'{cloud_id}"));
        } else {
            assert_eq!(column(row, "cloud_id"), cloud_id);
        }
        assert_eq!(
            column(row, "dn"),
            dn,
            "commas, quotes and backslashes survive"
        );
        assert_eq!(column(row, "at_ms"), at.to_string());
        assert_eq!(column(row, "attribute"), "mail");
        let before: Vec<String> = serde_json::from_str(&column(row, "before")).unwrap();
        let after: Vec<String> = serde_json::from_str(&column(row, "after")).unwrap();
        assert!(
            before[0].starts_with("old") && after[0].starts_with("new"),
            "{before:?} {after:?}"
        );
        match failure {
            None => {
                assert_eq!(column(row, "outcome"), "applied");
                assert_eq!(column(row, "error_code"), "");
            }
            Some(code) => {
                assert_eq!(column(row, "outcome"), "failed");
                assert_eq!(column(row, "error_code"), code.to_string());
                assert_eq!(
                    column(row, "error_message"),
                    format!("'-failure, \"quoted\"\nline two {code}")
                );
            }
        }
    }
    assert_eq!(column(&rows[0], "time"), "1970-01-01T00:00:01.000Z");
}

#[test]
fn jsonl_export_has_one_exact_object_per_line() {
    let t = populated();
    let mut out = Vec::new();
    let query = AuditQuery {
        since: Some(2_000),
        ..Default::default()
    };
    assert_eq!(write_audit_jsonl(&t.store, &query, &mut out).unwrap(), 4);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["cloud_id"], "cloud-b");
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["error_code"], 53);
    assert_eq!(
        lines[0]["error_message"],
        "-failure, \"quoted\"\nline two 53"
    );
    assert_eq!(lines[0]["before"], serde_json::json!(["old1@x.test"]));
    assert_eq!(lines[0]["after"], serde_json::json!(["new1@x.test"]));
    assert_eq!(lines[0]["time"], "1970-01-01T00:00:02.000Z");
    assert_eq!(
        lines[3]["cloud_id"], "=cmd|' /C calc'!A0",
        "JSON lines are exact, no spreadsheet defusing"
    );
    assert_eq!(lines[1]["error_code"], serde_json::Value::Null);
}

#[test]
fn export_pages_through_more_rows_than_one_page_and_honours_the_limit() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let mods = change_mail("a@x.test", "b@x.test");
    let before = ad_values(&[(ManagedAttribute::Mail, &["a@x.test"])]);
    let ids: Vec<String> = (0..2_345).map(|n| format!("cloud-{n:05}")).collect();
    let intents: Vec<WriteIntent> = ids
        .iter()
        .map(|cloud_id| WriteIntent {
            cycle,
            cloud_id,
            object_guid: guid(1),
            dn: "CN=X,DC=t",
            mods: &mods,
            before: &before,
        })
        .collect();
    let journal = t.store.record_intents(&intents, 1).unwrap();
    let outcomes: Vec<_> = journal
        .into_iter()
        .map(|id| (id, Outcome::Applied))
        .collect();
    t.store.record_outcomes(&outcomes, 2).unwrap();

    let mut out = Vec::new();
    assert_eq!(
        write_audit_jsonl(&t.store, &AuditQuery::default(), &mut out).unwrap(),
        2_345
    );
    let exported: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["cloud_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(exported, ids, "every row once, in order, across pages");

    let mut out = Vec::new();
    let limited = AuditQuery {
        limit: Some(1_500),
        ..Default::default()
    };
    assert_eq!(
        write_audit_csv(&t.store, &limited, &mut out).unwrap(),
        1_500
    );
    assert_eq!(
        csv::Reader::from_reader(out.as_slice()).records().count(),
        1_500
    );
}

#[test]
fn retention_purges_old_audit_rows_and_finished_journal_entries_but_not_in_flight_ones() {
    let t = populated();
    let cycle = t.store.last_cycle().unwrap().unwrap().id;
    let mods = change_mail("a@x.test", "b@x.test");
    let before = ad_values(&[(ManagedAttribute::Mail, &["a@x.test"])]);
    let intent = WriteIntent {
        cycle,
        cloud_id: "stuck",
        object_guid: guid(1),
        dn: "CN=S,DC=t",
        mods: &mods,
        before: &before,
    };
    let stuck = t.store.record_intent(&intent, 10).unwrap();

    let report = t.store.purge_before(3_000).unwrap();
    assert_eq!(report.journal_entries, 2);
    let left: Vec<i64> = t
        .store
        .query_audit(&AuditQuery::default())
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(left, [3_000, 4_000, 5_000]);
    assert_eq!(
        t.store
            .in_flight()
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [stuck]
    );
    // Not yet purged: the newest write to cloud-a finished at or after the cutoff. (Last
    // written values are those written to the mailbox's joined object.)
    t.store
        .upsert_join(&writeback_state::Join {
            cloud_id: "cloud-a".into(),
            object_guid: guid(7),
            dn: "CN=A,DC=t".into(),
            matched_by: writeback_state::MatchedBy::ImmutableId,
            verified_at: 0,
        })
        .unwrap();
    assert_eq!(
        t.store.last_written("cloud-a").unwrap()[0].values,
        strings(&["new2@x.test"])
    );

    let report = t.store.purge_before(i64::MAX).unwrap();
    assert_eq!(report.journal_entries, 3);
    // The last written values are read from the journal: they go with it.
    assert!(t.store.last_written("cloud-a").unwrap().is_empty());
    assert_eq!(t.store.in_flight().unwrap().len(), 1);
    assert!(t.store.integrity_check().unwrap().is_empty());
}
