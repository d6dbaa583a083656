//! Who removes published tokens: every token is in the cleanup journal before it is
//! published (`store/journal.rs`); the journal entries become due when their order ends
//! (or a token is replaced), and `cleanup_due`, run by the scheduler, removes them through
//! their publisher. A failure backs off (`retry::cleanup_delay`); a damaged entry is put
//! aside without blocking the others.

use crate::model::EventKind;
use tracing::warn;

use crate::lifecycle::engine::Engine;
use crate::lifecycle::retry;
use crate::store::StoreError;

impl Engine {
    /// Remove up to `limit` due tokens. A failure is retried later with backoff.
    pub async fn cleanup_due(&self, limit: u32) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let rt = self.services();
        let entries = self.ctx.store.journal_due(now, limit).await?;
        let n = entries.len();
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err((order_id, err)) => {
                    // One damaged entry: skip it (retried later, in case it is repaired)
                    // and clean the others.
                    let StoreError::Corrupt { id, .. } = &err else {
                        continue;
                    };
                    let again = now
                        + chrono::Duration::from_std(retry::DAMAGED_JOURNAL_RETRY)
                            .unwrap_or_default();
                    if self
                        .ctx
                        .store
                        .journal_quarantine(*id, &err.to_string(), again)
                        .await?
                    {
                        warn!(
                            order_id,
                            "{err}: this token cannot be removed by dcvd (remove it by hand, then delete \
                             cleanup_journal row {id}, or repair the row); the other tokens are cleaned. \
                             Tried again every {}",
                            humantime::format_duration(retry::DAMAGED_JOURNAL_RETRY)
                        );
                    }
                    continue;
                }
            };
            let Some(publisher) = rt.publishers.get(&e.publisher) else {
                let again =
                    now + chrono::Duration::from_std(retry::UNCONFIGURED_RETRY).unwrap_or_default();
                let msg = format!(
                    "publisher `{}` is no longer configured; {} {} stays until it is",
                    e.publisher,
                    e.challenge.kind,
                    e.challenge.location()
                );
                warn!(order_id = e.order_id, "{msg}");
                self.ctx.store.journal_failed(e.id, &msg, again).await?;
                continue;
            };
            match publisher.cleanup(&e.challenge).await {
                Ok(()) => {
                    self.ctx.store.journal_done(e.id).await?;
                    self.ctx
                        .store
                        .add_event(
                            e.order_id,
                            &crate::store::NewEvent {
                                kind: EventKind::Cleanup,
                                domain: None,
                                message: format!(
                                    "removed {} {}",
                                    e.challenge.kind,
                                    e.challenge.location()
                                ),
                            },
                            now,
                        )
                        .await?;
                }
                Err(err) => {
                    let delay = retry::cleanup_delay(e.attempts + 1);
                    let again = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    warn!(
                        order_id = e.order_id,
                        attempt = e.attempts + 1,
                        "cleanup failed: {err}; retrying"
                    );
                    self.ctx
                        .store
                        .journal_failed(e.id, &err.to_string(), again)
                        .await?;
                }
            }
        }
        Ok(n)
    }
}
