//! Sectigo simulator HTTP handlers: the `/products/*` API (faults, login, argument
//! checks, dispatch per endpoint) and the `/_sim/*` admin routes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{self, SimOrderState};
use super::{ReceivedForm, Shared, api, args, report};
use crate::sim::Fault;
use crate::sim::server::{self, ApproveError};

pub(super) fn approve(sh: &Shared, number: u64) -> Result<(), ApproveError> {
    let mut orders = sh.orders_lock();
    let Some(o) = orders.get_mut(&number) else {
        return Err(ApproveError::NotFound(number));
    };
    if o.state != SimOrderState::Pending {
        return Err(ApproveError::NotPending {
            id: number,
            state: format!("{:?}", o.state).to_lowercase(),
        });
    }
    for n in o.names.iter_mut().filter(|n| n.method == "EMAIL") {
        n.validated = true;
    }
    state::issue_if_ready(o, &sh.ca);
    drop(orders);
    sh.changed.notify_waiters();
    Ok(())
}

pub(super) fn reject(sh: &Shared, number: u64, reason: &str) -> bool {
    let mut orders = sh.orders_lock();
    let Some(o) = orders
        .get_mut(&number)
        .filter(|o| o.state == SimOrderState::Pending)
    else {
        return false;
    };
    o.state = SimOrderState::Rejected;
    o.reject_reason = Some(reason.to_string());
    drop(orders);
    sh.changed.notify_waiters();
    true
}

/// The endpoints the simulator serves, as documented for SSL certificates. The seed's
/// heading prints `download/!AutoUpdateDCV` (the Mark Certificate page); the SSL page and
/// the seed's own curl use `/products/!AutoUpdateDCV`, so only that one is served.
const ENDPOINTS: &[&str] = &[
    "!AutoApplySSL",
    "!AutoApplyOrder",
    "!AutoUpdateDCV",
    "!ResendDCVEmail",
    "!GetDCVEmailAddressList",
    "!GetMDCDomainDetails",
    "!WebHostReport",
    "download/CollectSSL",
    "!AutoRefund",
    "!AutoRevokeSSL",
];

pub(super) async fn products(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/products/{endpoint}");
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        // The documents do not say what an unknown path answers; a web server's 404
        // page (HTML, not an errorCode) is the hardest for a client.
        sh.log.record(method.as_str(), &endpoint, &path, 404);
        let page = format!(
            "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>\
             <p>The requested URL {path} was not found on this server.</p></body></html>"
        );
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html; charset=iso-8859-1")],
            page,
        )
            .into_response();
    }
    sh.faults.delay().await;
    let fault = sh.faults.pick();
    if fault == Fault::Drop {
        let dropped = server::dropped();
        sh.log
            .record(method.as_str(), &endpoint, &path, dropped.status().as_u16());
        return dropped;
    }
    let (status, text) = answer(&sh, fault, &method, &endpoint, &body).await;
    sh.log
        .record(method.as_str(), &endpoint, &path, status.as_u16());
    (status, [("content-type", "text/plain;charset=UTF-8")], text).into_response()
}

/// The answer to one API call, after `fault` (never `Fault::Drop`, which `products`
/// carries out) is applied.
async fn answer(
    sh: &Arc<Shared>,
    fault: Fault,
    method: &Method,
    endpoint: &str,
    body: &[u8],
) -> (StatusCode, String) {
    match fault {
        Fault::None | Fault::Drop => {}
        Fault::ServerError => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error".into(),
            );
        }
        Fault::RateLimited => {
            return (StatusCode::OK, api::error(-42, "Call limit reached!", None));
        }
        Fault::Malformed => {
            return (
                StatusCode::OK,
                "<html><body>Down for maintenance</body></html>".into(),
            );
        }
    }
    if method != Method::POST {
        return (
            StatusCode::OK,
            api::error(-17, "Request must be made using POST!", None),
        );
    }
    let form = api::Form(url::form_urlencoded::parse(body).into_owned().collect());
    let stored: Vec<(String, String)> = form
        .0
        .iter()
        .filter(|(k, _)| k != "loginPassword")
        .cloned()
        .collect();
    sh.forms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ReceivedForm {
            endpoint: endpoint.to_string(),
            params: stored,
        });
    if sh.over_limit() {
        return (
            StatusCode::OK,
            api::error(-42, "Call limit reached! Please try again later.", None),
        );
    }
    if form.get("loginName") != Some(sh.opts.login_name.as_str())
        || form.get("loginPassword") != Some(sh.opts.login_password.as_str())
    {
        return (StatusCode::OK, api::error(-16, "Permission denied!", None));
    }
    let spec = match endpoint {
        "!AutoApplySSL" | "!AutoApplyOrder" => args::AUTO_APPLY_SSL,
        "!AutoUpdateDCV" => args::AUTO_UPDATE_DCV,
        "!ResendDCVEmail" => args::RESEND_DCV_EMAIL,
        "!GetDCVEmailAddressList" => args::GET_DCV_EMAIL_ADDRESS_LIST,
        "!GetMDCDomainDetails" => args::GET_MDC_DOMAIN_DETAILS,
        "!WebHostReport" => args::WEB_HOST_REPORT,
        "download/CollectSSL" => args::COLLECT_SSL,
        "!AutoRefund" => args::AUTO_REFUND,
        _ => args::AUTO_REVOKE_SSL,
    };
    if let Err(refusal) = args::check(&form, spec) {
        return (StatusCode::OK, refusal);
    }
    let result = match endpoint {
        "!AutoApplySSL" | "!AutoApplyOrder" => api::auto_apply_ssl(sh, form).await,
        "!AutoUpdateDCV" => api::auto_update_dcv(sh, &form).await,
        "!ResendDCVEmail" => api::resend_dcv_email(sh, &form).await,
        "!GetDCVEmailAddressList" => report::get_dcv_email_address_list(&form),
        "!GetMDCDomainDetails" => report::get_mdc_domain_details(sh, &form),
        "!WebHostReport" => report::web_host_report(sh, &form),
        "download/CollectSSL" => {
            let now = sh.collects_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            sh.max_concurrent_collects.fetch_max(now, Ordering::SeqCst);
            if !sh.opts.collect_latency.is_zero() {
                tokio::time::sleep(sh.opts.collect_latency).await;
            }
            let r = report::collect_ssl(sh, &form);
            sh.collects_in_flight.fetch_sub(1, Ordering::SeqCst);
            r
        }
        "!AutoRefund" => report::auto_refund(sh, &form),
        "!AutoRevokeSSL" => report::auto_revoke_ssl(sh, &form),
        _ => Err(api::error(-14, "Unknown API endpoint", None)),
    };
    // ResendDCVEmail's recorded answer has its key in lower case (fixture
    // `resenddcvemail-lowercase-key.txt`); serve it that way, keys must match without case.
    let result = match (endpoint, result) {
        ("!ResendDCVEmail", Ok(r)) => Ok(r.replacen("errorCode=", "errorcode=", 1)),
        (_, r) => r,
    };
    (StatusCode::OK, result.unwrap_or_else(|e| e))
}

pub(super) async fn admin_reject(
    State(sh): State<Arc<Shared>>,
    Path(order): Path<u64>,
    body: String,
) -> Response {
    let reason = if body.trim().is_empty() {
        "The certificate request has been rejected!"
    } else {
        body.trim()
    };
    if reject(&sh, order, reason) {
        let o = sh.orders_lock().get(&order).cloned();
        axum::Json(o).into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no pending order {order}")).into_response()
    }
}
