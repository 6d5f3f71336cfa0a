//! The store's failure counter, counted where store calls fail: in `store` (the mappings
//! watcher) and in `privacy` (the cluster's counters and numbering, kept in the store). It is a
//! leaf module of its own, not part of `ops::metrics` (which describes and exports it) or of
//! `store`, because `store` imports `privacy` and `ops` imports both: either home would make
//! an import cycle (`module_graph_tests`).

/// Failed reads or writes of the store, by `op` (`mappings`: the PIN mappings watcher;
/// `abuse`: the cluster's shared guessing-protection counters; `sequence`: the cluster's
/// shared `Phone N` numbering).
pub const STORE_ERRORS: &str = "dialin_store_errors_total";

/// Every `op` label of [`STORE_ERRORS`].
pub const STORE_OPS: [&str; 3] = ["mappings", "abuse", "sequence"];

/// Counts one failed store operation; `op` is one of [`STORE_OPS`].
pub fn store_error(op: &'static str) {
    metrics::counter!(STORE_ERRORS, "op" => op).increment(1);
}
