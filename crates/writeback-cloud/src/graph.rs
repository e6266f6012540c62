//! Microsoft Graph `users/delta`: the identity anchors that tie a cloud user to its AD object.
//!
//! The caller owns the cursor: it persists the [`DeltaCursor`] of every page (a nextLink while
//! a round is in progress, the deltaLink once it is complete) and hands it back next time.
//! Links are followed exactly as returned. When Graph says the sync state is gone
//! (`syncStateNotFound`, `resyncRequired`, 410 Gone), the reader restarts from
//! [`DeltaCursor::Initial`] itself and marks the page `resynced`, so the caller knows that this
//! round is a full enumeration and that users it never sees again were removed.

use crate::auth::TokenProvider;
use crate::config::CloudConfig;
use crate::error::CloudError;
use crate::graph_parse::{parse_delta_page, DeltaPage};
use crate::http::{endpoint_label, HttpClient, HttpResponse};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The properties requested on the first call (they are folded into the tokens after it).
pub const DELTA_SELECT: &str = "id,onPremisesImmutableId,onPremisesSecurityIdentifier,\
onPremisesDistinguishedName,onPremisesSamAccountName,onPremisesDomainName,onPremisesSyncEnabled,\
mail,proxyAddresses,userPrincipalName";

/// Where the next delta call starts; serde-able so the state store can keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "url", rename_all = "snake_case")]
pub enum DeltaCursor {
    /// No state: the next call enumerates every user.
    Initial,
    /// A round in progress: the nextLink of the last page read.
    Next(String),
    /// A completed round: the deltaLink, which returns changes since.
    Delta(String),
}

impl DeltaCursor {
    pub fn is_round_complete(&self) -> bool {
        matches!(self, Self::Delta(_))
    }
}

/// Reads `users/delta`.
#[derive(Debug, Clone)]
pub struct GraphReader {
    http: HttpClient,
    tokens: Arc<TokenProvider>,
    resource: String,
    initial_url: String,
}

impl GraphReader {
    pub fn new(http: HttpClient, tokens: Arc<TokenProvider>, config: &CloudConfig) -> Self {
        let resource = config.endpoints().graph;
        let initial_url = format!("{resource}/v1.0/users/delta?$select={DELTA_SELECT}");
        Self {
            http: http.for_service("graph"),
            tokens,
            resource,
            initial_url,
        }
    }

    pub fn initial_url(&self) -> &str {
        &self.initial_url
    }

    /// Reads one page from `cursor`. The returned page's `cursor` is what to persist next.
    pub async fn next_page(&self, cursor: &DeltaCursor) -> Result<DeltaPage, CloudError> {
        let url = match cursor {
            DeltaCursor::Initial => self.initial_url.as_str(),
            DeltaCursor::Next(url) | DeltaCursor::Delta(url) => url.as_str(),
        };
        let response = self.get(url).await?;
        if let Some(reason) = resync_reason(&response) {
            if *cursor == DeltaCursor::Initial {
                return Err(CloudError::ResyncRequired { reason });
            }
            tracing::warn!(
                reason = %reason,
                "Graph delta sync state lost; restarting a full users/delta round \
                 (removals must be reconciled against this round)"
            );
            let response = self.get(&self.initial_url).await?;
            let mut page = self.decode(&self.initial_url, &response)?;
            page.resynced = true;
            return Ok(page);
        }
        self.decode(url, &response)
    }

    /// Reads from `cursor` until the round completes, handing every page to `on_page` (which
    /// should persist `page.cursor`). Returns the deltaLink cursor and whether a resync happened.
    pub async fn read_round<F>(
        &self,
        cursor: DeltaCursor,
        mut on_page: F,
    ) -> Result<(DeltaCursor, bool), CloudError>
    where
        F: FnMut(&DeltaPage),
    {
        let mut cursor = cursor;
        let mut resynced = false;
        loop {
            let page = self.next_page(&cursor).await?;
            resynced |= page.resynced;
            on_page(&page);
            cursor = page.cursor;
            if cursor.is_round_complete() {
                return Ok((cursor, resynced));
            }
        }
    }

    fn decode(&self, url: &str, response: &HttpResponse) -> Result<DeltaPage, CloudError> {
        let endpoint = endpoint_label(&Method::GET, url);
        if !response.status.is_success() {
            let message = match crate::json::graph_error(&response.body) {
                Some((code, message)) => format!("{code}: {message}"),
                None => response.body_excerpt(),
            };
            return Err(CloudError::HttpStatus {
                endpoint,
                status: response.status.as_u16(),
                message,
            });
        }
        parse_delta_page(&response.body).map_err(|(path, detail)| CloudError::MalformedResponse {
            endpoint,
            path,
            detail,
        })
    }

    async fn get(&self, url: &str) -> Result<HttpResponse, CloudError> {
        let mut retried_unauthorized = false;
        loop {
            let token = self.tokens.token(&self.resource).await?;
            let response = self
                .http
                .execute(Method::GET, url, |request| {
                    request
                        .bearer_auth(token.expose())
                        .header("Accept", "application/json")
                        // Minimal mode sends `null` for a property cleared since the last
                        // round; the default mode just leaves it out, which reads as
                        // "unchanged" and would keep a stale anchor forever.
                        .header("Prefer", "return=minimal")
                })
                .await?;
            if response.status == StatusCode::UNAUTHORIZED && !retried_unauthorized {
                retried_unauthorized = true;
                tracing::warn!(endpoint = %endpoint_label(&Method::GET, url),
                    "Graph answered 401; retrying once with a new token");
                self.tokens.invalidate(&self.resource, &token).await;
                continue;
            }
            return Ok(response);
        }
    }
}

/// Why the delta state must be rebuilt, if the answer says so.
pub fn resync_reason(response: &HttpResponse) -> Option<String> {
    if response.status == StatusCode::GONE {
        return Some("HTTP 410 Gone".into());
    }
    if !response.status.is_client_error() {
        return None;
    }
    let (code, message) = crate::json::graph_error(&response.body)?;
    let is_resync = code.eq_ignore_ascii_case("syncStateNotFound")
        || code.eq_ignore_ascii_case("resyncRequired");
    is_resync.then(|| format!("{code}: {message}"))
}
