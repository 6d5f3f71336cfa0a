//! An in-dialog request that overtakes the ACK of our 2xx.
//!
//! A phone may send a re-INVITE (hold), an INFO (a digit) or an OPTIONS right after its ACK,
//! and over UDP, or through two of our tasks, the request can be handled first. rsipstack's
//! server dialog, still waiting for the ACK, then takes a re-INVITE for the initial INVITE and
//! ignores the others: no answer ever, however often the phone sends it again (found by
//! `tests/it/holding.rs`). RFC 3261 (§12, §14) and RFC 5407 (§3.1) let the dialog take such a
//! request: here it waits for the ACK, up to the core's ACK wait, and is then handled as if it
//! had come second. If the ACK never comes the call ends, and the request gets 481.

use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::Method;
use std::time::{Duration, Instant};

/// How long a request waits for the ACK: as long as the call core waits for it
/// (`call::core::ACK_WAIT`, checked equal there), after which the call is over anyway.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often the dialog's state is looked at while waiting (a rare case: a few looks).
const LOOK: Duration = Duration::from_millis(10);

/// Whether `dialog` can take a request `method` now: at once, unless the dialog waits for the
/// ACK of our 2xx and the request is not one the dialog takes in that state (ACK, BYE, CANCEL,
/// PRACK); then once the ACK came. `false`: the ACK never came (answer 481).
pub async fn ready_for(dialog: &InviteDialog, method: &Method) -> bool {
    if matches!(
        method,
        Method::Ack | Method::Bye | Method::Cancel | Method::PRack
    ) || !dialog.state().waiting_ack()
    {
        return true;
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(LOOK).await;
        let state = dialog.state();
        if !state.waiting_ack() {
            return state.is_confirmed();
        }
    }
    false
}
