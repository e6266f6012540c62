//! The Exchange mailbox reader against a real local HTTP server.
// Helpers below are test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod common;

use common::{Reply, ScriptedServer};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use writeback_cloud::exchange::choose_pass;
use writeback_cloud::{CloudError, Mailbox, MailboxError, PassKind, Watermark};

fn mailbox(id: &str, changed: &str) -> Value {
    json!({
        "ExternalDirectoryObjectId": id,
        "Guid@data.type": "System.Guid",
        "Guid": "00000000-0000-0000-0000-000000000001",
        "IsExchangeCloudManaged": true,
        "PrimarySmtpAddress": format!("{id}@contoso.com"),
        "EmailAddresses@odata.type": "#Collection(String)",
        "EmailAddresses": [format!("SMTP:{id}@contoso.com")],
        "CustomAttribute1": "x", "CustomAttribute2": "",
        "ExtensionCustomAttribute1": [],
        "HiddenFromAddressListsEnabled": false,
        "RecipientTypeDetails": "UserMailbox",
        "WhenChangedUTC@data.type": "System.DateTime",
        "WhenChangedUTC": changed
    })
}

fn page(
    server: &ScriptedServer,
    items: Vec<Value>,
    next: Option<&str>,
    warnings: &[&str],
) -> Reply {
    let mut body = json!({
        "@odata.context": format!("{}/adminapi/beta/t/$metadata#Collection(Exchange.GenericHashTable)", server.base_url),
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": warnings,
        "value": items,
    });
    if let Some(token) = next {
        body["@odata.nextLink"] = json!(format!(
            "{}?$skiptoken={token}",
            server.url(&common::invoke_path())
        ));
    }
    Reply::json(200, body.to_string())
}

const A: &str = "11111111-1111-4111-8111-111111111111";
const B: &str = "22222222-2222-4222-8222-222222222222";
const C: &str = "33333333-3333-4333-8333-333333333333";
const D: &str = "44444444-4444-4444-8444-444444444444";

async fn setup() -> (ScriptedServer, writeback_cloud::CloudReaders) {
    let server = ScriptedServer::start().await;
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "max_query_restarts = 2\n");
    let readers = common::secret_readers(&config);
    (server, readers)
}

async fn read(
    readers: &writeback_cloud::CloudReaders,
    kind: PassKind,
) -> Result<
    (
        Vec<Result<Mailbox, MailboxError>>,
        writeback_cloud::PassSummary,
    ),
    CloudError,
> {
    let mut all = Vec::new();
    let summary = readers
        .exchange
        .read_all(kind, |page| all.extend(page.mailboxes))
        .await?;
    Ok((all, summary))
}

fn ok_ids(items: &[Result<Mailbox, MailboxError>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .map(|m| m.cloud_id.clone())
        .collect()
}

#[tokio::test]
async fn pages_are_followed_with_the_real_client_headers() {
    let (server, readers) = setup().await;
    let path = common::invoke_path();
    server.push(
        &path,
        page(
            &server,
            vec![
                mailbox(A, "2024-04-10T08:56:22.0000000Z"),
                mailbox(B, "2024-04-11T01:00:00.1234567Z"),
            ],
            Some("p2"),
            &["There are more results available than are currently displayed."],
        ),
    );
    server.push(
        &path,
        page(
            &server,
            vec![mailbox(C, "2024-04-09T00:00:00.0000000Z")],
            None,
            &[],
        ),
    );

    let (items, summary) = read(&readers, PassKind::Full).await.expect("pass");
    assert_eq!(ok_ids(&items), [A, B, C]);
    assert!(summary.complete);
    assert_eq!(summary.mailboxes, 3);
    assert_eq!(
        summary.watermark,
        Watermark::parse("2024-04-11T01:00:00.1234567Z")
    );

    let requests = server.requests(&path);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].query, None);
    assert_eq!(
        requests[1].query.as_deref(),
        Some("$skiptoken=p2"),
        "nextLink followed as returned"
    );
    for request in &requests {
        assert_eq!(request.method, reqwest::Method::POST);
        assert_eq!(request.header("authorization"), Some("Bearer tok-1"));
        assert_eq!(
            request.header("x-anchormailbox"),
            Some("APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com")
        );
        assert_eq!(request.header("x-cmdletname"), Some("Get-Mailbox"));
        assert_eq!(request.header("x-responseformat"), Some("json"));
        assert_eq!(request.header("x-serializationlevel"), Some("Partial"));
        assert_eq!(request.header("prefer"), Some("odata.maxpagesize=2"));
        let body: Value = serde_json::from_slice(&request.body).expect("json body");
        assert_eq!(
            body,
            json!({"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{
            "Filter":"IsExchangeCloudManaged -eq 'True'","ResultSize":"Unlimited"}}})
        );
    }
    let token_scope = server.requests(&common::token_path())[0]
        .form()
        .into_iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v);
    assert_eq!(token_scope, Some(format!("{}/.default", server.base_url)));
}

#[tokio::test]
async fn expired_pagination_restarts_without_losing_or_doubling() {
    let (server, readers) = setup().await;
    let path = common::invoke_path();
    server.push(
        &path,
        page(
            &server,
            vec![
                mailbox(A, "2024-01-01T00:00:00Z"),
                mailbox(B, "2024-01-01T00:00:00Z"),
            ],
            Some("p2"),
            &["more"],
        ),
    );
    server.push(&path, Reply::json(400, r#"{"error":{"code":"BadRequest","message":"Expired or Invalid pagination request. Default Expiry time is 00:30:00"}}"#));
    // The restarted query sees the tenant as it is now: B moved behind a new mailbox D.
    server.push(
        &path,
        page(
            &server,
            vec![
                mailbox(A, "2024-01-01T00:00:00Z"),
                mailbox(D, "2024-01-01T00:00:00Z"),
            ],
            Some("q2"),
            &["more"],
        ),
    );
    server.push(
        &path,
        page(
            &server,
            vec![
                mailbox(B, "2024-01-01T00:00:00Z"),
                mailbox(C, "2024-01-02T00:00:00Z"),
            ],
            None,
            &[],
        ),
    );

    let (items, summary) = read(&readers, PassKind::Full).await.expect("pass");
    let ids = ok_ids(&items);
    assert_eq!(ids, [A, B, D, C]);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "nothing doubled"
    );
    assert_eq!(summary.restarts, 1);
    assert_eq!(summary.duplicates_skipped, 2);
    assert!(summary.complete);
    let queries: Vec<Option<String>> = server
        .requests(&path)
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(
        queries,
        [
            None,
            Some("$skiptoken=p2".into()),
            None,
            Some("$skiptoken=q2".into())
        ]
    );
}

#[tokio::test]
async fn endless_expired_pagination_gives_up_after_the_restart_limit() {
    let (server, readers) = setup().await;
    let path = common::invoke_path();
    for _ in 0..3 {
        server.push(
            &path,
            page(
                &server,
                vec![mailbox(A, "2024-01-01T00:00:00Z")],
                Some("p2"),
                &["more"],
            ),
        );
        server.push(
            &path,
            Reply::json(
                400,
                r#"{"error":{"message":"Expired or Invalid pagination request"}}"#,
            ),
        );
    }
    match read(&readers, PassKind::Full).await {
        Err(CloudError::TooManyRestarts { restarts, .. }) => assert_eq!(restarts, 2),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn warnings_without_a_next_link_make_the_pass_incomplete() {
    let (server, readers) = setup().await;
    server.push(
        &common::invoke_path(),
        page(
            &server,
            vec![mailbox(A, "2024-01-01T00:00:00Z")],
            None,
            &["There are more results available than are currently displayed."],
        ),
    );
    let (items, summary) = read(&readers, PassKind::Full).await.expect("pass");
    assert_eq!(ok_ids(&items), [A]);
    assert!(!summary.complete);
    assert_eq!(
        summary.watermark, None,
        "an incomplete pass must not move the watermark"
    );
}

#[tokio::test]
async fn one_bad_mailbox_is_reported_and_the_rest_delivered() {
    let (server, readers) = setup().await;
    let mut bad = mailbox(B, "2024-01-01T00:00:00Z");
    bad["CustomAttribute3"] = json!(17);
    server.push(
        &common::invoke_path(),
        page(
            &server,
            vec![
                mailbox(A, "2024-01-01T00:00:00Z"),
                bad,
                mailbox(C, "2024-01-01T00:00:00Z"),
            ],
            None,
            &[],
        ),
    );
    let (items, summary) = read(&readers, PassKind::Full).await.expect("pass");
    assert_eq!(ok_ids(&items), [A, C]);
    let errors: Vec<&MailboxError> = items.iter().filter_map(|m| m.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].id.as_deref(), Some(B));
    assert_eq!(errors[0].field, "CustomAttribute3");
    assert_eq!((summary.mailboxes, summary.mailbox_errors), (2, 1));
}

#[tokio::test]
async fn exchange_error_body_is_reported_with_its_useful_message() {
    let (server, readers) = setup().await;
    server.push(&common::invoke_path(), Reply::json(400, r#"{"error":{"code":"BadRequest","message":"Invalid Operation","details":[{"code":"Client","target":"","message":"|Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException|Parameter set cannot be resolved using the specified named parameters."}],"innererror":{"message":"Invalid Operation","type":"x","internalexception":{"message":"inner","type":"y"}}}}"#));
    match read(&readers, PassKind::Full).await {
        Err(CloudError::HttpStatus {
            status,
            message,
            endpoint,
        }) => {
            assert_eq!(status, 400);
            assert_eq!(
                message,
                "Parameter set cannot be resolved using the specified named parameters."
            );
            assert!(endpoint.starts_with("POST ") && endpoint.ends_with("/InvokeCommand"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forbidden_with_a_non_json_body_is_a_clear_error() {
    let (server, readers) = setup().await;
    server.push(
        &common::invoke_path(),
        Reply::Status {
            status: 403,
            headers: vec![],
            body: "Forbidden".into(),
        },
    );
    match read(&readers, PassKind::Full).await {
        Err(CloudError::HttpStatus {
            status: 403,
            message,
            ..
        }) => assert_eq!(message, "Forbidden"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_names_the_path() {
    let (server, readers) = setup().await;
    server.push(
        &common::invoke_path(),
        Reply::json(
            200,
            r#"{"value":[{"ExternalDirectoryObjectId":"a"}], "@odata.nextLink": 5}"#,
        ),
    );
    match read(&readers, PassKind::Full).await {
        Err(CloudError::MalformedResponse { path, .. }) => assert_eq!(path, "@odata.nextLink"),
        other => panic!("{other:?}"),
    }
    server.push(
        &common::invoke_path(),
        Reply::json(200, r#"{"value":[{"ExternalDirectoryObjectId":"#),
    );
    assert!(matches!(
        read(&readers, PassKind::Full).await,
        Err(CloudError::MalformedResponse { .. })
    ));
}

#[tokio::test]
async fn a_401_gets_one_retry_with_a_new_token() {
    let (server, readers) = setup().await;
    server.push(&common::invoke_path(), Reply::json(401, "{}"));
    server.push(
        &common::invoke_path(),
        page(&server, vec![mailbox(A, "2024-01-01T00:00:00Z")], None, &[]),
    );
    let (items, _) = read(&readers, PassKind::Full).await.expect("pass");
    assert_eq!(ok_ids(&items), [A]);
    let auth: Vec<Option<String>> = server
        .requests(&common::invoke_path())
        .iter()
        .map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(
        auth,
        [Some("Bearer tok-1".into()), Some("Bearer tok-2".into())]
    );
}

#[tokio::test]
async fn incremental_pass_filters_from_the_watermark_with_or_without_the_overlap() {
    let (server, readers) = setup().await;
    let since = Watermark::parse("2024-04-10T08:56:22.7000000Z").expect("mark");
    for (overlap, from) in [
        (true, "2024-04-10T08:51:22Z"),
        (false, "2024-04-10T08:56:22Z"),
    ] {
        server.push(&common::invoke_path(), page(&server, vec![], None, &[]));
        let (items, summary) = read(&readers, PassKind::Incremental { since, overlap })
            .await
            .expect("pass");
        assert!(items.is_empty());
        assert_eq!(
            summary.watermark, None,
            "nothing seen: keep the old watermark"
        );
        let requests = server.requests(&common::invoke_path());
        let body: Value =
            serde_json::from_slice(&requests.last().expect("a request").body).expect("json");
        assert_eq!(
            body["CmdletInput"]["Parameters"]["Filter"],
            format!("IsExchangeCloudManaged -eq 'True' -and WhenChangedUTC -ge '{from}'")
        );
    }
}

#[test]
fn full_pass_when_no_watermark_or_the_last_full_pass_is_old() {
    let now = time::OffsetDateTime::now_utc();
    let day = Duration::from_secs(86_400);
    let mark = Watermark::parse("2024-04-10T08:56:22Z");
    assert_eq!(choose_pass(None, Some(now), now, day), PassKind::Full);
    assert_eq!(choose_pass(mark, None, now, day), PassKind::Full);
    assert_eq!(
        choose_pass(mark, Some(now - time::Duration::hours(25)), now, day),
        PassKind::Full
    );
    assert_eq!(
        choose_pass(mark, Some(now - time::Duration::hours(23)), now, day),
        PassKind::Incremental {
            since: mark.expect("mark"),
            overlap: true
        }
    );
}

/// A caller-kept set of delivered ids (as the engine keeps one on disk for full passes).
struct Recorded {
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    fail_at: Option<usize>,
}

impl writeback_cloud::DeliveredIds for Recorded {
    fn first_delivery(&mut self, id: &str) -> Result<bool, CloudError> {
        let mut ids = self.ids.lock().unwrap();
        if self.fail_at == Some(ids.len()) {
            return Err(CloudError::DeliveredIds("disk full".into()));
        }
        let id = id.to_ascii_lowercase();
        if ids.contains(&id) {
            return Ok(false);
        }
        ids.push(id);
        Ok(true)
    }

    fn count(&self) -> u64 {
        self.ids.lock().unwrap().len() as u64
    }
}

#[tokio::test]
async fn a_caller_kept_delivered_set_is_what_skips_repeats_and_its_failure_stops_the_pass() {
    let (server, readers) = setup().await;
    let path = common::invoke_path();
    let upper_b = B.to_ascii_uppercase();
    for _ in 0..2 {
        server.push(
            &path,
            page(
                &server,
                vec![
                    mailbox(A, "2024-01-01T00:00:00Z"),
                    mailbox(B, "2024-01-01T00:00:00Z"),
                    // The same mailbox again, its id in capitals: still a repeat.
                    mailbox(&upper_b, "2024-01-01T00:00:00Z"),
                ],
                None,
                &[],
            ),
        );
    }
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut pass = readers.exchange.pass_with(
        PassKind::Full,
        Box::new(Recorded {
            ids: ids.clone(),
            fail_at: None,
        }),
    );
    let mut delivered = Vec::new();
    while let Some(page) = pass.next_page().await.expect("page") {
        delivered.extend(page.mailboxes);
    }
    assert_eq!(ok_ids(&delivered), [A, B]);
    assert_eq!(pass.summary().duplicates_skipped, 1);
    assert_eq!(
        *ids.lock().unwrap(),
        [A.to_ascii_lowercase(), B.to_ascii_lowercase()]
    );

    let mut failing = readers.exchange.pass_with(
        PassKind::Full,
        Box::new(Recorded {
            ids: Default::default(),
            fail_at: Some(1),
        }),
    );
    match failing.next_page().await {
        Err(CloudError::DeliveredIds(detail)) => assert_eq!(detail, "disk full"),
        other => panic!("expected the set's failure, got {other:?}"),
    }
}
