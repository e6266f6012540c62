//! The Graph users/delta reader and the pull join against a real local HTTP server.
// Helpers below are test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod common;

use common::{Reply, ScriptedServer};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use writeback_cloud::graph::DELTA_SELECT;
use writeback_cloud::{pull_with, CloudError, DeltaCursor, RemovalReason};

const DELTA: &str = "/v1.0/users/delta";

/// A docs sample with its links pointed at the local server.
fn sample(server: &ScriptedServer, name: &str) -> Reply {
    Reply::json(
        200,
        common::fixture(name).replace("https://graph.microsoft.com", &server.base_url),
    )
}

async fn setup() -> (ScriptedServer, writeback_cloud::CloudReaders) {
    let server = ScriptedServer::start().await;
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "");
    let readers = common::secret_readers(&config);
    (server, readers)
}

fn sync_state_not_found() -> Reply {
    Reply::json(
        400,
        r#"{"error":{"code":"SyncStateNotFound","message":"The sync state generation is not found."}}"#,
    )
}

#[tokio::test]
async fn full_round_then_incremental_round_with_removed() {
    let (server, readers) = setup().await;
    server.push(
        DELTA,
        sample(&server, "graph_delta-query-users_1_initial_response.json"),
    );
    server.push(
        DELTA,
        sample(&server, "graph_delta-query-users_2_nextlink_response.json"),
    );
    server.push(
        DELTA,
        sample(
            &server,
            "graph_delta-query-users_3_final_nextlink_response_with_deltalink.json",
        ),
    );

    let mut cursors = Vec::new();
    let mut ids = Vec::new();
    let (delta, resynced) = readers
        .graph
        .read_round(DeltaCursor::Initial, |page| {
            cursors.push(page.cursor.clone());
            ids.extend(page.users.iter().map(|u| u.id.clone()));
        })
        .await
        .expect("round");
    assert!(!resynced);
    assert_eq!(ids.len(), 6);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 6);
    assert!(matches!(&cursors[0], DeltaCursor::Next(l) if l.contains("$skiptoken=oEBwdSP6")));
    assert!(matches!(&cursors[1], DeltaCursor::Next(l) if l.contains("$skiptoken=pqwSUjGY")));
    assert_eq!(cursors[2], delta);
    assert!(matches!(&delta, DeltaCursor::Delta(l) if l.contains("$deltatoken=oEcOySpF")));

    let requests = server.requests(DELTA);
    assert_eq!(
        requests[0].query.as_deref(),
        Some(format!("$select={DELTA_SELECT}").as_str())
    );
    assert!(DELTA_SELECT
        .split(',')
        .collect::<BTreeSet<_>>()
        .is_superset(&BTreeSet::from([
            "id",
            "onPremisesImmutableId",
            "onPremisesSecurityIdentifier",
            "onPremisesDistinguishedName",
            "onPremisesSamAccountName",
            "onPremisesDomainName",
            "onPremisesSyncEnabled",
            "mail",
            "proxyAddresses",
            "userPrincipalName"
        ])));
    assert!(requests[1]
        .query
        .as_deref()
        .is_some_and(|q| q.starts_with("$skiptoken=oEBwdSP6")));
    assert_eq!(requests[0].header("authorization"), Some("Bearer tok-1"));

    // Next round from the deltaLink: one change, one removal.
    server.push(
        DELTA,
        sample(
            &server,
            "graph_delta-query-users_4b_deltalink_response_changes_and_removed.json",
        ),
    );
    let page = readers.graph.next_page(&delta).await.expect("incremental");
    assert_eq!(
        page.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["25dcffff-959e-4ece-9973-e5d9b800e8cc"]
    );
    assert_eq!(page.removed.len(), 1);
    assert_eq!(page.removed[0].reason, RemovalReason::Changed);
    assert!(page.cursor.is_round_complete() && !page.resynced);
    assert!(server.requests(DELTA)[3]
        .query
        .as_deref()
        .is_some_and(|q| q.starts_with("$deltatoken=oEcOySpF")));
}

#[tokio::test]
async fn lost_sync_state_restarts_from_initial_and_says_so() {
    for reply in [
        sync_state_not_found(),
        Reply::json(
            400,
            r#"{"error":{"code":"resyncRequired","message":"Resync required."}}"#,
        ),
        Reply::json(410, "").with_header("location", "http://127.0.0.1:1/v1.0/users/delta"),
    ] {
        let (server, readers) = setup().await;
        server.push(DELTA, reply);
        server.push(
            DELTA,
            sample(
                &server,
                "graph_delta-query-users_3_final_nextlink_response_with_deltalink.json",
            ),
        );
        let stale = DeltaCursor::Delta(format!("{}{DELTA}?$deltatoken=stale", server.base_url));
        let page = readers
            .graph
            .next_page(&stale)
            .await
            .expect("resynced page");
        assert!(page.resynced);
        assert_eq!(page.users.len(), 2);
        let queries: Vec<Option<String>> = server
            .requests(DELTA)
            .into_iter()
            .map(|r| r.query)
            .collect();
        assert_eq!(
            queries,
            [
                Some("$deltatoken=stale".into()),
                Some(format!("$select={DELTA_SELECT}"))
            ]
        );
    }
}

#[tokio::test]
async fn read_round_reports_a_resync_midway() {
    let (server, readers) = setup().await;
    server.push(DELTA, sync_state_not_found());
    server.push(
        DELTA,
        sample(&server, "graph_delta-query-users_2_nextlink_response.json"),
    );
    server.push(
        DELTA,
        sample(
            &server,
            "graph_delta-query-users_3_final_nextlink_response_with_deltalink.json",
        ),
    );
    let next = DeltaCursor::Next(format!("{}{DELTA}?$skiptoken=old", server.base_url));
    let (cursor, resynced) = readers.graph.read_round(next, |_| {}).await.expect("round");
    assert!(resynced && cursor.is_round_complete());
}

#[tokio::test]
async fn sync_state_lost_on_the_initial_call_is_an_error_not_a_loop() {
    let (server, readers) = setup().await;
    server.push(DELTA, sync_state_not_found());
    match readers.graph.next_page(&DeltaCursor::Initial).await {
        Err(CloudError::ResyncRequired { reason }) => assert!(reason.contains("SyncStateNotFound")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn graph_errors_and_throttling() {
    let (server, readers) = setup().await;
    server.push(
        DELTA,
        Reply::json(429, common::fixture("graph_error_429_throttling_body.json"))
            .with_header("retry-after", "0.2"),
    );
    server.push(
        DELTA,
        Reply::json(
            501,
            common::fixture("graph_error_501_delta_property_not_supported.json"),
        ),
    );
    match readers.graph.next_page(&DeltaCursor::Initial).await {
        Err(CloudError::HttpStatus {
            status, message, ..
        }) => {
            assert_eq!(status, 501);
            assert_eq!(
                message,
                "NotImplemented: This operation target is not yet supported."
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.requests(DELTA).len(),
        2,
        "429 retried once, 501 not retried"
    );
}

#[tokio::test]
async fn pull_joins_mailboxes_with_graph_anchors() {
    let (server, readers) = setup().await;
    let a = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
    let b = "605d1257-ffff-40b6-8e6f-528a53f5dc55";
    let gone = "25dcffff-959e-4ece-9973-e5d9b800e8cc";
    server.push(
        DELTA,
        Reply::json(
            200,
            json!({
            "@odata.nextLink": format!("{}{DELTA}?$skiptoken=x", server.base_url),
            "value": [
                {"id": a.to_uppercase(), "onPremisesImmutableId": "AAECAwQFBgcICQoLDA0ODw==",
                 "onPremisesSecurityIdentifier": "S-1-5-21-1-2-3-1104",
                 "onPremisesDistinguishedName": "CN=Adele,OU=Users,DC=contoso,DC=com"},
                {"id": gone, "onPremisesSecurityIdentifier": "S-1-5-21-1-2-3-1200"}
            ]})
            .to_string(),
        ),
    );
    server.push(
        DELTA,
        Reply::json(
            200,
            json!({
        "@odata.deltaLink": format!("{}{DELTA}?$deltatoken=y", server.base_url),
        "value": [{"id": gone, "@removed": {"reason": "deleted"}},
                  {"id": a, "onPremisesDistinguishedName": null}]})
            .to_string(),
        ),
    );
    server.push(
        &common::invoke_path(),
        Reply::json(
            200,
            json!({
            "@adminapi.warnings": [],
            "value": [
                {"ExternalDirectoryObjectId": a, "WhenChangedUTC": "2024-01-01T00:00:00.0000000Z"},
                {"ExternalDirectoryObjectId": b, "WhenChangedUTC": "2024-01-02T00:00:00.0000000Z"},
                {"ExternalDirectoryObjectId": gone, "CustomAttribute1": 5}
            ]})
            .to_string(),
        ),
    );

    let mut out = Vec::new();
    let summary = pull_with(&readers, |item| out.push(item))
        .await
        .expect("pull");
    assert_eq!(out.len(), 3);
    let first = out[0].as_ref().expect("a");
    assert_eq!(first.cloud_id, a);
    assert_eq!(
        first.anchors.immutable_id.as_deref(),
        Some("AAECAwQFBgcICQoLDA0ODw==")
    );
    assert_eq!(first.anchors.sid.as_deref(), Some("S-1-5-21-1-2-3-1104"));
    assert_eq!(first.anchors.dn, None, "null in a later page cleared it");
    let second = out[1].as_ref().expect("b");
    assert_eq!(second.anchors, Default::default());
    assert_eq!(out[2].as_ref().expect_err("bad").id.as_deref(), Some(gone));
    assert_eq!(summary.graph_users, 3);
    assert_eq!(summary.unanchored, 1);
    assert_eq!(summary.exchange.mailboxes, 2);
    assert_eq!(
        summary.exchange.watermark.map(|w| w.to_string()).as_deref(),
        Some("2024-01-02T00:00:00Z")
    );
}
