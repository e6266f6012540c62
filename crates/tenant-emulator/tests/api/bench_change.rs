use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{Harness, EXCHANGE_SCOPE, GRAPH_SCOPE};

/// Every mailbox, keyed by Guid.
async fn all_mailboxes(h: &Harness, token: &str) -> BTreeMap<String, Value> {
    let (status, body) = h
        .exo(
            token,
            "Get-Mailbox",
            json!({"ResultSize": "Unlimited"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Guid"].as_str().unwrap().to_owned(), m.clone()))
        .collect()
}

async fn bench_change(h: &Harness, body: Value) -> (StatusCode, Value) {
    h.control(
        Method::POST,
        "/_emulator/mailboxes/bench-change",
        Some(body),
    )
    .await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// What the change should leave in EmailAddresses: the first secondary `smtp:` address not of
/// this round removed, the round's address added (unless `skip_add`).
fn expected_addresses(before: &[String], alias: &str, round: u64, skip_add: bool) -> Vec<String> {
    let marker = format!(".b{round}@");
    let mut after = before.to_vec();
    if let Some(i) = after
        .iter()
        .position(|a| a.starts_with("smtp:") && !a.contains(&marker))
    {
        after.remove(i);
    }
    if !skip_add {
        after.push(format!("smtp:{alias}.b{round}@contoso.com"));
    }
    after
}

#[tokio::test]
async fn bench_change_changes_every_cloud_managed_mailbox_like_set_mailbox() {
    let h = Harness::start(50).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    let g = h.token(GRAPH_SCOPE).await;
    let (_, _, latest) = h
        .graph_get(
            &h.url("/v1.0/users/delta?$deltatoken=latest&$select=mail,proxyAddresses"),
            &g,
            &[],
        )
        .await;
    let delta_link = latest["@odata.deltaLink"].as_str().unwrap().to_owned();
    // Another mailbox already has user000020's new address: that add is skipped.
    let (status, squatter) = h
        .control(
            Method::POST,
            "/_emulator/mailboxes",
            Some(json!({"userPrincipalName": "squatter@contoso.com",
                "emailAddresses": ["SMTP:squatter@contoso.com", "smtp:user000020.b1@contoso.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{squatter}");
    let before = all_mailboxes(&h, &x).await;
    let newest_before = before
        .values()
        .map(|m| m["WhenChangedUTC"].as_str().unwrap().to_owned())
        .max()
        .unwrap();

    let (status, summary) = bench_change(&h, json!({"round": 1})).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary, json!({"changed": 5, "skipped": 1, "failed": 0}));

    let after = all_mailboxes(&h, &x).await;
    let cloud_managed: Vec<&Value> = before
        .values()
        .filter(|m| m["IsExchangeCloudManaged"] == true)
        .collect();
    assert_eq!(cloud_managed.len(), 5);
    let mut changed_users = BTreeSet::new();
    for (i, old) in cloud_managed.iter().enumerate() {
        let alias = old["Alias"].as_str().unwrap();
        let new = &after[old["Guid"].as_str().unwrap()];
        assert_eq!(new["CustomAttribute2"], format!("b1-ca2-{alias}"));
        assert_eq!(new["CustomAttribute3"], format!("b1-ca3-{}", i + 1));
        assert_eq!(new["CustomAttribute4"], "b1-ca4");
        assert_eq!(new["CustomAttribute1"], old["CustomAttribute1"]);
        assert_eq!(
            new["HiddenFromAddressListsEnabled"],
            !old["HiddenFromAddressListsEnabled"].as_bool().unwrap()
        );
        assert_eq!(
            strings(&new["EmailAddresses"]),
            expected_addresses(
                &strings(&old["EmailAddresses"]),
                alias,
                1,
                alias == "user000020"
            ),
            "{alias}"
        );
        assert_eq!(new["PrimarySmtpAddress"], old["PrimarySmtpAddress"]);
        assert!(new["WhenChangedUTC"].as_str().unwrap() > newest_before.as_str());
        changed_users.insert(
            new["ExternalDirectoryObjectId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // user000050 keeps its SPO: address; the others lose their onmicrosoft.com one.
    let fifty = after.values().find(|m| m["Alias"] == "user000050").unwrap();
    assert!(strings(&fifty["EmailAddresses"])
        .iter()
        .any(|a| a.starts_with("SPO:")));
    for (guid, old) in before
        .iter()
        .filter(|(_, m)| m["IsExchangeCloudManaged"] == false)
    {
        assert_eq!(
            &after[guid], old,
            "a mailbox that is not cloud-managed is untouched"
        );
    }

    // Writeback's incremental read finds exactly the changed mailboxes.
    let (status, body) = h
        .exo(
            &x,
            "Get-Mailbox",
            json!({"Filter": format!("IsExchangeCloudManaged -eq $true -and WhenChangedUTC -gt '{newest_before}'")}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found: BTreeSet<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Alias"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        BTreeSet::from([
            "user000010",
            "user000020",
            "user000030",
            "user000040",
            "user000050"
        ])
    );

    // Graph's delta shows the changed users' new proxyAddresses (and the squatter, created since).
    let (status, _, delta) = h.graph_get(&delta_link, &g, &[]).await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    let users = delta["value"].as_array().unwrap();
    let mut expected_ids = changed_users.clone();
    expected_ids.insert(squatter["id"].as_str().unwrap().to_owned());
    let ids: BTreeSet<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected_ids);
    for user in users
        .iter()
        .filter(|u| changed_users.contains(u["id"].as_str().unwrap()))
    {
        let mailbox = after
            .values()
            .find(|m| m["ExternalDirectoryObjectId"] == user["id"])
            .unwrap();
        assert_eq!(user["proxyAddresses"], mailbox["EmailAddresses"]);
        assert_eq!(user["mail"], mailbox["PrimarySmtpAddress"]);
    }
}

#[tokio::test]
async fn bench_change_is_deterministic_limited_and_rounds_replace_each_other() {
    let h = Harness::start(40).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    let changed_fields = |all: &BTreeMap<String, Value>| -> Vec<Value> {
        all.values()
            .map(|m| {
                json!([
                    m["Guid"],
                    m["CustomAttribute2"],
                    m["CustomAttribute3"],
                    m["CustomAttribute4"],
                    m["EmailAddresses"],
                    m["HiddenFromAddressListsEnabled"]
                ])
            })
            .collect()
    };
    let original = all_mailboxes(&h, &x).await;
    let (_, first) = bench_change(&h, json!({"round": 1})).await;
    assert_eq!(first, json!({"changed": 4, "skipped": 0, "failed": 0}));
    let round_one = all_mailboxes(&h, &x).await;

    // The same tenant again (reset keeps the tenant's GUID), the same round: the same result.
    let (status, _) = h
        .control(
            Method::POST,
            "/_emulator/reset",
            Some(json!({"syntheticMailboxes": 40})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        changed_fields(&all_mailboxes(&h, &x).await),
        changed_fields(&original)
    );
    bench_change(&h, json!({"round": 1})).await;
    let again = all_mailboxes(&h, &x).await;
    assert_eq!(changed_fields(&again), changed_fields(&round_one));

    // Round 2 on the first two cloud-managed mailboxes (Guid order) only: it replaces round 1's
    // address with its own, so the number of addresses stays the same.
    let (status, second) = bench_change(&h, json!({"round": 2, "limit": 2})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second, json!({"changed": 2, "skipped": 0, "failed": 0}));
    let round_two = all_mailboxes(&h, &x).await;
    let cloud: Vec<&String> = again
        .iter()
        .filter(|(_, m)| m["IsExchangeCloudManaged"] == true)
        .map(|(g, _)| g)
        .collect();
    for (i, guid) in cloud.iter().enumerate() {
        let (old, new) = (&again[*guid], &round_two[*guid]);
        if i < 2 {
            let alias = old["Alias"].as_str().unwrap();
            assert_eq!(new["CustomAttribute3"], format!("b2-ca3-{}", i + 1));
            let addresses = strings(&new["EmailAddresses"]);
            assert_eq!(
                addresses,
                expected_addresses(&strings(&old["EmailAddresses"]), alias, 2, false)
            );
            assert_eq!(addresses.len(), strings(&old["EmailAddresses"]).len());
            assert!(
                !addresses.iter().any(|a| a.contains(".b1@")),
                "{addresses:?}"
            );
        } else {
            assert_eq!(new, old, "beyond the limit nothing changes");
        }
    }

    for bad in [
        json!({"round": 0}),
        json!({"limit": 3}),
        json!({"round": -1}),
    ] {
        let response = h
            .http
            .post(h.url("/_emulator/mailboxes/bench-change"))
            .bearer_auth(h.emu.control_token())
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{bad}: {}",
            response.status()
        );
    }
    assert_eq!(
        all_mailboxes(&h, &x).await,
        round_two,
        "refused requests change nothing"
    );
}
