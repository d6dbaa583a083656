//! `orders retry`, `orders cancel`, `orders adopt` and `orders resubmit`: steer an order
//! from the command line. They write the database; a running daemon picks the change up.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::ca::OrderRef;
use crate::model::CaCancel;

/// The database and the order `target` names (an order id, or a certificate name: its
/// newest order), or an error saying which is missing.
async fn open_order(
    config: &Path,
    target: &str,
) -> anyhow::Result<(crate::store::Store, crate::store::Order)> {
    let Some(store) = super::inspect::open(config).await? else {
        anyhow::bail!("no order {target}: there is no database yet");
    };
    let id = super::inspect::resolve_order(&store, target).await?;
    let (order, _) = store
        .load_order(id)
        .await
        .with_context(|| format!("order {id}"))?;
    Ok((store, order))
}

pub(super) async fn retry(config: &Path, target: &str) -> anyhow::Result<ExitCode> {
    let (store, order) = open_order(config, target).await?;
    let id = order.id;
    if order.state == crate::model::OrderState::SubmitUnknown {
        anyhow::bail!(
            "order {id} is in submit_unknown: dcvd cannot tell whether the CA has it, and retrying \
             changes nothing. Decide with `dcvd orders adopt {id} CA_ORDER_ID` or \
             `dcvd orders resubmit {id} --yes` (see `dcvd orders show {id}`)"
        );
    }
    if !order.state.is_terminal() {
        store
            .make_due(id, crate::clock::Clock::now(&crate::clock::SystemClock))
            .await?;
        say!(
            "order {id} ({}) will take its next step now (the running daemon picks it up within seconds)",
            order.certificate
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cert = cfg
        .certificates
        .iter()
        .find(|c| c.name == order.certificate)
        .with_context(|| {
            format!(
                "certificate `{}` is not in the configuration",
                order.certificate
            )
        })?;
    let rec = store
        .certificates()
        .await?
        .into_iter()
        .find(|c| c.name == cert.name);
    if let Some(p) = rec.as_ref().and_then(|c| c.paused.as_ref()) {
        anyhow::bail!(
            "certificate `{}` is paused ({}); nothing done. `dcvd resume {}` first (then \
             `dcvd renew {} --force` orders at once)",
            cert.name,
            p.reason,
            cert.name,
            cert.name
        );
    }
    if let Some(live) = rec.and_then(|c| c.current_order_id) {
        anyhow::bail!(
            "certificate `{}` already has a live order ({live})",
            cert.name
        );
    }
    let engine = crate::lifecycle::engine::engine_for_cli(store, cfg.clone()).await?;
    let names = crate::lifecycle::renew::cert_names(cert).map_err(|e| anyhow::anyhow!(e))?;
    let renewal_of = if order.state == crate::model::OrderState::Issued {
        order.ca_order_id.clone()
    } else {
        None
    };
    let new = engine
        .create_order(
            cert,
            names,
            renewal_of,
            &crate::lifecycle::renew::Need::RetryAfterFailure,
        )
        .await?;
    say!(
        "order {id} had ended ({}); placed new order {new} for certificate {}",
        order.state,
        cert.name
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cancel(config: &Path, target: &str) -> anyhow::Result<ExitCode> {
    let (store, order) = open_order(config, target).await?;
    let id = order.id;
    if order.state.is_terminal() {
        anyhow::bail!("order {id} has already ended ({})", order.state);
    }
    let mut ca_answer = None;
    if let Some(ca_id) = order.ca_order_id.as_deref() {
        let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let rt = crate::lifecycle::services::build(
            &cfg,
            std::sync::Arc::new(crate::metrics::Metrics::new()),
            &store,
            crate::clock::system(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
        let provider = rt.providers.get(&order.provider).with_context(|| {
            format!("provider `{}` is not in the configuration", order.provider)
        })?;
        let r = provider
            .cancel(OrderRef {
                reference: &order.reference,
                ca_order_id: ca_id,
                ca_data: &order.ca_data,
                names: &order.names,
                csr_der: &order.csr_der,
            })
            .await;
        ca_answer = Some(match r {
            Ok(()) => (
                CaCancel::Canceled,
                format!("CA order {ca_id} canceled at the CA (dcvd orders cancel)"),
            ),
            // The CA says no (already issued, not pending): the order still ends here, as
            // the operator asked; the CA order is recorded and `status` lists it.
            Err(e) if e.kind == crate::model::ErrorKind::Permanent => {
                say!(
                    "warning: the CA refused to cancel CA order {ca_id}: {e}. Order {id} is ended here \
                     anyway; `dcvd status` lists CA order {ca_id} until you check it in the CA's portal"
                );
                (CaCancel::Refused, e.to_string())
            }
            Err(e) => {
                return Err(anyhow::anyhow!(e)).with_context(|| {
                    format!("canceling CA order {ca_id}; order {id} is left as it was (try again)")
                });
            }
        });
    }
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    // One transaction: the order ends, the CA's answer is recorded and the certificate is
    // paused (so the failed-order retry, lifecycle::retry::FAILED_ORDER_RETRY, does not
    // bring it back by itself), or none of it.
    let pause_reason = format!("its order {id} was canceled by an operator (dcvd orders cancel)");
    let (done, paused) = store
        .cancel_by_operator(
            id,
            "canceled by an operator (dcvd orders cancel)",
            ca_answer.as_ref().map(|(s, a)| (*s, a.as_str())),
            (&order.certificate, &pause_reason),
            now,
        )
        .await?;
    if done {
        say!("order {id} canceled; its published tokens will be removed by the daemon");
        say!(
            "certificate {} is {}paused: dcvd places no new order for it until `dcvd resume {}`",
            order.certificate,
            if paused { "" } else { "already " },
            order.certificate
        );
        if order.ca_order_id.is_none() && crate::lifecycle::operator::check_in_doubt(&order).is_ok()
        {
            say!(
                "note: its submit was unanswered, so the CA may hold an order for it (reference {}{}); \
                 cancel that in the CA's portal if it exists",
                order.reference,
                if order.unsure_candidates.is_empty() {
                    String::new()
                } else {
                    format!(", candidates {}", order.unsure_candidates.join(", "))
                }
            );
        }
    } else {
        say!("order {id} ended meanwhile; nothing changed");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn adopt(
    config: &Path,
    target: &str,
    ca_order_id: &str,
) -> anyhow::Result<ExitCode> {
    let (store, order) = open_order(config, target).await?;
    let id = order.id;
    crate::lifecycle::operator::check_in_doubt(&order).map_err(|e| anyhow::anyhow!(e))?;
    let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = crate::lifecycle::engine::engine_for_cli(store, cfg).await?;
    let msg = crate::lifecycle::operator::adopt(&engine.ctx, &engine.services(), id, ca_order_id)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    say!("{msg} (the running daemon picks it up within seconds)");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn resubmit(config: &Path, target: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let (store, order) = open_order(config, target).await?;
    let id = order.id;
    crate::lifecycle::operator::check_in_doubt(&order).map_err(|e| anyhow::anyhow!(e))?;
    if !yes {
        anyhow::bail!(
            "order {id} may already exist at the CA{}; submitting it again may buy a second \
             certificate. If you checked at the CA and it has none, run `dcvd orders resubmit {id} --yes`; \
             if it has one, run `dcvd orders adopt {id} CA_ORDER_ID` instead",
            if order.unsure_candidates.is_empty() {
                String::new()
            } else {
                format!(" (candidates: {})", order.unsure_candidates.join(", "))
            }
        );
    }
    let ctx = crate::lifecycle::step::Ctx {
        store,
        clock: crate::clock::system(),
        metrics: std::sync::Arc::new(crate::metrics::Metrics::new()),
    };
    let msg = crate::lifecycle::operator::resubmit(&ctx, id)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    say!("{msg} (the running daemon picks it up within seconds)");
    Ok(ExitCode::SUCCESS)
}
