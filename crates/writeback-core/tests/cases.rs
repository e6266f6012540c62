//! Data-driven planner cases: every `tests/cases/*.json` file holds a `mailbox` (the cloud
//! record), `ad` (current AD values), an optional `policy`, and the `expected` result side by
//! side: `{"modifications": [...]}` or `{"error": {"attribute": ..., "rule": ...}}`.
//!
//! On a mismatch the runner prints a line diff of the expected and actual results. With
//! `UPDATE_EXPECT=1` it rewrites the `expected` part of each mismatching file instead
//! (review the diff before committing it).
//!
//! Every successful plan is also applied to `ad` with the LDAP simulator: it must be
//! accepted, and planning again on the result must give nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use writeback_core::{plan, AdValues, Mailbox, PlanPolicy};

/// Field order of a case file, so a rewrite keeps input and expected output side by side.
#[derive(Serialize)]
struct CaseFile<'a> {
    description: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Value>,
    mailbox: &'a Value,
    ad: &'a Value,
    expected: &'a Value,
}

struct Outcome {
    actual: Value,
    /// Problems beyond a wrong result (the plan is refused by the simulator, or does not
    /// converge).
    invariant_failures: Vec<String>,
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cases")
}

fn run_case(case: &Value) -> Result<Outcome, String> {
    let mailbox: Mailbox =
        serde_json::from_value(case["mailbox"].clone()).map_err(|e| format!("mailbox: {e}"))?;
    let ad: AdValues =
        serde_json::from_value(case["ad"].clone()).map_err(|e| format!("ad: {e}"))?;
    let policy: PlanPolicy = match case.get("policy") {
        None | Some(Value::Null) => PlanPolicy::default(),
        Some(p) => serde_json::from_value(p.clone()).map_err(|e| format!("policy: {e}"))?,
    };
    let mut invariant_failures = Vec::new();
    let actual = match plan(&mailbox, &ad, &policy) {
        Ok(mods) => {
            match ad.apply(&mods) {
                Ok(after) => match plan(&mailbox, &after, &policy) {
                    Ok(again) if again.is_empty() => {}
                    Ok(again) => invariant_failures.push(format!(
                        "planning again after apply is not empty: {again:?}"
                    )),
                    Err(e) => invariant_failures.push(format!("planning again failed: {e}")),
                },
                Err(e) => invariant_failures.push(format!("the simulator refused the plan: {e}")),
            }
            json!({ "modifications": mods })
        }
        Err(e) => json!({ "error": { "attribute": e.attribute, "rule": e.rule } }),
    };
    Ok(Outcome {
        actual,
        invariant_failures,
    })
}

/// A minimal line diff (longest common subsequence), `-` expected, `+` actual.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

fn rewrite(path: &Path, case: &Value, actual: &Value) {
    let file = CaseFile {
        description: &case["description"],
        policy: case.get("policy"),
        mailbox: &case["mailbox"],
        ad: &case["ad"],
        expected: actual,
    };
    let text = serde_json::to_string_pretty(&file).unwrap() + "\n";
    std::fs::write(path, text).unwrap();
}

#[test]
fn planner_cases() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 50,
        "expected at least 50 cases, found {}",
        paths.len()
    );

    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let case: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: not valid JSON: {e}"));
                continue;
            }
        };
        let outcome = match run_case(&case) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: bad input: {e}"));
                continue;
            }
        };
        for problem in &outcome.invariant_failures {
            failures.push(format!("{name}: {problem}"));
        }
        let expected = case.get("expected").cloned().unwrap_or(Value::Null);
        if expected != outcome.actual {
            if update {
                rewrite(path, &case, &outcome.actual);
                eprintln!("updated {name}");
            } else {
                let diff = line_diff(
                    &serde_json::to_string_pretty(&expected).unwrap(),
                    &serde_json::to_string_pretty(&outcome.actual).unwrap(),
                );
                failures.push(format!(
                    "{name}: result differs (- expected, + actual):\n{diff}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (UPDATE_EXPECT=1 rewrites expectations):\n\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn line_diff_marks_changed_lines() {
    let diff = line_diff("a\nb\nc", "a\nx\nc");
    assert_eq!(diff, "  a\n+ x\n- b\n  c\n");
}
