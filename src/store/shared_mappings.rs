//! [`SharedMappings`]: the store's mappings as routing sees them: one shared snapshot, swapped whole whenever the
//! store watcher publishes a change, so the next call routes by the new set without restart.
//! Readers take a short read lock to clone an `Arc` (once per call, never per packet).

use super::model::Mapping;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A handle on the current snapshot; clones share it.
#[derive(Clone, Default)]
pub struct SharedMappings {
    /// The snapshot by PIN digits.
    current: Arc<RwLock<Arc<HashMap<String, Mapping>>>>,
}

impl SharedMappings {
    /// Replaces the snapshot with `mappings`.
    pub fn replace(&self, mappings: &[Mapping]) {
        let map: HashMap<String, Mapping> = mappings
            .iter()
            .map(|m| (m.pin.expose().to_string(), m.clone()))
            .collect();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<HashMap<String, Mapping>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many mappings the snapshot holds (for status lines).
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether the snapshot is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for SharedMappings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedMappings({} mappings)", self.len())
    }
}

/// A meeting ID to look up through the BBB API at call time. `Debug` hides the ID.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingLookup {
    /// The BBB meeting ID.
    pub meeting_id: String,
    /// Only ask the API of this `[[servers]]` name; `None` asks every `[[bbb_api]]`.
    pub server: Option<String>,
}

impl std::fmt::Debug for MeetingLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MeetingLookup(<meeting>, {:?})", self.server)
    }
}
