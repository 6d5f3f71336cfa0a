//! Keeps a running dialin's view of the store current: a task that polls the store's generation
//! (seeing writes from other processes: the CLI, other cluster members) and wakes at once on
//! writes from this process, and publishes the whole mapping set as a new snapshot.

use super::model::Mapping;
use super::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, warn};

/// How often the generation is polled; a change is seen within this (the issue asks for a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(400);

/// Loads the current mappings and starts the watcher task. The receiver always holds the
/// latest snapshot; the task ends when every receiver is dropped. A failing poll is logged
/// and retried: the last good snapshot keeps routing meanwhile.
pub async fn watch(
    store: Store,
    interval: Duration,
) -> Result<watch::Receiver<Arc<Vec<Mapping>>>, StoreError> {
    let mut seen = store.generation().await?;
    let (tx, rx) = watch::channel(Arc::new(store.all().await?));
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(interval) => {}
                _ = store.changed_here() => {}
            }
            let result = async {
                let generation = store.generation().await?;
                if generation == seen {
                    return Ok(None);
                }
                // Read the set after the generation: a write in between is seen next round.
                let all = store.all().await?;
                Ok::<_, StoreError>(Some((generation, all)))
            }
            .await;
            store.set_reachable(result.is_ok());
            if result.is_err() {
                crate::store_errors::store_error("mappings");
            }
            match result {
                Ok(None) => failing = false,
                Ok(Some((generation, all))) => {
                    failing = false;
                    seen = generation;
                    debug!(mappings = all.len(), "PIN store changed");
                    if tx.send(Arc::new(all)).is_err() {
                        return;
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    warn!("cannot read the PIN store, routing with the last mappings: {e}");
                }
                Err(_) => {}
            }
        }
    });
    Ok(rx)
}
