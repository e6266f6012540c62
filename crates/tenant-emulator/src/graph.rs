//! Microsoft Graph `GET /v1.0/users/delta`, with Graph's paging, tokens and error shapes.

// Handlers fail with the finished HTTP error response (built only on the error path), so
// `Result<_, Response>` is the natural type here despite Response's size.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{check_bearer, Resource};
use crate::clock::{format_graph_date, now_ticks, now_unix_seconds};
use crate::faults::FaultKind;
use crate::model::{Tenant, User, UserProp, GRAPH_DEFAULT_SELECT};
use crate::state::Shared;

const DELTA_PATH: &str = "/v1.0/users/delta";
const MAX_PAGE_SIZE: usize = 1000;
const GRAPH_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Graph's error body, `{"error":{"code","message","innerError":{…}}}`; a 429 carries the
/// fields of Graph's documented throttling sample.
pub fn graph_error_with_inner(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let date = format_graph_date(now_ticks());
    let inner = if status == StatusCode::TOO_MANY_REQUESTS {
        json!({"code": "429", "date": date, "message": "Please retry after", "request-id": request_id, "status": "429"})
    } else {
        json!({"date": date, "request-id": request_id, "client-request-id": request_id})
    };
    let body = json!({"error": {"code": code, "message": message, "innerError": inner}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", v);
    }
    response
}

pub(crate) fn unauthorized(problem: crate::auth::TokenProblem) -> Response {
    let mut response = graph_error_with_inner(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        problem.graph_message(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""),
    );
    response
}

fn sync_state_not_found() -> Response {
    graph_error_with_inner(
        StatusCode::BAD_REQUEST,
        "syncStateNotFound",
        "The sync state generation is not found or has expired. Please do a full sync with a fresh delta query.",
    )
}

/// What a skiptoken/deltatoken stands for. Base64url JSON: opaque to clients, as Graph's are.
#[derive(Debug, Serialize, Deserialize)]
struct DeltaState {
    /// Changes with a sequence above this are part of the round.
    since: u64,
    /// Set while paging (skiptoken): the round's snapshot, which becomes the next round's `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upto: Option<u64>,
    /// Last id returned (pages walk users in id order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    select: Vec<String>,
    epoch: u64,
    resync: u64,
    issued: i64,
}

impl DeltaState {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(token: &str) -> Option<DeltaState> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn parse_select(raw: Option<&String>) -> Result<Vec<String>, Response> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("id") {
            continue;
        }
        match UserProp::from_graph_name(name) {
            Some(p) if !names.iter().any(|n: &String| n == p.graph_name()) => names.push(p.graph_name().to_owned()),
            Some(_) => {}
            None => {
                return Err(graph_error_with_inner(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!("Could not find a property named '{name}' on type 'Microsoft.DirectoryServices.User'."),
                ))
            }
        }
    }
    Ok(names)
}

fn preferences(headers: &HeaderMap) -> (Option<usize>, bool) {
    let mut page_size = None;
    let mut minimal = false;
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for pref in value.split(',').map(str::trim) {
            if let Some(n) = pref.strip_prefix("odata.maxpagesize=") {
                page_size = n.trim().parse::<usize>().ok().filter(|n| *n > 0);
            } else if pref.eq_ignore_ascii_case("return=minimal") {
                minimal = true;
            }
        }
    }
    (page_size, minimal)
}

pub(crate) async fn users_delta(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(problem) = check_bearer(&shared, &headers, Resource::Graph) {
        return unauthorized(problem);
    }
    let Ok(Query(query)) = query else {
        return graph_error_with_inner(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid query string.",
        );
    };
    let (requested_page_size, minimal) = preferences(&headers);
    let page_size = requested_page_size
        .unwrap_or(shared.config.graph_page_size)
        .clamp(1, MAX_PAGE_SIZE);
    let tenant = shared.read();
    let token = query.get("$skiptoken").or_else(|| query.get("$deltatoken"));
    let is_skip = query.contains_key("$skiptoken");
    let mut first_request_select = None;
    let state = match token {
        Some(t) if !is_skip && t.eq_ignore_ascii_case("latest") => {
            let select = match parse_select(query.get("$select")) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let state = DeltaState {
                since: tenant.seq,
                upto: None,
                after: None,
                select,
                epoch: tenant.delta_epoch,
                resync: tenant.resync_epoch,
                issued: now_unix_seconds(),
            };
            let body = json!({
                "@odata.context": format!("{}/v1.0/$metadata#users", shared.base_url),
                "@odata.deltaLink": format!("{}{DELTA_PATH}?$deltatoken={}", shared.base_url, state.encode()),
                "value": [],
            });
            return graph_json(&body, None, false);
        }
        Some(t) => {
            if shared
                .faults()
                .take(DELTA_PATH, FaultKind::ExpirePage)
                .is_some()
            {
                shared.stats().faults_injected += 1;
                return sync_state_not_found();
            }
            let Some(state) = DeltaState::decode(t) else {
                return sync_state_not_found();
            };
            if is_skip != state.upto.is_some() {
                return sync_state_not_found();
            }
            let age = now_unix_seconds().saturating_sub(state.issued);
            if state.epoch != tenant.delta_epoch
                || u64::try_from(age).unwrap_or(0) > shared.delta_token_lifetime_secs()
            {
                return sync_state_not_found();
            }
            if state.resync != tenant.resync_epoch {
                return resync_required(&shared, &state.select);
            }
            match state.upto {
                Some(_) => state,
                None => DeltaState {
                    upto: Some(tenant.seq),
                    after: None,
                    issued: now_unix_seconds(),
                    ..state
                },
            }
        }
        None => {
            let select = match parse_select(query.get("$select")) {
                Ok(s) => s,
                Err(r) => return r,
            };
            if !select.is_empty() {
                first_request_select = Some(select.join(","));
            }
            DeltaState {
                since: 0,
                upto: Some(tenant.seq),
                after: None,
                select,
                epoch: tenant.delta_epoch,
                resync: tenant.resync_epoch,
                issued: now_unix_seconds(),
            }
        }
    };
    let limit = match shared.faults().take(DELTA_PATH, FaultKind::Truncate) {
        Some(_) => {
            shared.stats().faults_injected += 1;
            (page_size / 2).max(1)
        }
        None => page_size,
    };
    let selected = selected_in_name_order(&state.select);
    let (value, last_id, more) = build_page(&tenant, &selected, &state, limit, minimal);
    let context = match first_request_select {
        Some(sel) => format!("{}/v1.0/$metadata#users({sel})", shared.base_url),
        None => format!("{}/v1.0/$metadata#users", shared.base_url),
    };
    let upto = state.upto.unwrap_or(tenant.seq);
    let (next_link, delta_link) = if more {
        let next = DeltaState {
            after: last_id,
            ..state
        };
        let link = format!(
            "{}{DELTA_PATH}?$skiptoken={}",
            shared.base_url,
            next.encode()
        );
        (Some(link), None)
    } else {
        let next = DeltaState {
            since: upto,
            upto: None,
            after: None,
            issued: now_unix_seconds(),
            ..state
        };
        let link = format!(
            "{}{DELTA_PATH}?$deltatoken={}",
            shared.base_url,
            next.encode()
        );
        (None, Some(link))
    };
    let page = DeltaPage {
        context,
        delta_link,
        next_link,
        value,
    };
    // Encoded while the read lock is held: the page borrows the users instead of copying them.
    let response = graph_json(&page, requested_page_size.map(|_| page_size), minimal);
    drop(tenant);
    response
}

fn resync_required(shared: &Shared, select: &[String]) -> Response {
    let mut response = graph_error_with_inner(
        StatusCode::GONE,
        "resyncRequired",
        "Resync required. Replace any local cached data with the result of a new delta query.",
    );
    let location = if select.is_empty() {
        format!("{}{DELTA_PATH}", shared.base_url)
    } else {
        format!(
            "{}{DELTA_PATH}?$select={}",
            shared.base_url,
            select.join(",")
        )
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn graph_json(body: &impl Serialize, applied_page_size: Option<usize>, minimal: bool) -> Response {
    let mut response = match serde_json::to_vec(body) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the answer: {e}"),
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(GRAPH_CONTENT_TYPE),
    );
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("request-id", v);
    }
    let mut applied = Vec::new();
    if let Some(n) = applied_page_size {
        applied.push(format!("odata.maxpagesize={n}"));
    }
    if minimal {
        applied.push("return=minimal".to_owned());
    }
    if !applied.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&applied.join(", ")) {
            headers.insert("preference-applied", v);
        }
    }
    response
}

/// A users/delta page, encoded in one pass. Field order = the byte order of the names, which is
/// what the page had when it was built as a `serde_json::Map`.
#[derive(Serialize)]
struct DeltaPage<'a> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.deltaLink", skip_serializing_if = "Option::is_none")]
    delta_link: Option<String>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    value: Vec<UserJson<'a>>,
}

/// One user of a page, written straight from the tenant (no copy of its values).
struct UserJson<'a> {
    user: &'a User,
    /// The selected properties, in name order.
    selected: &'a [UserProp],
    since: u64,
    minimal: bool,
}

#[derive(Serialize)]
struct Removed {
    reason: &'static str,
}

impl Serialize for UserJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let user = self.user;
        let mut map = serializer.serialize_map(None)?;
        if let Some(reason) = user.removed {
            map.serialize_entry(
                "@removed",
                &Removed {
                    reason: reason.as_str(),
                },
            )?;
            map.serialize_entry("id", &user.id)?;
            return map.end();
        }
        let mut id_written = false;
        for prop in self.selected {
            let name = prop.graph_name();
            if !id_written && name > "id" {
                map.serialize_entry("id", &user.id)?;
                id_written = true;
            }
            let value = user.get(*prop);
            let changed = user.changed_seq.get(prop.index()).copied().unwrap_or(0) > self.since;
            match (self.minimal, value) {
                (false, Some(v)) => map.serialize_entry(name, v)?,
                (true, v) if changed => map.serialize_entry(name, &v)?,
                _ => {}
            }
        }
        if !id_written {
            map.serialize_entry("id", &user.id)?;
        }
        map.end()
    }
}

/// Users changed since `state.since`, after the cursor, in id order. A user changed while a round
/// is being paged may show up in this round and again in the next one (Graph allows repeats).
fn build_page<'a>(
    tenant: &'a Tenant,
    selected: &'a [UserProp],
    state: &DeltaState,
    limit: usize,
    minimal: bool,
) -> (Vec<UserJson<'a>>, Option<String>, bool) {
    let cap = crate::change_index::index_cap(tenant.users.len(), limit);
    build_page_with_cap(tenant, selected, state, limit, minimal, cap)
}

/// [`build_page`]; an incremental round with at most `cap` changed users visits only those.
fn build_page_with_cap<'a>(
    tenant: &'a Tenant,
    selected: &'a [UserProp],
    state: &DeltaState,
    limit: usize,
    minimal: bool,
    cap: usize,
) -> (Vec<UserJson<'a>>, Option<String>, bool) {
    use std::ops::Bound;
    let initial = state.since == 0;
    let after = state.after.as_deref();
    let changed = if initial {
        None
    } else {
        tenant.users_changed_after(state.since, cap)
    };
    let candidates: Box<dyn Iterator<Item = &'a User> + '_> = match changed {
        Some(ids) => Box::new(
            ids.into_iter()
                .filter(move |id| after.is_none_or(|a| *id > a))
                .filter_map(|id| tenant.users.get(id)),
        ),
        None => {
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            Box::new(
                tenant
                    .users
                    .range::<str, _>((lower, Bound::Unbounded))
                    .map(|(_, u)| u),
            )
        }
    };
    let mut page = Vec::new();
    let mut last_id = None;
    for user in candidates {
        if user.seq <= state.since || (initial && user.removed.is_some()) {
            continue;
        }
        if page.len() >= limit {
            return (page, last_id, true);
        }
        page.push(UserJson {
            user,
            selected,
            since: state.since,
            minimal,
        });
        last_id = Some(user.id.clone());
    }
    (page, last_id, false)
}

/// `$select` (or Graph's default set) as properties in name order.
fn selected_in_name_order(select: &[String]) -> Vec<UserProp> {
    let names: Vec<&str> = if select.is_empty() {
        GRAPH_DEFAULT_SELECT.to_vec()
    } else {
        select.iter().map(String::as_str).collect()
    };
    let mut props: Vec<UserProp> = names
        .iter()
        .filter_map(|n| UserProp::from_graph_name(n))
        .collect();
    props.sort_by_key(|p| p.graph_name());
    props.dedup();
    props
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
