//! Issue 22, item 4: a server's Event Socket that accepts connections again is connected
//! within 2 s, whatever the outage length, and a refused or closed Event Socket makes the
//! server "down" for new calls at once.
//!
//! Against the stand-in Event Socket (cut and its port closed, then listening again after 3
//! and 10 s) and against a real FreeSWITCH (SIGKILLed, restarted after 3 s). The 20 and 40 s
//! outages run in the ignored test `esl_reconnects_within_2s_after_long_outages`
//! (`cargo test --test it reconnect:: -- --ignored`), to keep CI short.

use crate::support::dialin::{http, metric, Dialin};
use crate::support::esl::{EslStandIn, Fault, Snapshot, PASSWORD};
use crate::support::freeswitch::FreeSwitch;
use crate::support::ports::PortBlock;
use crate::support::wait::wait_for;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// What the issue promises: connected within 2 s of the server accepting again.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// dialin watching one server `bbb1` whose Event Socket is `esl` (its SIP goes nowhere).
fn start_dialin(esl: SocketAddr, password: &str) -> (Dialin, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("esl.pw");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let sip = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let rtp = PortBlock::take(16);
    let nowhere = PortBlock::take(1).base;
    let toml = format!(
        r#"
[sip]
listen = "{sip}"
[media]
rtp_ports = "{lo}-{hi}"
[trunk]
allow = ["127.0.0.0/8"]
[[servers]]
name = "bbb1"
sip = "sip:127.0.0.1:{nowhere}"
esl = "{esl}"
esl_password_file = "{pw}"
[admin]
listen = "{admin}"
"#,
        lo = rtp.base,
        hi = rtp.base + rtp.len - 1,
        pw = pw.display(),
    );
    (Dialin::start(&toml), admin, dir)
}

/// `dialin_esl_connected{server="bbb1"}` and `dialin_server_up{server="bbb1"}` from /metrics.
fn esl_and_up(admin: SocketAddr) -> (f64, f64) {
    let (_, text) = http(admin, "GET", "/metrics");
    (
        metric(&text, "dialin_esl_connected", r#"server="bbb1""#),
        metric(&text, "dialin_server_up", r#"server="bbb1""#),
    )
}

/// Cuts the stand-in's port for each outage in turn, restores it and measures the time from
/// listening again to dialin's snapshot request (its session is then up).
fn reconnects_after(outages: &[u64]) {
    let mut esl = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let addr = esl.addr;
    let (dialin, admin, _dir) = start_dialin(addr, PASSWORD);
    esl.wait_for_snapshots(1, Duration::from_secs(5));
    for &secs in outages {
        esl.stop_listening();
        // Closed by the peer, then refused: down at once, not after esl.grace (30 s).
        assert!(
            wait_for(Duration::from_secs(2), || esl_and_up(admin) == (0.0, 0.0)),
            "bbb1 not down at once after its Event Socket closed: {:?}",
            esl_and_up(admin)
        );
        std::thread::sleep(Duration::from_secs(secs));
        esl = EslStandIn::start_on(addr, Snapshot::Only71234, Fault::None);
        let back = Instant::now();
        esl.wait_for_snapshots(1, Duration::from_secs(10));
        let took = back.elapsed();
        eprintln!("outage {secs} s: reconnected {took:?} after the port listened again");
        assert!(
            took <= RECONNECT_MAX,
            "outage {secs} s: reconnected after {took:?}"
        );
        assert!(wait_for(Duration::from_secs(1), || esl_and_up(admin) == (1.0, 1.0)));
    }
    assert!(dialin
        .log()
        .contains("Event Socket down, the server refused or closed it"));
}

#[test]
fn esl_reconnects_within_2s_after_3s_and_10s_outages() {
    reconnects_after(&[3, 10]);
}

#[test]
#[ignore = "about 70 s; run with --ignored (README, 'Test it')"]
fn esl_reconnects_within_2s_after_long_outages() {
    reconnects_after(&[20, 40]);
}

/// A real FreeSWITCH SIGKILLed: dialin sees it down at once and reconnects within 2 s of its
/// restart (measured from the moment its Event Socket answers the harness).
#[test]
fn real_freeswitch_killed_and_restarted_after_3s_is_reconnected_within_2s() {
    let mut fs = FreeSwitch::start();
    let (dialin, admin, _dir) = start_dialin(fs.esl_addr(), fs.password());
    assert!(
        wait_for(Duration::from_secs(10), || esl_and_up(admin) == (1.0, 1.0)),
        "never connected to FreeSWITCH"
    );
    fs.kill();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(2), || esl_and_up(admin).1 == 0.0),
        "bbb1 not down at once after SIGKILL"
    );
    eprintln!("down {:?} after SIGKILL", killed.elapsed());
    // The outage: FreeSWITCH stays away for 3 s while dialin keeps retrying; its length is
    // the scenario, not a wait for something.
    std::thread::sleep(Duration::from_secs(3));
    fs.restart();
    let back = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || esl_and_up(admin) == (1.0, 1.0)),
        "not reconnected"
    );
    let took = back.elapsed();
    eprintln!("reconnected {took:?} after FreeSWITCH's Event Socket answered again");
    assert!(took <= RECONNECT_MAX, "reconnected after {took:?}");
    drop(dialin);
}

/// Issue 22, item 5: OPTIONS probes to a real FreeSWITCH (no Event Socket configured): a
/// SIGKILLed server is marked down after `failures` unanswered probes, and up again once it
/// answers after its restart.
#[test]
fn options_probes_mark_a_killed_freeswitch_down_and_a_restarted_one_up() {
    let mut fs = FreeSwitch::start();
    let sip = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let rtp = PortBlock::take(16);
    let toml = format!(
        r#"
[sip]
listen = "{sip}"
[media]
rtp_ports = "{lo}-{hi}"
[trunk]
allow = ["127.0.0.0/8"]
[[servers]]
name = "bbb1"
sip = "sip:{server}"
[probes]
interval = "500ms"
failures = 2
[admin]
listen = "{admin}"
"#,
        lo = rtp.base,
        hi = rtp.base + rtp.len - 1,
        server = fs.sip_addr(),
    );
    let dialin = Dialin::start(&toml);
    let probe = |name: &str| {
        let (_, text) = http(admin, "GET", "/metrics");
        metric(&text, name, r#"server="bbb1""#)
    };
    assert!(
        wait_for(Duration::from_secs(5), || probe("dialin_server_probe_up")
            == 1.0
            && probe("dialin_server_up") == 1.0),
        "FreeSWITCH's answers not seen"
    );
    fs.kill();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || probe("dialin_server_up") == 0.0),
        "a killed FreeSWITCH still counts as up"
    );
    let took = killed.elapsed();
    eprintln!("probes: down {took:?} after SIGKILL");
    // At most one interval until the next probe plus two timeouts (500 ms each): 1.5 s, seen
    // 1.48-1.51 s alone; the rest is slack for a machine busy with the whole suite (a full
    // run once took just over 2 s).
    assert!(
        took <= Duration::from_millis(3000),
        "down only after {took:?}"
    );
    dialin.wait_for_line("did not answer OPTIONS probes", Duration::from_secs(2));
    fs.restart();
    assert!(
        wait_for(Duration::from_secs(3), || probe("dialin_server_up") == 1.0),
        "not up again after the restart"
    );
}
