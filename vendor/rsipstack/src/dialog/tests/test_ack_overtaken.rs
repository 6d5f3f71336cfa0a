//! In-dialog requests that reach a server dialog before the ACK of its 2xx
//! (a phone's re-INVITE, INFO or OPTIONS sent right behind the ACK, reordered
//! on the way or by the tasks handling them) are held until the ACK is in and
//! then handled as if they had come second; if the ACK never comes they get
//! 481 once the dialog is over.
use super::test_uas_ack_timeout::{setup, short_timers, Peer, T1, T1X64};
use crate::dialog::dialog::{DialogState, DialogStateReceiver};
use crate::sip::{prelude::HeadersExt, Method, SipMessage, StatusCode};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Answers every in-dialog request the application is handed with 200.
fn answer_all(mut states: DialogStateReceiver) {
    tokio::spawn(async move {
        while let Some(state) = states.recv().await {
            match state {
                DialogState::Info(_, _, handle)
                | DialogState::Options(_, _, handle)
                | DialogState::Updated(_, _, handle) => {
                    handle.reply(StatusCode::OK).await.ok();
                }
                _ => {}
            }
        }
    });
}

/// The final response to the request with CSeq `cseq`, if one came.
fn final_to(messages: &[(Instant, SipMessage)], cseq: u32, method: Method) -> Option<u16> {
    messages.iter().find_map(|(_, m)| match m {
        SipMessage::Response(resp)
            if resp.status_code.code() >= 200
                && resp.cseq_header().ok()?.seq().ok()? == cseq
                && resp.cseq_header().ok()?.method().ok()? == method =>
        {
            Some(resp.status_code.code())
        }
        _ => None,
    })
}

/// INVITE, accept, and the To tag of the 2xx.
async fn answered_call(
    peer: &Peer,
    dialogs: &mut tokio::sync::mpsc::UnboundedReceiver<crate::dialog::invite_dialog::InviteDialog>,
) -> (crate::dialog::invite_dialog::InviteDialog, String) {
    peer.send_request(Method::Invite, 1, None).await;
    let dialog = tokio::time::timeout(Duration::from_secs(2), dialogs.recv())
        .await
        .expect("the server dialog")
        .unwrap();
    dialog.accept(None, None).unwrap();
    let first = peer.collect(Instant::now() + T1 * 2).await;
    let to_tag = first
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(resp) if resp.status_code.code() == 200 => Some(
                resp.to_header().unwrap().tag().unwrap().unwrap().value().to_string(),
            ),
            _ => None,
        })
        .expect("the 2xx");
    (dialog, to_tag)
}

#[tokio::test]
async fn test_requests_before_the_ack_are_answered_after_it() -> crate::Result<()> {
    for (method, cseq) in [(Method::Info, 2), (Method::Options, 2), (Method::Invite, 2)] {
        let token = CancellationToken::new();
        let (states, mut dialogs, peer) = setup(&token, short_timers()).await?;
        answer_all(states);
        let (dialog, to_tag) = answered_call(&peer, &mut dialogs).await;

        peer.send_request(method.clone(), cseq, Some(&to_tag)).await;
        let early = peer.collect(Instant::now() + T1 * 2).await;
        assert_eq!(
            final_to(&early, cseq, method.clone()),
            None,
            "{method}: answered before the ACK arrived"
        );
        peer.send_request(Method::Ack, 1, Some(&to_tag)).await;
        let after = peer.collect(Instant::now() + T1X64 / 2).await;
        assert_eq!(
            final_to(&after, cseq, method.clone()),
            Some(200),
            "{method} sent before the ACK: {after:?}"
        );
        assert!(dialog.state().is_confirmed(), "{method}: {}", dialog.state());
        token.cancel();
    }
    Ok(())
}

#[tokio::test]
async fn test_a_request_before_an_ack_that_never_comes_gets_481() -> crate::Result<()> {
    let token = CancellationToken::new();
    let (states, mut dialogs, peer) = setup(&token, short_timers()).await?;
    answer_all(states);
    let (dialog, to_tag) = answered_call(&peer, &mut dialogs).await;

    peer.send_request(Method::Info, 2, Some(&to_tag)).await;
    let after = peer.collect(Instant::now() + T1X64 * 2).await;
    assert_eq!(final_to(&after, 2, Method::Info), Some(481), "{after:?}");
    assert!(dialog.state().is_terminated(), "{}", dialog.state());
    token.cancel();
    Ok(())
}
