//! Calls refused for lack of capacity or because the instance is draining, by reason.
//!
//! The counts already live where each refusal is decided (admission gates, the RTP port pool,
//! the SIP rate limiter, the drain); this gathers them under fixed reason words for the status
//! summary, the SIGUSR1 line and `dialin_calls_refused_total{reason}`, so all three agree.

use crate::serve::status::OpsState;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// New calls answered `503` since start-up, per reason. No caller data, counts only.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallsRefused {
    /// `limits.max_calls` was reached.
    pub max_calls: u64,
    /// The trunk's own `max_calls` was reached.
    pub trunk_max_calls: u64,
    /// `limits.max_ivr_calls` (calls not yet bridged) was reached.
    pub max_ivr_calls: u64,
    /// `media.rtp_ports` had no free port pair.
    pub rtp_ports: u64,
    /// The source sent more than `limits.sip_rate` requests a second (new INVITEs only).
    pub rate: u64,
    /// The instance was draining (SIGTERM, `dialin drain`).
    pub draining: u64,
}

impl CallsRefused {
    /// Every reason word with its count: the metric's `reason` label values and the status
    /// line's `refused_<reason>` keys.
    pub fn reasons(&self) -> [(&'static str, u64); 6] {
        [
            ("max_calls", self.max_calls),
            ("trunk_max_calls", self.trunk_max_calls),
            ("max_ivr_calls", self.max_ivr_calls),
            ("rtp_ports", self.rtp_ports),
            ("rate", self.rate),
            ("draining", self.draining),
        ]
    }

    /// All refusals together.
    pub fn total(&self) -> u64 {
        self.reasons().iter().map(|(_, n)| n).sum()
    }

    /// The counts of a running instance now.
    pub fn of(ops: &OpsState) -> CallsRefused {
        let admission = ops.ctx.admission.counts();
        CallsRefused {
            max_calls: admission.refused[0],
            max_ivr_calls: admission.refused[1],
            trunk_max_calls: admission.refused[2],
            rtp_ports: ops.ctx.stats.refused_no_port.load(Ordering::Relaxed),
            rate: ops
                .filter_stats
                .invites_rate_limited
                .load(Ordering::Relaxed),
            draining: ops.ctx.lifecycle.calls_refused(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_fixed_words_in_field_order() {
        let r = CallsRefused {
            max_calls: 1,
            trunk_max_calls: 2,
            max_ivr_calls: 3,
            rtp_ports: 4,
            rate: 5,
            draining: 6,
        };
        let words: Vec<_> = r.reasons().iter().map(|(w, _)| *w).collect();
        let json = serde_json::to_value(r).unwrap();
        for (word, n) in r.reasons() {
            assert_eq!(json[word], n, "{word}");
            assert!(word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(words.len(), json.as_object().unwrap().len());
        assert_eq!(r.total(), 21);
    }
}
