//! Exchange Online's admin API: `POST /adminapi/beta/{tenant}/InvokeCommand`.
//!
//! Paging: a truncated Get-Mailbox answer carries `@odata.nextLink`
//! (`…/InvokeCommand?$skiptoken=…`). The ExchangeOnlineManagement module re-POSTs the same body to
//! that URL; a plain GET of the link works too (the token carries the parameters).

// Handlers fail with the finished HTTP error response (built only on the error path), so
// `Result<_, Response>` is the natural type here despite Response's size.
#![allow(clippy::result_large_err)]

pub mod candidates;
pub mod errors;
pub mod mailbox_json;
pub mod set_mailbox;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{check_bearer, Resource};
use crate::clock::now_unix_seconds;
use crate::faults::FaultKind;
use crate::opath;
use crate::state::Shared;

use errors::{
    bad_request, invalid_parameter_value, unknown_parameter, AMBIGUOUS_PARAMETER_SET,
    COMMAND_NOT_FOUND,
};

/// Get-Mailbox's default `-ResultSize`, as in Exchange.
pub const DEFAULT_RESULT_SIZE: u64 = 1000;
const MAX_PAGE_SIZE: usize = 1000;
/// How long a nextLink stays usable (Exchange says "Default Expiry time is 00:30:00").
const PAGE_TOKEN_LIFETIME_SECS: i64 = 30 * 60;
const MORE_RESULTS_WARNING: &str = "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.";
const TRUNCATED_WARNING: &str = "The result set was truncated by the server. Follow @odata.nextLink to read the remaining results.";

#[derive(Debug, Serialize, Deserialize)]
struct PageToken {
    after: String,
    returned: u64,
    issued: i64,
    cmdlet: String,
    params: Map<String, Value>,
}

impl PageToken {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }
    fn decode(s: &str) -> Option<PageToken> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

pub(crate) fn tenant_domain(shared: &Shared) -> String {
    if shared.config.tenant_id.contains('.') {
        shared.config.tenant_id.clone()
    } else {
        "contoso.onmicrosoft.com".to_owned()
    }
}

/// The success envelope every cmdlet answer uses. Field order = the byte order of the names,
/// as Exchange's JSON (and this emulator's earlier map-based answers) have it.
#[derive(Serialize)]
struct Envelope<'a, V> {
    #[serde(rename = "@adminapi.warnings")]
    warnings: &'a [String],
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<&'a str>,
    #[serde(rename = "adminapi.warnings@odata.type")]
    warnings_type: &'static str,
    value: V,
}

/// Answers with the envelope around `value` (a list), encoded in one pass.
pub(crate) fn envelope<V: Serialize>(
    shared: &Shared,
    tenant: &str,
    value: V,
    warnings: Vec<String>,
    next_link: Option<String>,
) -> Response {
    let body = Envelope {
        warnings: &warnings,
        context: format!(
            "{}/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)",
            shared.base_url
        ),
        next_link: next_link.as_deref(),
        warnings_type: "#Collection(String)",
        value,
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the answer: {e}"),
            )
                .into_response()
        }
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
    );
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    headers.insert("rate-limit-limit", HeaderValue::from_static("30000"));
    headers.insert("rate-limit-remaining", HeaderValue::from_static("29999"));
    response
}

#[derive(Deserialize)]
struct CmdletInput {
    #[serde(rename = "CmdletName")]
    cmdlet_name: String,
    #[serde(rename = "Parameters", default)]
    parameters: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct InvokeBody {
    #[serde(rename = "CmdletInput")]
    cmdlet_input: CmdletInput,
}

pub(crate) async fn invoke_command(
    State(shared): State<Arc<Shared>>,
    Path(tenant_segment): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if check_bearer(&shared, &headers, Resource::Exchange).is_err() {
        return errors::unauthorized();
    }
    let tenant_ok = tenant_segment.eq_ignore_ascii_case(&shared.config.tenant_id)
        || tenant_segment.eq_ignore_ascii_case(&shared.read().tenant_guid);
    if !tenant_ok {
        return errors::exchange_error(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            &format!("The organization '{tenant_segment}' could not be found."),
        );
    }
    let token = query
        .get("$skiptoken")
        .or_else(|| query.get("%24skiptoken"));
    let page = match token {
        Some(t) => {
            if shared
                .faults()
                .take(
                    &format!("/adminapi/beta/{tenant_segment}/InvokeCommand"),
                    FaultKind::ExpirePage,
                )
                .is_some()
            {
                shared.stats().faults_injected += 1;
                return errors::expired_pagination();
            }
            match PageToken::decode(t) {
                Some(p)
                    if now_unix_seconds().saturating_sub(p.issued) <= PAGE_TOKEN_LIFETIME_SECS =>
                {
                    Some(p)
                }
                _ => return errors::expired_pagination(),
            }
        }
        None => None,
    };
    let (cmdlet, params) = if method == Method::GET || body.is_empty() {
        match &page {
            Some(p) => (p.cmdlet.clone(), p.params.clone()),
            None => {
                return bad_request(
                    errors::PARAMETER_BINDING,
                    "The request body must contain CmdletInput.",
                )
            }
        }
    } else {
        match serde_json::from_slice::<InvokeBody>(&body) {
            Ok(b) => (
                b.cmdlet_input.cmdlet_name,
                b.cmdlet_input.parameters.unwrap_or_default(),
            ),
            Err(e) => {
                return bad_request(
                    "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    &format!("The request body is not a valid CmdletInput: {e}"),
                )
            }
        }
    };
    *shared.stats().by_cmdlet.entry(cmdlet.clone()).or_insert(0) += 1;
    match cmdlet.to_ascii_lowercase().as_str() {
        "get-mailbox" | "get-exomailbox" => get_mailbox(&shared, &tenant_segment, &headers, params, page),
        "set-mailbox" => set_mailbox::set_mailbox(&shared, &tenant_segment, &params),
        _ => bad_request(
            COMMAND_NOT_FOUND,
            &format!("The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."),
        ),
    }
}

fn page_size_preference(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse().ok())
        })
        .filter(|n: &usize| *n > 0)
}

fn parse_result_size(value: &Value) -> Result<Option<u64>, Response> {
    let invalid = || {
        invalid_parameter_value("ResultSize", &format!("Cannot convert value \"{value}\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\"."))
    };
    match value {
        Value::Number(n) => n.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(invalid),
        Value::String(s) if s.eq_ignore_ascii_case("unlimited") => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

fn string_param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn get_mailbox(
    shared: &Shared,
    tenant_segment: &str,
    headers: &HeaderMap,
    params: Map<String, Value>,
    page: Option<PageToken>,
) -> Response {
    const KNOWN: [&str; 7] = [
        "Identity",
        "Filter",
        "ResultSize",
        "PropertySets",
        "Properties",
        "RecipientTypeDetails",
        "Anr",
    ];
    if let Some(unknown) = params
        .keys()
        .find(|k| !KNOWN.iter().any(|n| n.eq_ignore_ascii_case(k)))
    {
        return unknown_parameter(unknown);
    }
    let identity = string_param(&params, "Identity");
    let filter_text = string_param(&params, "Filter");
    if identity.is_some() && (filter_text.is_some() || string_param(&params, "Anr").is_some()) {
        return bad_request(
            AMBIGUOUS_PARAMETER_SET,
            "Parameter set cannot be resolved using the specified named parameters.",
        );
    }
    let filter = match filter_text {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => match opath::parse(f) {
            Ok(expr) => Some(expr),
            Err(e) => return bad_request(errors::PARAMETER_BINDING, &e.0),
        },
        Some(other) => {
            return invalid_parameter_value(
                "Filter",
                &format!("Cannot convert value \"{other}\" to type \"System.String\"."),
            )
        }
    };
    let result_size = match string_param(&params, "ResultSize") {
        None => Some(DEFAULT_RESULT_SIZE),
        Some(v) => match parse_result_size(v) {
            Ok(size) => size,
            Err(r) => return r,
        },
    };
    let type_filter: Vec<String> = match string_param(&params, "RecipientTypeDetails") {
        None => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        Some(_) => return invalid_parameter_value("RecipientTypeDetails", "Invalid value."),
    };
    let anr = string_param(&params, "Anr")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let domain = tenant_domain(shared);
    let tenant = shared.read();

    if let Some(identity) = identity {
        let id_text = identity
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| identity.to_string());
        return match tenant
            .resolve_mailbox(&id_text)
            .and_then(|g| tenant.mailboxes.get(g))
        {
            Some(m) => envelope(
                shared,
                tenant_segment,
                [mailbox_json::MailboxJson {
                    mailbox: m,
                    tenant_domain: &domain,
                }],
                Vec::new(),
                None,
            ),
            None => errors::not_found(&id_text),
        };
    }

    let page_size = page_size_preference(headers)
        .unwrap_or(shared.config.exchange_page_size)
        .clamp(1, MAX_PAGE_SIZE);
    let returned_before = page.as_ref().map_or(0, |p| p.returned);
    let remaining = result_size.map(|r| r.saturating_sub(returned_before));
    let mut limit = remaining.map_or(page_size, |r| {
        usize::try_from(r).unwrap_or(usize::MAX).min(page_size)
    });
    let path = format!("/adminapi/beta/{tenant_segment}/InvokeCommand");
    let truncated = shared.faults().take(&path, FaultKind::Truncate).is_some();
    if truncated {
        shared.stats().faults_injected += 1;
        limit = (limit / 2).max(1);
    }
    let after = page.as_ref().map(|p| p.after.as_str());
    let mut value = Vec::new();
    let mut last = None;
    let mut more = false;
    for mailbox in candidates::candidates(&tenant, filter.as_ref(), after, limit) {
        let keep = filter.as_ref().is_none_or(|f| f.matches(mailbox))
            && (type_filter.is_empty()
                || type_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(mailbox.recipient_type_details.as_str())))
            && anr.as_ref().is_none_or(|a| {
                [
                    &mailbox.name,
                    &mailbox.alias,
                    &mailbox.display_name,
                    &mailbox.user_principal_name,
                ]
                .iter()
                .any(|v| v.to_lowercase().starts_with(a.as_str()))
            });
        if !keep {
            continue;
        }
        if value.len() >= limit {
            more = true;
            break;
        }
        value.push(mailbox_json::MailboxJson {
            mailbox,
            tenant_domain: &domain,
        });
        last = Some(mailbox.guid.clone());
    }
    let returned = returned_before + u64::try_from(value.len()).unwrap_or(0);
    let result_size_reached = result_size.is_some_and(|r| returned >= r);
    let mut warnings = Vec::new();
    let mut next_link = None;
    if more && result_size_reached {
        warnings.push(MORE_RESULTS_WARNING.to_owned());
    } else if more {
        if truncated {
            warnings.push(TRUNCATED_WARNING.to_owned());
        }
        let token = PageToken {
            after: last.unwrap_or_default(),
            returned,
            issued: now_unix_seconds(),
            cmdlet: "Get-Mailbox".into(),
            params,
        };
        next_link = Some(format!(
            "{}{path}?$skiptoken={}",
            shared.base_url,
            token.encode()
        ));
    }
    // Encoded while the read lock is held: the page borrows the mailboxes instead of copying them.
    let response = envelope(shared, tenant_segment, value, warnings, next_link);
    drop(tenant);
    response
}
