//! The emulator's own control API under `/_emulator/` (see README.md). Every call needs
//! `Authorization: Bearer <control token>` (the token is in `<state dir>/control-token`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::faults::{FaultRule, FaultSpec};
use crate::model::{RemovedReason, UserProp};
use crate::provisioning::{add_synthetic_mailboxes, create_user_and_mailbox, NewMailbox};
use crate::state::{Shared, Stats};

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/info", get(info))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/stats/reset", post(reset_stats))
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_emulator/mailboxes", post(create_mailbox))
        .route("/_emulator/mailboxes/bench-change", post(bench_change))
        .route("/_emulator/mailboxes/{identity}", patch(modify_mailbox))
        .route(
            "/_emulator/mailboxes/{identity}/cloud-managed",
            post(set_cloud_managed),
        )
        .route(
            "/_emulator/users/{id}",
            patch(modify_user).delete(remove_user),
        )
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/delta/expire", post(expire_delta_tokens))
        .route("/_emulator/delta/resync", post(require_resync))
        .route("/_emulator/delta/token-lifetime", put(set_delta_lifetime))
        .route("/_emulator/import-ad", post(import_ad))
        .route("/_emulator/save", post(save))
        .layer(axum::middleware::from_fn_with_state(
            shared,
            require_control_token,
        ))
}

async fn require_control_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(shared.control_token.as_str()) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "control token missing or wrong (see <state dir>/control-token)",
        );
    }
    next.run(request).await
}

async fn info(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let tenant = shared.read();
    Json(json!({
        "baseUrl": shared.base_url,
        "tenantId": shared.config.tenant_id,
        "tenantGuid": tenant.tenant_guid,
        "clientId": tenant.apps.first().map(|a| a.client_id.clone()),
        "users": tenant.users.values().filter(|u| u.removed.is_none()).count(),
        "mailboxes": tenant.mailboxes.len(),
        "cloudManagedMailboxes": tenant.mailboxes.values().filter(|m| m.is_exchange_cloud_managed).count(),
        "sequence": tenant.seq,
        "deltaTokenLifetimeSeconds": shared.delta_token_lifetime_secs(),
    }))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.stats().clone())
}

async fn reset_stats(State(shared): State<Arc<Shared>>) -> StatusCode {
    *shared.stats() = Stats::default();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(shared.faults().rules))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<FaultSpec>),
    One(FaultSpec),
}

async fn add_faults(State(shared): State<Arc<Shared>>, Json(body): Json<OneOrMany>) -> Response {
    let specs = match body {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => vec![s],
    };
    let mut rules = Vec::new();
    for spec in specs {
        match FaultRule::from_spec(spec) {
            Ok(rule) => rules.push(rule),
            Err(e) => return problem(StatusCode::BAD_REQUEST, e),
        }
    }
    shared.faults().rules.extend(rules.iter().cloned());
    (StatusCode::CREATED, Json(json!(rules))).into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults().rules.clear();
    StatusCode::NO_CONTENT
}

async fn create_mailbox(
    State(shared): State<Arc<Shared>>,
    Json(new): Json<NewMailbox>,
) -> Response {
    if new.user_principal_name.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "userPrincipalName is required");
    }
    let mut tenant = shared.write();
    match create_user_and_mailbox(&mut tenant, new) {
        Ok((id, guid)) => {
            (StatusCode::CREATED, Json(json!({"id": id, "guid": guid}))).into_response()
        }
        Err(e) => problem(StatusCode::CONFLICT, e),
    }
}

/// Body: `{"round": R, "limit": K?}`; see `crate::bench`.
async fn bench_change(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<crate::bench::BenchChangeRequest>,
) -> Response {
    if request.round == 0 {
        return problem(StatusCode::BAD_REQUEST, "round must be a positive integer");
    }
    let started = std::time::Instant::now();
    let summary = crate::bench::bench_change(&mut shared.write(), request);
    tracing::info!(
        "bench-change round {}: {summary:?} in {:?}",
        request.round,
        started.elapsed()
    );
    Json(json!(summary)).into_response()
}

/// Body: Set-Mailbox parameters without `Identity`; errors come back in Exchange's shape.
async fn modify_mailbox(
    State(shared): State<Arc<Shared>>,
    Path(identity): Path<String>,
    Json(mut params): Json<Map<String, Value>>,
) -> Response {
    params.insert("Identity".into(), Value::String(identity));
    let mut tenant = shared.write();
    match crate::exchange::set_mailbox::apply_set_mailbox(&mut tenant, &params) {
        Ok(warnings) => Json(json!({"warnings": warnings})).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_cloud_managed(
    State(shared): State<Arc<Shared>>,
    Path(identity): Path<String>,
    Json(body): Json<Enabled>,
) -> Response {
    let mut params = Map::new();
    params.insert("Identity".into(), Value::String(identity));
    params.insert("IsExchangeCloudManaged".into(), Value::Bool(body.enabled));
    let mut tenant = shared.write();
    match crate::exchange::set_mailbox::apply_set_mailbox(&mut tenant, &params) {
        Ok(warnings) => Json(json!({"warnings": warnings})).into_response(),
        Err(response) => response,
    }
}

/// Body: Graph property names → new values (null clears). Bumps the user's delta sequence.
async fn modify_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let mut props = Vec::new();
    for (name, value) in body {
        match UserProp::from_graph_name(&name) {
            Some(p) => props.push((p, value)),
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("unknown user property '{name}'"),
                )
            }
        }
    }
    let mut tenant = shared.write();
    if tenant.users.get(&id).is_none_or(|u| u.removed.is_some()) {
        return problem(StatusCode::NOT_FOUND, format!("no user '{id}'"));
    }
    let changed = props
        .into_iter()
        .filter(|(p, v)| tenant.set_user_prop(&id, *p, Some(v.clone())))
        .count();
    Json(json!({"changed": changed})).into_response()
}

#[derive(Deserialize)]
struct RemoveQuery {
    reason: Option<String>,
}

async fn remove_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Response {
    let reason = match q.reason.as_deref() {
        None | Some("changed") | Some("soft") => RemovedReason::Changed,
        Some("deleted") | Some("hard") => RemovedReason::Deleted,
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("reason must be 'changed' or 'deleted', not '{other}'"),
            )
        }
    };
    if shared.write().remove_user(&id, reason) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, format!("no user '{id}'"))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ResetBody {
    synthetic_mailboxes: Option<usize>,
}

async fn reset(State(shared): State<Arc<Shared>>, body: Option<Json<ResetBody>>) -> Response {
    let count = body.and_then(|b| b.0.synthetic_mailboxes).unwrap_or(0);
    let mut tenant = shared.write();
    tenant.users.clear();
    tenant.mailboxes.clear();
    tenant.rebuild_indexes();
    // Tokens of the old tenant must not resume against the new one.
    tenant.delta_epoch += 1;
    add_synthetic_mailboxes(&mut tenant, &shared.config.tenant_id, count);
    Json(json!({"mailboxes": tenant.mailboxes.len()})).into_response()
}

async fn expire_delta_tokens(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.write().delta_epoch += 1;
    StatusCode::NO_CONTENT
}

async fn require_resync(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.write().resync_epoch += 1;
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Lifetime {
    seconds: u64,
}

async fn set_delta_lifetime(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Lifetime>,
) -> StatusCode {
    shared
        .delta_token_lifetime_secs
        .store(body.seconds, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ImportBody {
    env: std::path::PathBuf,
    ou: Option<String>,
    #[serde(flatten)]
    options: crate::import::ImportOptions,
}

async fn import_ad(State(shared): State<Arc<Shared>>, Json(body): Json<ImportBody>) -> Response {
    let entries = match crate::import::read_ad(&body.env, body.ou.as_deref()).await {
        Ok(e) => e,
        Err(e) => return problem(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let summary = crate::import::apply_import(&mut shared.write(), &entries, body.options);
    Json(json!(summary)).into_response()
}

async fn save(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.config.persist {
        return problem(
            StatusCode::CONFLICT,
            "the emulator runs without persistence (--no-persist): tenant.json is never written",
        );
    }
    shared.unsaved.store(true, Ordering::SeqCst);
    match shared.save_if_unsaved().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
