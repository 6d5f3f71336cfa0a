//! A server leg's INVITE still in flight when the call gives the leg up (CANCEL, the call's
//! end, a leg lost and dialled anew): it is let finish rather than aborted, so a 2xx that comes
//! late (a server that was down answers a retransmitted INVITE, a 200 crossing our CANCEL) is
//! BYE'd and its confirmed dialog leaves the dialog layer. Aborting it instead left such a
//! dialog registered under its confirmed id for good (about 1 call in 10,000 of the soak).

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::StatusCodeKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a given-up INVITE may still take: 64 × T1, RFC 3261's Timer B, after which the
/// INVITE client transaction is over anyway.
const INVITE_LINGER: Duration = Duration::from_secs(32);

/// Lets `invite` (the INVITE of `dialog`) finish in the background: a 2xx is answered with a
/// BYE, and every id the dialog had leaves `layer`. Aborted after [`INVITE_LINGER`].
pub(super) fn let_finish(
    layer: Arc<DialogLayer>,
    dialog: InviteDialog,
    invite: JoinHandle<InviteAsyncResult>,
) {
    let early = dialog.id();
    tokio::spawn(async move {
        let abort = invite.abort_handle();
        match tokio::time::timeout(INVITE_LINGER, invite).await {
            Ok(Ok(Ok((confirmed, Some(resp)))))
                if resp.status_code.kind() == StatusCodeKind::Successful =>
            {
                dialog.bye().await.ok();
                layer.remove_dialog(&confirmed);
            }
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
        layer.remove_dialog(&early);
    });
}
