//! NOTIFY/LISTEN (`capture_options.notify`): wakes the importer after a
//! commit.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::CHANNEL;
use crate::capture::Importer;

/// Listens for the trigger's notifications and wakes the importer;
/// reconnects with backoff.
pub(super) async fn listen(pool: PgPool, ctx: Importer) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(err) => {
                ctx.health.failing("capture_listener", err.to_string());
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANNEL).await {
            ctx.health.failing("capture_listener", err.to_string());
            tokio::time::sleep(backoff).await;
            continue;
        }
        ctx.health.ready("capture_listener");
        backoff = Duration::from_millis(100);
        // Changes committed while disconnected are found by the importer's sweep.
        ctx.signals.capture_pending.notify_one();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => ctx.signals.capture_pending.notify_one(),
                    Ok(None) => {
                        // The connection dropped; sqlx reconnects on the next call.
                        ctx.signals.capture_pending.notify_one();
                    }
                    Err(err) => {
                        ctx.health.failing("capture_listener", err.to_string());
                        break;
                    }
                }
            }
        }
    }
}
