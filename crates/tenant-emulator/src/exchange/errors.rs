//! Exchange admin API error bodies: the outer message is always "Invalid Operation"; the
//! useful text sits in `details[].message` (prefixed with `|ExceptionType|`) and in
//! `innererror.internalexception`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const PARAMETER_BINDING: &str = "System.Management.Automation.ParameterBindingException";
pub const AMBIGUOUS_PARAMETER_SET: &str =
    "Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException";
pub const COMMAND_NOT_FOUND: &str = "System.Management.Automation.CommandNotFoundException";
pub const OBJECT_NOT_FOUND: &str =
    "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
pub const DATA_VALIDATION: &str = "Microsoft.Exchange.Data.DataValidationException";
pub const PROXY_ADDRESS_EXISTS: &str =
    "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException";
pub const INVALID_PAGINATION: &str = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException";

/// A host (the cloud server name Exchange prints in not-found messages).
pub const SERVER_NAME: &str = "AM0PR01A001DC01.EURPR01A001.PROD.OUTLOOK.COM";

pub fn exchange_error(
    status: StatusCode,
    code: &str,
    exception_type: &str,
    message: &str,
) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": "Invalid Operation",
            "details": [{
                "code": "Client",
                "target": "",
                "message": format!("|{exception_type}|{message}"),
            }],
            "innererror": {
                "message": "Invalid Operation",
                "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                "stacktrace": "",
                "internalexception": {
                    "message": message,
                    "type": exception_type,
                    "stacktrace": "",
                },
            },
        }
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
    );
    response
}

pub fn bad_request(exception_type: &str, message: &str) -> Response {
    exchange_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        exception_type,
        message,
    )
}

pub fn not_found(identity: &str) -> Response {
    exchange_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        OBJECT_NOT_FOUND,
        &format!("The operation couldn't be performed because object '{identity}' couldn't be found on '{SERVER_NAME}'."),
    )
}

pub fn unknown_parameter(name: &str) -> Response {
    bad_request(
        PARAMETER_BINDING,
        &format!("A parameter cannot be found that matches parameter name '{name}'."),
    )
}

pub fn invalid_parameter_value(name: &str, detail: &str) -> Response {
    bad_request(
        PARAMETER_BINDING,
        &format!("Cannot bind parameter '{name}'. {detail}"),
    )
}

/// What Exchange answers to a replayed or stale nextLink.
pub fn expired_pagination() -> Response {
    bad_request(
        INVALID_PAGINATION,
        "Expired or Invalid pagination request. Default Expiry time is 00:30:00",
    )
}

/// Exchange Online's 401: no JSON body, the reason is in `WWW-Authenticate`.
pub fn unauthorized() -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"invalid_token\""),
    );
    response.headers_mut().insert(
        "x-ms-diagnostics",
        HeaderValue::from_static("2000003;reason=\"The token has an invalid signature, audience or is expired.\";error_category=\"invalid_token\""),
    );
    response
}
