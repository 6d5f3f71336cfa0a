//! Prometheus metrics through the `metrics` facade: names, labels, and the recorder.
//!
//! Labels carry only fixed words (outcome, state, leg, direction, result, version): never a
//! number, PIN, conference or address. The call path records through the facade (a no-op
//! until [`install`] ran, so unit tests need no recorder); `/metrics` renders the handle.
//!
//! Hot path: RTP packets are counted per worker thread and added to the shared counters in
//! bunches ([`RtpCounters`]), so a packet costs no atomic operation, lock or allocation.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Calls by how they ended (`outcome`), including calls refused before a driver started.
pub const CALLS: &str = "dialin_calls_total";
/// Calls in progress by flow state (`state`).
pub const CALLS_ACTIVE: &str = "dialin_calls_active";
/// PINs typed and looked up, by `result` (`conference`, `echo`, `invalid`, `waiting`,
/// `unavailable`).
pub const PIN_ATTEMPTS: &str = "dialin_pin_attempts_total";
/// Bridged calls whose server leg was lost without a BYE, by `reason` (`silence`: no RTP from
/// the server; `unreachable`: ICMP errors on its RTP port; `esl_down`: its Event Socket says
/// it is gone). Each such caller holds while dialin dials the meeting again.
pub const SERVER_LEGS_LOST: &str = "dialin_server_legs_lost_total";
/// Callers bridged again after their server leg was lost.
pub const REJOINS: &str = "dialin_rejoins_total";
/// Call set-up latency in seconds, by `phase`: `caller_answer` (INVITE received → caller leg
/// confirmed) and `server_answer` (PIN complete → server answered).
pub const SETUP_SECONDS: &str = "dialin_call_setup_seconds";
/// RTP packets by `leg` (`caller`, `server`) and `direction` (`rx`, `tx`), all calls together.
pub const RTP_PACKETS: &str = "dialin_rtp_packets_total";
/// RTP bytes (UDP payload) by `leg` and `direction`.
pub const RTP_BYTES: &str = "dialin_rtp_bytes_total";
/// Audio packets lost on the way to dialin, by `leg` (RFC 3550: expected minus received).
pub const RTP_LOST: &str = "dialin_rtp_packets_lost_total";
/// Interarrival jitter of the audio reaching dialin at the end of each call, by `leg`.
pub const RTP_JITTER_SECONDS: &str = "dialin_rtp_jitter_seconds";
/// SIP requests refused because of their source address (`trunk.allow`).
pub const SOURCES_REJECTED: &str = "dialin_sip_sources_rejected_total";
/// RTP/RTCP port pairs of `media.rtp_ports` in use (one per call leg; each pair is two
/// ports, so the range holds half as many pairs as ports).
pub const RTP_PORT_PAIRS_IN_USE: &str = "dialin_rtp_port_pairs_in_use";
/// SIP dialogs held (both legs of every call, and those of calls still being answered): with
/// [`CALLS_IN_IVR`] and [`RTP_PORT_PAIRS_IN_USE`], shows a call stuck in some state, which
/// holds all three.
pub const SIP_DIALOGS: &str = "dialin_sip_dialogs";
/// Calls not yet bridged (answering, voice menu, waiting room), the count
/// `limits.max_ivr_calls` bounds.
pub const CALLS_IN_IVR: &str = "dialin_calls_in_ivr";
/// 1 while a trunk's registration with its provider is valid, else 0, by `trunk` (its config
/// name): a failed registration means no inbound calls from that provider at all.
pub const REGISTRATIONS_UP: &str = "dialin_registrations_up";
/// New calls answered 503 since start, by `reason` (the words of
/// [`crate::serve::refusals::CallsRefused::reasons`]).
pub const CALLS_REFUSED: &str = "dialin_calls_refused_total";
/// 1 while draining.
pub const DRAINING: &str = "dialin_draining";
/// Configuration reloads by `result` (`ok`, `error`).
pub const RELOADS: &str = "dialin_config_reloads_total";
/// 1 while a server's Event Socket is connected, by `server` (its config name).
pub const ESL_CONNECTED: &str = "dialin_esl_connected";
/// 1 while a server answers its OPTIONS probes (by the `[probes]` thresholds), else 0, by
/// `server` (its config name); only with `[probes]`.
pub const PROBE_UP: &str = "dialin_server_probe_up";
/// OPTIONS probes in a row a server left unanswered, by `server`; only with `[probes]`.
pub const PROBE_FAILURES: &str = "dialin_server_probe_failures";
/// 1 while a server takes new calls (health Up), else 0 (Quiet: Event Socket lost within
/// `esl.grace`; Down: refused, closed, probes failing or past grace), by `server`.
pub const SERVER_UP: &str = "dialin_server_up";
/// Conferences a server runs as the live directory trusts them now, by `server`.
pub const CONFERENCES_KNOWN: &str = "dialin_conferences_known";
/// Conferences seen live on two servers at once since start-up.
pub const CONFERENCE_COLLISIONS: &str = "dialin_conference_collisions_total";
/// Always 1, with the `version` label.
pub const BUILD_INFO: &str = "dialin_build_info";
/// TCP/TLS connections closed at once because a cap was reached (`sip::conn_limits`).
pub const CONNECTIONS_REFUSED: &str = "dialin_connections_refused_total";
/// The fixed `listener` label values of [`CONNECTIONS_REFUSED`].
pub const LISTENERS: [&str; 3] = ["sip_tcp", "sip_tls", "admin"];
/// Dialog events dropped because their call leg's queue was full (`sip::dialog_events`).
pub const EVENTS_DROPPED: &str = "dialin_dialog_events_dropped_total";
pub use crate::store_errors::STORE_ERRORS;

/// Records a server's probe verdict and unanswered probes in a row.
pub fn probe_state(server: &str, alive: bool, failed_in_a_row: u32) {
    gauge!(PROBE_UP, "server" => server.to_string()).set(if alive { 1.0 } else { 0.0 });
    gauge!(PROBE_FAILURES, "server" => server.to_string()).set(f64::from(failed_in_a_row));
}

/// Installs the Prometheus recorder for this process; call once, before the first call.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(SETUP_SECONDS.into()),
            &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full(RTP_JITTER_SECONDS.into()),
            &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
        )?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    metrics::describe_counter!(CALLS, "Calls by how they ended");
    metrics::describe_gauge!(CALLS_ACTIVE, "Calls in progress by state");
    metrics::describe_counter!(PIN_ATTEMPTS, "PINs typed, by routing result");
    metrics::describe_histogram!(SETUP_SECONDS, metrics::Unit::Seconds, "Call set-up latency");
    metrics::describe_counter!(
        SERVER_LEGS_LOST,
        "Bridged calls whose server leg was lost without a BYE, by reason"
    );
    for reason in LOSS_REASONS {
        counter!(SERVER_LEGS_LOST, "reason" => reason).absolute(0);
    }
    metrics::describe_counter!(
        REJOINS,
        "Callers bridged again after their server leg was lost"
    );
    counter!(REJOINS).absolute(0);
    metrics::describe_counter!(RTP_PACKETS, "RTP packets by leg and direction");
    metrics::describe_counter!(
        RTP_BYTES,
        metrics::Unit::Bytes,
        "RTP bytes by leg and direction"
    );
    metrics::describe_counter!(
        RTP_LOST,
        "Audio packets lost before reaching dialin, by leg"
    );
    metrics::describe_histogram!(
        RTP_JITTER_SECONDS,
        metrics::Unit::Seconds,
        "Interarrival jitter at the end of each call, by leg"
    );
    metrics::describe_counter!(SOURCES_REJECTED, "SIP requests refused by source address");
    metrics::describe_counter!(STORE_ERRORS, "Failed store reads and writes, by operation");
    metrics::describe_counter!(CALLS_REFUSED, "New calls answered 503, by reason");
    metrics::describe_gauge!(
        REGISTRATIONS_UP,
        "1 while a trunk's provider registration is valid, by trunk"
    );
    metrics::describe_gauge!(RTP_PORT_PAIRS_IN_USE, "RTP/RTCP port pairs in use");
    metrics::describe_gauge!(SIP_DIALOGS, "SIP dialogs held");
    metrics::describe_gauge!(CALLS_IN_IVR, "Calls not yet bridged (limits.max_ivr_calls)");
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "TCP/TLS connections closed at once because limits.tcp_per_source or limits.tcp_total was reached, by listener"
    );
    for listener in LISTENERS {
        counter!(CONNECTIONS_REFUSED, "listener" => listener).absolute(0);
    }
    metrics::describe_counter!(
        EVENTS_DROPPED,
        "SIP dialog events dropped because their call leg's queue was full (a peer flooding in-dialog requests)"
    );
    counter!(EVENTS_DROPPED).absolute(0);
    for op in crate::store_errors::STORE_OPS {
        counter!(STORE_ERRORS, "op" => op).absolute(0);
    }
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    gauge!(DRAINING).set(0.0);
    // Every outcome and state exists from the start, so a scrape shows zeros, not gaps.
    for outcome in OUTCOMES {
        counter!(CALLS, "outcome" => outcome).absolute(0);
    }
    for state in STATES {
        gauge!(CALLS_ACTIVE, "state" => state).set(0.0);
    }
    Ok(handle)
}

/// Every `reason` label value of [`SERVER_LEGS_LOST`].
pub const LOSS_REASONS: [&str; 4] = ["silence", "unreachable", "esl_down", "sip"];

/// Every `outcome` label value.
pub const OUTCOMES: [&str; 13] = [
    "bridged",
    "echo",
    "invalid_pin",
    "no_conference",
    "caller_hangup",
    "server_hangup",
    "timeout",
    "shutdown",
    "unavailable",
    "draining",
    "rejected_codec",
    "server_lost",
    "blocked",
];

/// Every `state` label value.
pub const STATES: [&str; 14] = [
    "waiting",
    "rejoining",
    "answering",
    "greeting",
    "collecting_pin",
    "invalid_pin",
    "resolving",
    "connecting_server",
    "bridged",
    "echo",
    "unavailable",
    "goodbye",
    "closing",
    "ended",
];

/// The `result` label of a PIN's routing decision.
pub fn route_label(decision: &crate::routing::RouteDecision) -> &'static str {
    use crate::routing::RouteDecision;
    match decision {
        RouteDecision::Conference(_) => "conference",
        RouteDecision::Echo => "echo",
        RouteDecision::Invalid => "invalid",
        RouteDecision::Waiting(_) => "waiting",
        RouteDecision::Unavailable => "unavailable",
    }
}

/// Counts one ended call; `outcome` is one of [`OUTCOMES`].
pub fn call_ended(outcome: &'static str) {
    counter!(CALLS, "outcome" => outcome).increment(1);
}

/// Counts one PIN looked up; `result` is `conference`, `echo` or `invalid`.
pub fn pin_attempt(result: &'static str) {
    counter!(PIN_ATTEMPTS, "result" => result).increment(1);
}

/// Counts one server leg lost; `reason` is one of [`LOSS_REASONS`].
pub fn server_leg_lost(reason: &'static str) {
    counter!(SERVER_LEGS_LOST, "reason" => reason).increment(1);
}

/// Counts one caller bridged again after a loss.
pub fn rejoined() {
    counter!(REJOINS).increment(1);
}

/// Records one set-up latency; `phase` is `caller_answer` or `server_answer`.
pub fn setup_latency(phase: &'static str, elapsed: std::time::Duration) {
    histogram!(SETUP_SECONDS, "phase" => phase).record(elapsed.as_secs_f64());
}

/// Moves one call between the `state` gauges; the call leaves the gauges when this drops.
#[derive(Debug)]
pub struct StateGauge {
    /// The state the call is counted in.
    current: &'static str,
}

impl StateGauge {
    /// A new call, counted as answering.
    pub fn new() -> StateGauge {
        gauge!(CALLS_ACTIVE, "state" => "answering").increment(1.0);
        StateGauge {
            current: "answering",
        }
    }

    /// The call is in `state` now (cheap when it did not change).
    pub fn set(&mut self, state: &'static str) {
        if state != self.current {
            gauge!(CALLS_ACTIVE, "state" => self.current).decrement(1.0);
            gauge!(CALLS_ACTIVE, "state" => state).increment(1.0);
            self.current = state;
        }
    }
}

impl Default for StateGauge {
    fn default() -> StateGauge {
        StateGauge::new()
    }
}

impl Drop for StateGauge {
    fn drop(&mut self) {
        gauge!(CALLS_ACTIVE, "state" => self.current).decrement(1.0);
    }
}

pub use super::rtp_counters::{Direction, RtpCounters};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_fixed_words() {
        for l in OUTCOMES.iter().chain(STATES.iter()) {
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
        }
    }
}
