//! Reader of all cloud-managed mailboxes through the Exchange Online admin API (`Get-Mailbox`).
//!
//! A pass is pulled page by page ([`MailboxPass::next_page`]), so memory depends on the page
//! size, not on the tenant: the only state kept across pages is the set of ids already emitted,
//! which lets a restarted query skip what was already delivered. It is a [`DeliveredIds`]: in
//! memory by default (16 bytes per mailbox, fine for incremental passes), or wherever the caller
//! keeps it (the engine's full passes keep it on disk, in the pass's scope snapshot).

use crate::auth::TokenProvider;
use crate::config::CloudConfig;
use crate::error::{CloudError, MailboxError};
use crate::exchange_parse::{parse_mailbox, MailboxPageEnvelope, Watermark};
use crate::http::{endpoint_label, HttpClient, HttpResponse};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use writeback_core::Mailbox;

/// Exchange's well-known system mailbox that routes app-only admin API calls.
const ANCHOR_MAILBOX_GUID: &str = "bb558c35-97f1-4cb9-8ff7-d53741dc928c";
const CLOUD_MANAGED_FILTER: &str = "IsExchangeCloudManaged -eq 'True'";
const EXPIRED_PAGINATION: &str = "expired or invalid pagination request";

/// Which mailboxes a pass asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Every cloud-managed mailbox.
    Full,
    /// Those changed at or after `since`; with `overlap`, at or after `since` minus the
    /// configured overlap (changes that became visible late: clock skew, replication lag).
    Incremental { since: Watermark, overlap: bool },
}

/// Picks the next pass: full when there is no watermark yet or the last full pass is older than
/// `full_pass_interval` (a changed mailbox whose WhenChangedUTC is wrong is still caught),
/// incremental otherwise.
pub fn choose_pass(
    watermark: Option<Watermark>,
    last_full_pass: Option<OffsetDateTime>,
    now: OffsetDateTime,
    full_pass_interval: Duration,
) -> PassKind {
    let interval = time::Duration::try_from(full_pass_interval).unwrap_or(time::Duration::MAX);
    match (watermark, last_full_pass) {
        (Some(since), Some(last)) if now - last < interval => PassKind::Incremental {
            since,
            overlap: true,
        },
        _ => PassKind::Full,
    }
}

/// One page of a pass, as delivered to the caller.
#[derive(Debug, Default)]
pub struct MailboxPage {
    pub mailboxes: Vec<Result<Mailbox, MailboxError>>,
    /// `@adminapi.warnings` of the page (non-empty means "truncated, more follows").
    pub warnings: Vec<String>,
}

/// How a pass went; the caller decides whether to persist `watermark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassSummary {
    pub kind: PassKind,
    pub mailboxes: u64,
    pub mailbox_errors: u64,
    /// Mailboxes a restarted query delivered again and that were skipped.
    pub duplicates_skipped: u64,
    pub restarts: u32,
    /// False when the last page still carried warnings but no nextLink: Exchange cut the
    /// result short and there is no way to get the rest in this pass.
    pub complete: bool,
    /// Max `WhenChangedUTC` seen; `None` when the pass is incomplete or saw no dated mailbox
    /// (then the previous watermark stays).
    pub watermark: Option<Watermark>,
}

/// Reads cloud-managed mailboxes.
#[derive(Debug, Clone)]
pub struct ExchangeReader {
    http: HttpClient,
    tokens: Arc<TokenProvider>,
    resource: String,
    invoke_url: String,
    anchor_mailbox: String,
    page_size: u32,
    overlap: Duration,
    max_restarts: u32,
}

impl ExchangeReader {
    pub fn new(http: HttpClient, tokens: Arc<TokenProvider>, config: &CloudConfig) -> Self {
        let resource = config.endpoints().exchange;
        let invoke_url = format!(
            "{resource}/adminapi/beta/{}/InvokeCommand",
            config.tenant_id
        );
        Self {
            http: http.for_service("exchange"),
            tokens,
            resource,
            invoke_url,
            anchor_mailbox: format!(
                "APP:SystemMailbox{{{ANCHOR_MAILBOX_GUID}}}@{}",
                config.tenant_id
            ),
            page_size: config.exchange_page_size,
            overlap: config.watermark_overlap(),
            max_restarts: config.max_query_restarts,
        }
    }

    /// The OPATH filter a pass of this kind sends.
    pub fn filter(&self, kind: PassKind) -> String {
        match kind {
            PassKind::Full => CLOUD_MANAGED_FILTER.to_string(),
            PassKind::Incremental { since, overlap } => format!(
                "{CLOUD_MANAGED_FILTER} -and WhenChangedUTC -ge '{}'",
                if overlap {
                    since.minus(self.overlap)
                } else {
                    since
                }
                .to_filter_literal()
            ),
        }
    }

    /// Starts a pass; nothing is sent until the first [`MailboxPass::next_page`]. The pass
    /// owns what it needs (the delivered ids in memory), so a caller may keep it between
    /// cycles and read it a few pages at a time.
    pub fn pass(&self, kind: PassKind) -> MailboxPass<'static> {
        self.pass_with(kind, Box::new(SeenIds::default()))
    }

    /// [`ExchangeReader::pass`], remembering the delivered ids in `delivered`.
    pub fn pass_with<'a>(
        &self,
        kind: PassKind,
        delivered: Box<dyn DeliveredIds + Send + 'a>,
    ) -> MailboxPass<'a> {
        let body = json!({
            "CmdletInput": {
                "CmdletName": "Get-Mailbox",
                "Parameters": { "Filter": self.filter(kind), "ResultSize": "Unlimited" }
            }
        });
        MailboxPass {
            reader: self.clone(),
            body,
            next: Some(self.invoke_url.clone()),
            seen: delivered,
            summary: PassSummary {
                kind,
                mailboxes: 0,
                mailbox_errors: 0,
                duplicates_skipped: 0,
                restarts: 0,
                complete: true,
                watermark: None,
            },
        }
    }

    /// Reads a whole pass, handing each page to `on_page`.
    pub async fn read_all<F>(
        &self,
        kind: PassKind,
        mut on_page: F,
    ) -> Result<PassSummary, CloudError>
    where
        F: FnMut(MailboxPage),
    {
        let mut pass = self.pass(kind);
        while let Some(page) = pass.next_page().await? {
            on_page(page);
        }
        Ok(pass.into_summary())
    }

    /// One mailbox by identity (ExternalDirectoryObjectId, SMTP address, Guid, ...): the
    /// on-demand path and retries of single mailboxes. `None` when Exchange knows no such
    /// mailbox; `Some(Err)` when it exists but cannot be used (e.g. not cloud-managed).
    pub async fn lookup(
        &self,
        identity: &str,
    ) -> Result<Option<Result<Mailbox, MailboxError>>, CloudError> {
        let body = json!({
            "CmdletInput": {
                "CmdletName": "Get-Mailbox",
                "Parameters": { "Identity": identity }
            }
        });
        let endpoint = endpoint_label(&Method::POST, &self.invoke_url);
        let response = self.post(&self.invoke_url, &body).await?;
        if response.status == StatusCode::NOT_FOUND
            || String::from_utf8_lossy(&response.body).contains("ManagementObjectNotFoundException")
        {
            return Ok(None);
        }
        let envelope = decode_page(endpoint, &response)?;
        Ok(envelope
            .value
            .first()
            .map(|object| parse_mailbox(object).map(|parsed| parsed.mailbox)))
    }

    async fn post(&self, url: &str, body: &serde_json::Value) -> Result<HttpResponse, CloudError> {
        let mut retried_unauthorized = false;
        loop {
            let token = self.tokens.token(&self.resource).await?;
            let response = self
                .http
                .execute(Method::POST, url, |request| {
                    request
                        .bearer_auth(token.expose())
                        .header("X-AnchorMailbox", &self.anchor_mailbox)
                        .header("X-CmdletName", "Get-Mailbox")
                        .header("X-ResponseFormat", "json")
                        .header("X-SerializationLevel", "Partial")
                        .header("X-ClientApplication", "writeback")
                        .header("Prefer", format!("odata.maxpagesize={}", self.page_size))
                        .header("Accept", "application/json")
                        .json(body)
                })
                .await?;
            // One retry with a fresh token: a cached token can be revoked before it expires.
            if response.status == StatusCode::UNAUTHORIZED && !retried_unauthorized {
                retried_unauthorized = true;
                tracing::warn!(endpoint = %endpoint_label(&Method::POST, url),
                    "Exchange answered 401; retrying once with a new token");
                self.tokens.invalidate(&self.resource, &token).await;
                continue;
            }
            return Ok(response);
        }
    }
}

/// An Exchange answer that is not a page.
fn status_error(endpoint: String, response: &HttpResponse) -> CloudError {
    let message =
        crate::json::exchange_error(&response.body).unwrap_or_else(|| response.body_excerpt());
    CloudError::HttpStatus {
        endpoint,
        status: response.status.as_u16(),
        message,
    }
}

/// A successful InvokeCommand answer's envelope, or the error the answer stands for.
fn decode_page(
    endpoint: String,
    response: &HttpResponse,
) -> Result<MailboxPageEnvelope, CloudError> {
    if !response.status.is_success() {
        return Err(status_error(endpoint, response));
    }
    crate::json::from_slice(&response.body).map_err(|(path, detail)| {
        CloudError::MalformedResponse {
            endpoint,
            path,
            detail,
        }
    })
}

fn is_expired_pagination(response: &HttpResponse) -> bool {
    response.status == StatusCode::BAD_REQUEST
        && String::from_utf8_lossy(&response.body)
            .to_ascii_lowercase()
            .contains(EXPIRED_PAGINATION)
}

/// A pass in progress.
pub struct MailboxPass<'a> {
    /// A clone (shared HTTP client and tokens): the pass does not borrow its reader.
    reader: ExchangeReader,
    body: serde_json::Value,
    next: Option<String>,
    seen: Box<dyn DeliveredIds + Send + 'a>,
    summary: PassSummary,
}

impl std::fmt::Debug for MailboxPass<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxPass")
            .field("next", &self.next)
            .field("delivered", &self.seen.count())
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl MailboxPass<'_> {
    /// The next page, or `None` when the pass is over.
    pub async fn next_page(&mut self) -> Result<Option<MailboxPage>, CloudError> {
        loop {
            let Some(url) = self.next.take() else {
                return Ok(None);
            };
            let endpoint = endpoint_label(&Method::POST, &url);
            let response = self.reader.post(&url, &self.body).await?;
            let is_first = url == self.reader.invoke_url;
            if !is_first && is_expired_pagination(&response) {
                self.restart(&endpoint)?;
                continue;
            }
            let envelope = decode_page(endpoint, &response)?;
            return self.accept(envelope).map(Some);
        }
    }

    fn restart(&mut self, endpoint: &str) -> Result<(), CloudError> {
        self.summary.restarts = self.summary.restarts.saturating_add(1);
        if self.summary.restarts > self.reader.max_restarts {
            return Err(CloudError::TooManyRestarts {
                endpoint: endpoint.to_string(),
                restarts: self.reader.max_restarts,
                reason: "Expired or Invalid pagination request".into(),
            });
        }
        tracing::warn!(
            endpoint = %endpoint,
            restart = self.summary.restarts,
            already_delivered = self.seen.count(),
            "Exchange pagination expired; restarting the query and skipping mailboxes already delivered"
        );
        self.next = Some(self.reader.invoke_url.clone());
        Ok(())
    }

    fn accept(&mut self, envelope: MailboxPageEnvelope) -> Result<MailboxPage, CloudError> {
        let mut page = MailboxPage {
            mailboxes: Vec::with_capacity(envelope.value.len()),
            warnings: envelope.warnings,
        };
        for object in &envelope.value {
            let parsed = parse_mailbox(object);
            let id = match &parsed {
                Ok(parsed) => Some(parsed.mailbox.cloud_id.as_str()),
                Err(error) => error.id.as_deref(),
            };
            if let Some(id) = id {
                if !self.seen.first_delivery(id)? {
                    self.summary.duplicates_skipped += 1;
                    continue;
                }
            }
            match parsed {
                Ok(parsed) => {
                    self.summary.mailboxes += 1;
                    if let Some(when) = parsed.when_changed {
                        self.summary.watermark = self.summary.watermark.max(Some(when));
                    }
                    page.mailboxes.push(Ok(parsed.mailbox));
                }
                Err(error) => {
                    self.summary.mailbox_errors += 1;
                    tracing::warn!(%error, "skipping a mailbox that cannot be read");
                    page.mailboxes.push(Err(error));
                }
            }
        }
        match (envelope.next_link, page.warnings.is_empty()) {
            (Some(link), _) => self.next = Some(link),
            (None, false) => {
                tracing::warn!(warnings = ?page.warnings,
                    "Exchange flagged the last page as incomplete and gave no nextLink; \
                     the pass is incomplete and its watermark will not be offered");
                self.summary.complete = false;
            }
            (None, true) => {}
        }
        Ok(page)
    }

    /// The summary so far (final once `next_page` returned `None`).
    pub fn summary(&self) -> &PassSummary {
        &self.summary
    }

    /// Counts `id` as delivered, so this pass skips it if Exchange lists it later: for a caller
    /// that already dealt with the mailbox through another pass.
    pub fn mark_delivered(&mut self, id: &str) -> Result<(), CloudError> {
        self.seen.first_delivery(id).map(drop)
    }

    pub fn into_summary(self) -> PassSummary {
        let mut summary = self.summary;
        if !summary.complete {
            summary.watermark = None;
        }
        summary
    }
}

/// The ids a pass has delivered so far.
pub trait DeliveredIds {
    /// Records `id`; true when it was not delivered before in this pass. GUIDs compare
    /// case-insensitively.
    fn first_delivery(&mut self, id: &str) -> Result<bool, CloudError>;

    /// How many distinct ids were delivered.
    fn count(&self) -> u64;
}

impl DeliveredIds for SeenIds {
    fn first_delivery(&mut self, id: &str) -> Result<bool, CloudError> {
        Ok(self.insert(id))
    }

    fn count(&self) -> u64 {
        u64::try_from(self.len()).unwrap_or(u64::MAX)
    }
}

/// Ids already delivered in this pass, in memory: GUIDs as 16-byte keys, anything else as text.
#[derive(Debug, Default)]
pub struct SeenIds {
    guids: HashSet<u128>,
    others: HashSet<String>,
}

impl SeenIds {
    /// True when `id` was not seen before. GUIDs compare case-insensitively.
    pub fn insert(&mut self, id: &str) -> bool {
        match uuid::Uuid::parse_str(id) {
            Ok(guid) => self.guids.insert(guid.as_u128()),
            Err(_) => self.others.insert(id.to_string()),
        }
    }

    pub fn len(&self) -> usize {
        self.guids.len() + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
