//! The sipp scenarios in `tests/sipp/`, embedded, with the defaults the harness passes.
//!
//! Values go into a scenario as sipp keys (`-key name value`, written `[name]` in the XML); each
//! XML's header comment lists its keys, and [`Scenario`] carries defaults so sipp never meets an
//! unknown keyword (which is a fatal error, exit 255). The XML files stay runnable by hand with
//! `sipp -sf tests/sipp/<file> -key ...`. Only structure that sipp cannot loop over (one INFO
//! per digit) is templated in Rust, at an `<!-- @INFO_DIGITS@ -->` marker.
//!
//! The caller scenarios offer PCMU (0), PCMA (8) and telephone-event (101) in their SDP at
//! `[sdp_ip]:[sdp_port]` (default sipp's `-mi`/`-mp`) and put `"[caller_name]"
//! <sip:[caller_user]@[local_ip]>` in From. The conference scenarios answer PCMU + telephone-event
//! at `[sdp_ip]:[sdp_port]`, like BBB's FreeSWITCH.

use std::fmt::Write as _;
use std::time::Duration;

/// A sipp scenario: its XML plus the defaults the harness passes with it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File stem, used for the XML file and in reports.
    pub name: String,
    /// The XML as sipp will load it.
    pub xml: String,
    /// Keys passed with `-key` unless the test sets them itself.
    pub default_keys: Vec<(String, String)>,
    /// The `-d` value (length of `<pause/>`) unless the test sets it.
    pub default_pause: Duration,
}

/// Default From of the caller scenarios: a realistic number that must never reach the server side.
pub const CALLER_NAME: &str = "+49 30 1234567";
/// Default From user part of the caller scenarios.
pub const CALLER_USER: &str = "+49301234567";

impl Scenario {
    /// A scenario from XML text (no defaults).
    pub fn custom(name: &str, xml: &str) -> Scenario {
        Scenario {
            name: name.to_owned(),
            xml: xml.to_owned(),
            default_keys: Vec::new(),
            default_pause: Duration::ZERO,
        }
    }

    fn caller(name: &str, xml: &str, pause: Duration) -> Scenario {
        let mut scenario = Scenario::custom(name, xml);
        scenario.default_keys = vec![
            ("caller_name".into(), CALLER_NAME.into()),
            ("caller_user".into(), CALLER_USER.into()),
        ];
        scenario.default_pause = pause;
        scenario
    }

    /// `caller_bye.xml`: answered call, replays `caller.pcap`, hangs up after the pause (`-d`, default 5 s).
    pub fn caller_hangs_up() -> Scenario {
        let xml = include_str!("../../sipp/caller_bye.xml");
        Scenario::caller("caller_bye", xml, Duration::from_secs(5))
    }

    /// `caller_late_offer.xml`: INVITE without SDP; checks dialin's offer in the 200 and
    /// answers in the ACK; then like `caller_hangs_up`.
    pub fn caller_late_offer() -> Scenario {
        let xml = include_str!("../../sipp/caller_late_offer.xml");
        Scenario::caller("caller_late_offer", xml, Duration::from_secs(5))
    }

    /// `caller_wait_bye.xml`: answered call, replays `caller.pcap`, waits for dialin's BYE.
    pub fn caller_waits_for_bye() -> Scenario {
        let xml = include_str!("../../sipp/caller_wait_bye.xml");
        Scenario::caller("caller_wait_bye", xml, Duration::ZERO)
    }

    /// `caller_cancel.xml`: INVITE, 100, [180], [183], then `after` without another response,
    /// CANCEL, 200, 487, ACK. An answer fails the call. (The wait is a receive timeout, because
    /// sipp aborts a call on any message arriving during a `<pause/>`.)
    pub fn caller_cancels(after: Duration) -> Scenario {
        let xml = include_str!("../../sipp/caller_cancel.xml");
        let mut scenario = Scenario::caller("caller_cancel", xml, Duration::ZERO);
        let timeout = format!("timeout=\"{}\"", after.as_millis());
        scenario.xml = scenario.xml.replace("timeout=\"1000\"", &timeout);
        scenario
    }

    /// `caller_unsupported_codec.xml`: INVITE offering only G.729, expects 488, ACK.
    pub fn caller_unsupported_codec() -> Scenario {
        let xml = include_str!("../../sipp/caller_unsupported_codec.xml");
        Scenario::caller("caller_unsupported_codec", xml, Duration::ZERO)
    }

    /// `caller_rejected.xml`: INVITE, any common 4xx/5xx/6xx, ACK; see
    /// [`SippOutcome::final_response_code`] for which.
    pub fn caller_rejected() -> Scenario {
        let xml = include_str!("../../sipp/caller_rejected.xml");
        Scenario::caller("caller_rejected", xml, Duration::ZERO)
    }

    /// `caller_unanswered.xml`: INVITE, then silence for the pause (default 3 s) or the call fails.
    pub fn caller_unanswered() -> Scenario {
        let xml = include_str!("../../sipp/caller_unanswered.xml");
        Scenario::caller("caller_unanswered", xml, Duration::from_secs(3))
    }

    fn conference(name: &str, xml: &str, pause: Duration) -> Scenario {
        let mut scenario = Scenario::custom(name, xml);
        scenario.default_pause = pause;
        scenario
    }

    /// `conference_wait_bye.xml`: answers (SDP at `sdp_ip`/`sdp_port`), accepts INFO, waits for BYE.
    pub fn conference_waits_for_bye() -> Scenario {
        let xml = include_str!("../../sipp/conference_wait_bye.xml");
        Scenario::conference("conference_wait_bye", xml, Duration::ZERO)
    }

    /// `conference_bye.xml`: answers, hangs up after the pause (default 3 s).
    pub fn conference_hangs_up() -> Scenario {
        let xml = include_str!("../../sipp/conference_bye.xml");
        Scenario::conference("conference_bye", xml, Duration::from_secs(3))
    }

    /// `conference_freeswitch.xml`: FreeSWITCH 1.10.12's own 100/200 OK (captured), then after
    /// `-d` its shutdown BYE (`Reason: SIP;cause=701`, Via without port, huge CSeq).
    pub fn conference_freeswitch_shutdown() -> Scenario {
        let xml = include_str!("../../sipp/conference_freeswitch.xml");
        Scenario::conference("conference_freeswitch", xml, Duration::from_secs(3))
    }

    /// `conference_reinvite.xml`: answers, re-INVITEs with the same media after `-d` (checks
    /// the 200's SDP), then waits for dialin's BYE.
    pub fn conference_reinvites() -> Scenario {
        let xml = include_str!("../../sipp/conference_reinvite.xml");
        Scenario::conference("conference_reinvite", xml, Duration::from_secs(1))
    }

    /// `conference_reject.xml`: 100, then `code reason` (e.g. 503, 486), then expects ACK.
    pub fn conference_rejects(code: u16, reason: &str) -> Scenario {
        let xml = include_str!("../../sipp/conference_reject.xml");
        let mut scenario = Scenario::conference("conference_reject", xml, Duration::ZERO);
        // sipp parses a sent status code at load time, so it cannot be a `-key`.
        let status = "SIP/2.0 503 Service Unavailable";
        assert!(
            scenario.xml.contains(status),
            "conference_reject.xml has its status line"
        );
        scenario.xml = scenario
            .xml
            .replace(status, &format!("SIP/2.0 {code} {reason}"));
        scenario
    }

    /// `conference_no_answer.xml`: 100 and nothing else until CANCEL (then 200, 487, ACK).
    pub fn conference_never_answers() -> Scenario {
        let xml = include_str!("../../sipp/conference_no_answer.xml");
        Scenario::conference("conference_no_answer", xml, Duration::ZERO)
    }

    /// Sends `keys` as SIP INFO (`application/dtmf-relay`, `Signal=<key>`, `Duration=160`), one
    /// INFO per key, each waiting for its 200: the first `first_after` after the ACK, then `gap`
    /// apart. Works on the scenarios with an `<!-- @INFO_DIGITS@ -->` marker (caller_bye,
    /// caller_wait_bye); panics on others.
    pub fn with_info_digits(
        mut self,
        keys: &str,
        first_after: Duration,
        gap: Duration,
    ) -> Scenario {
        const MARKER: &str = "<!-- @INFO_DIGITS@ -->";
        assert!(
            self.xml.contains(MARKER),
            "{} has no INFO digits marker",
            self.name
        );
        let mut block = String::new();
        for (i, key) in keys.chars().enumerate() {
            let pause = if i == 0 { first_after } else { gap };
            write!(block, "{}", info_block(key, pause, 10 + i)).expect("writing to a String");
        }
        self.xml = self.xml.replace(MARKER, &block);
        self
    }
}

/// One INFO carrying `key`, preceded by a pause, followed by waiting for its 200.
fn info_block(key: char, pause: Duration, cseq: usize) -> String {
    format!(
        r#"<pause milliseconds="{pause}"/>
  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "[caller_name]" <sip:[caller_user]@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:[caller_user]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
  "#,
        pause = pause.as_millis()
    )
}
