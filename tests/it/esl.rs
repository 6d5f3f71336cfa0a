//! The Event Socket client against stand-in servers that replay bytes captured from a real
//! FreeSWITCH (tests/fixtures/esl), and against servers that misbehave: every failure gives a
//! reconnect with backoff, never a hang or a busy loop.

use crate::support::esl::{
    conference_create, frame_with, EslStandIn, Fault, Snapshot, C1, C7, PASSWORD,
};
use dialin::esl::client::{spawn, ClientSettings, EslHandle};
use dialin::esl::session::SessionSettings;
use dialin::routing::directory::{EslState, Presence, ServerHealth};
use dialin::routing::shared_directory::SharedDirectory;
use dialin::secret::Password;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const GRACE: Duration = Duration::from_millis(800);

fn settings(server: &EslStandIn, password: &str) -> ClientSettings {
    ClientSettings {
        name: "bbb1".into(),
        addr: server.addr,
        password: Password::new(password),
        session: SessionSettings {
            reply_timeout: Duration::from_millis(400),
            keepalive: Duration::from_millis(300),
        },
        max_frame: 1 << 20,
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
    }
}

/// A client for `server`, its directory and a cancel token that stops it.
fn client(server: &EslStandIn, password: &str) -> (SharedDirectory, EslHandle, CancellationToken) {
    let dir = SharedDirectory::new(&["bbb1".into()], GRACE);
    let cancel = CancellationToken::new();
    let handle = spawn(settings(server, password), 0, dir.clone(), cancel.clone());
    (dir, handle, cancel)
}

/// [`crate::support::wait::wait_for`] for the async tests, which must not block their runtime.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state(dir: &SharedDirectory) -> EslState {
    dir.view().servers(Instant::now())[0].state
}

#[tokio::test]
async fn snapshot_and_events_keep_the_directory_current() {
    let server = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let (dir, handle, cancel) = client(&server, PASSWORD);
    wait_until("up", || state(&dir) == EslState::Up).await;
    assert_eq!(
        server.commands()[..3],
        [
            format!("auth {PASSWORD}"),
            dialin::esl::session::SUBSCRIPTION.to_string(),
            "api conference list".to_string()
        ]
    );
    let now = Instant::now;
    assert_eq!(dir.lookup("71234", now()), Presence::Running("bbb1".into()));
    // A second conference starts (c1's create event with its number changed to 71235).
    let mut created = dir.subscribe();
    server.push(&conference_create("71235"));
    tokio::time::timeout(Duration::from_secs(2), created.changed())
        .await
        .expect("waiters are woken by conference-create")
        .unwrap();
    assert_eq!(dir.lookup("71235", now()), Presence::Running("bbb1".into()));
    // 71234 ends (c1's destroy event, as captured).
    server.push(frame_with(C1, "\"Action\":\"conference-destroy\""));
    wait_until("destroyed", || {
        dir.lookup("71234", now()) == Presence::NotRunning { certain: true }
    })
    .await;
    // Idle: keepalives flow and the session stays up.
    wait_until("a keepalive", || {
        server
            .commands()
            .iter()
            .any(|c| c == "api global_getvar hostname")
    })
    .await;
    assert_eq!(state(&dir), EslState::Up);
    // A background job and its BACKGROUND_JOB event (c3) leave the session up too.
    assert!(handle.bgapi("conference list".into()));
    wait_until("bgapi received", || {
        server
            .commands()
            .iter()
            .any(|c| c == "bgapi conference list")
    })
    .await;
    // The session stays up for a while after the job's event: the time is the behaviour.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state(&dir), EslState::Up);
    assert_eq!(server.connections(), 1);
    cancel.cancel();
}

#[tokio::test]
async fn the_mute_command_reaches_the_server_exactly() {
    let server = EslStandIn::start(Snapshot::Empty, Fault::None);
    let (dir, handle, cancel) = client(&server, PASSWORD);
    wait_until("up", || state(&dir) == EslState::Up).await;
    // Caller A's CHANNEL_ANSWER (X-Dialin-Call: abc123), then c1's create and add-member of A.
    server.push(frame_with(C7, "\"variable_sip_h_X-Dialin-Call\""));
    server.push(frame_with(C1, "\"Action\":\"conference-create\""));
    server.push(frame_with(C1, "\"Action\":\"add-member\""));
    wait_until("member known", || dir.member("bbb1", "abc123").is_some()).await;
    let (conference, member) = dir.member("bbb1", "abc123").unwrap();
    assert_eq!((conference.expose(), member), ("71234", 1));
    assert!(handle.api(format!("conference {} tmute {member}", conference.expose())));
    wait_until("tmute received", || {
        server
            .commands()
            .iter()
            .any(|c| c == "api conference 71234 tmute 1")
    })
    .await;
    cancel.cancel();
}

#[tokio::test]
async fn a_closed_event_socket_is_down_at_once_its_conferences_unreachable_for_the_grace_period() {
    // Issue 22: closed by the peer (the process is gone) is down for new calls at once; the
    // conferences are remembered as unreachable ("unavailable", not "invalid") until the
    // grace period ends. A socket that only goes quiet keeps them routable for the grace
    // period: see the unit tests of esl::client (ClientError::loss) and routing::directory.
    let server = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let (dir, _handle, cancel) = client(&server, PASSWORD);
    wait_until("up", || state(&dir) == EslState::Up).await;
    server.cut_and_refuse();
    wait_until("down", || state(&dir) == EslState::Down).await;
    assert_eq!(
        dir.server_health("bbb1", Instant::now()),
        ServerHealth::Down
    );
    assert_eq!(
        dir.lookup("71234", Instant::now()),
        Presence::Unreachable("bbb1".into())
    );
    wait_until("past grace", || {
        dir.lookup("71234", Instant::now()) == Presence::NotRunning { certain: false }
    })
    .await;
    cancel.cancel();
}

#[tokio::test]
async fn freeswitch_shutdown_is_a_clean_down() {
    let server = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let (dir, _handle, cancel) = client(&server, PASSWORD);
    wait_until("up", || state(&dir) == EslState::Up).await;
    server.shut_down();
    // The goodbye (disconnect-notice) means FreeSWITCH is going away with its calls: down
    // at once, no grace period.
    wait_until("down", || state(&dir) == EslState::Down).await;
    // Reconnect attempts go on at the backoff pace while the server is gone: connections
    // counted over a fixed 2 s measure that pace.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = server.connections();
    assert!((2..=6).contains(&n), "{n} connections");
    cancel.cancel();
}

#[tokio::test]
async fn a_cut_connection_comes_back_with_a_fresh_snapshot() {
    let server = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let (dir, _handle, cancel) = client(&server, PASSWORD);
    wait_until("up", || state(&dir) == EslState::Up).await;
    server.push(&conference_create("71235"));
    wait_until("71235 known", || {
        dir.lookup("71235", Instant::now()) == Presence::Running("bbb1".into())
    })
    .await;
    server.cut();
    wait_until("reconnected", || {
        server.connections() == 2 && state(&dir) == EslState::Up
    })
    .await;
    // The new snapshot (b2: 71234 only) replaced what the events had added.
    assert_eq!(
        dir.lookup("71235", Instant::now()),
        Presence::NotRunning { certain: true }
    );
    assert_eq!(
        dir.lookup("71234", Instant::now()),
        Presence::Running("bbb1".into())
    );
    cancel.cancel();
}

/// A misbehaving server: the directory never trusts it, and the client reconnects at the
/// backoff's pace (at least twice in 3 s, and no more than the backoff allows: no busy loop).
async fn reconnects_without_busy_loop(fault: Fault, password: &str) {
    let server = EslStandIn::start(Snapshot::Only71234, fault);
    let (dir, _handle, cancel) = client(&server, password);
    // A fixed window: the connections made in it measure the reconnect pace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = server.connections();
    assert!(
        (2..=8).contains(&n),
        "{fault:?}: {n} connections in 3 s (backoff 200 ms doubling)"
    );
    assert_ne!(state(&dir), EslState::Up, "{fault:?}");
    assert_eq!(
        dir.lookup("71234", Instant::now()),
        Presence::NotRunning { certain: false },
        "{fault:?}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn wrong_password() {
    reconnects_without_busy_loop(Fault::None, "not-the-password").await;
}

#[tokio::test]
async fn cut_after_auth() {
    reconnects_without_busy_loop(Fault::CutAfterAuth, PASSWORD).await;
}

#[tokio::test]
async fn truncated_frame() {
    reconnects_without_busy_loop(Fault::Truncated, PASSWORD).await;
}

#[tokio::test]
async fn oversized_frame() {
    reconnects_without_busy_loop(Fault::Oversized, PASSWORD).await;
}

#[tokio::test]
async fn garbage() {
    reconnects_without_busy_loop(Fault::Garbage, PASSWORD).await;
}

#[tokio::test]
async fn silent_server() {
    reconnects_without_busy_loop(Fault::Silent, PASSWORD).await;
}

#[tokio::test]
async fn nobody_listening() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = SharedDirectory::new(&["bbb1".into()], GRACE);
    let cancel = CancellationToken::new();
    let server = EslStandIn::start(Snapshot::Empty, Fault::None);
    let mut s = settings(&server, PASSWORD);
    s.addr = port;
    spawn(s, 0, dir.clone(), cancel.clone());
    // Refused attempts (backoff from 200 ms) make it down at once (issue 22: nothing runs
    // there), never up: a fixed wait, since nothing else is to happen.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(state(&dir), EslState::Down);
    cancel.cancel();
}
