//! Guessing protection in the call: wrong PINs are counted, PIN answers are held back while
//! failed-PIN rates are exceeded, and the call's end is reported to the ledger.

use super::CallDriver;
use crate::call::flow::Outcome;
use crate::routing::RouteDecision;
use std::time::{Instant, SystemTime};
use tracing::info;

impl CallDriver {
    /// Gives the flow routing's answer, or holds it back while failed-PIN rates are exceeded
    /// (a slow answer costs a guesser more than a person). Wrong PINs are counted.
    pub(super) fn answer_route(&mut self, now: Instant, decision: RouteDecision) {
        crate::ops::metrics::pin_attempt(crate::ops::metrics::route_label(&decision));
        let wall = SystemTime::now();
        let delay = self.ctx.ledger.answer_delay(wall, &self.source_net);
        if decision == RouteDecision::Invalid {
            self.wrong_pins += 1;
            self.ctx.ledger.record_failed_pin(wall, &self.source_net);
        }
        if delay.is_zero() {
            self.routed(now, decision);
        } else {
            info!(
                call = self.call_no,
                caller = %self.caller_key,
                delay_ms = delay.as_millis() as u64,
                "many wrong PINs lately: answering the PIN slowly"
            );
            self.held_route = Some((now + delay, decision));
        }
    }

    /// Tells guessing protection how the call ended: wrong PINs without reaching a meeting
    /// make a failed call.
    pub(super) fn record_call(&self, outcome: Outcome) {
        let reached_meeting = matches!(outcome, Outcome::Bridged | Outcome::ServerHangup);
        let failed = self.wrong_pins > 0 && !reached_meeting && outcome != Outcome::Blocked;
        if self
            .ctx
            .ledger
            .record_call(SystemTime::now(), &self.caller_key, failed)
        {
            info!(
                call = self.call_no,
                caller = %self.caller_key,
                "caller blocked: too many failed calls"
            );
        }
    }
}
