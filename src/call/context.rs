//! What every call shares: the dialog layer, the reloadable settings (routing, prompts, PIN and
//! flow timing), the RTP port pool, the drain state and counters.

use crate::call::admission::{Admission, CallSlot, Refusal};
use crate::call::flow::FlowSettings;
use crate::call::PromptId;
use crate::media::ports::{PortError, PortLease, PortPool};
use crate::media::prompt::EncodedPrompt;
use crate::media::relay::Shards;
use crate::ops::calls::CallRegistry;
use crate::ops::drain::Lifecycle;
use crate::routing::Router;
use crate::sip::sdes::SrtpPolicy;
use crate::sip::trunks::TrunkTable;
use rsipstack::dialog::dialog_layer::DialogLayer;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The prompt set of the configured language, encoded once at start-up.
pub struct Prompts {
    /// Indexed by `PromptId as usize`, in [`PromptId::ALL`] order.
    prompts: Vec<EncodedPrompt>,
}

impl Prompts {
    /// Takes one encoded prompt per [`PromptId::ALL`] entry, in that order.
    pub fn new(prompts: Vec<EncodedPrompt>) -> Prompts {
        assert_eq!(
            prompts.len(),
            PromptId::ALL.len(),
            "one prompt per PromptId"
        );
        Prompts { prompts }
    }

    /// The prompt for `id`.
    pub fn get(&self, id: PromptId) -> &EncodedPrompt {
        let idx = PromptId::ALL
            .iter()
            .position(|p| *p == id)
            .expect("PromptId::ALL lists every prompt");
        &self.prompts[idx]
    }
}

/// Live counters, read by the status report and the tests.
#[derive(Default, Debug)]
pub struct CallStats {
    /// Calls whose driver task is running.
    pub active: AtomicUsize,
    /// Calls started since start-up; also numbers calls in the log (`call=N`).
    pub started: AtomicU64,
    /// Calls bridged to a BBB server's conference (not the echo test).
    pub bridged: AtomicU64,
    /// Calls that reached the built-in echo test (PIN 00000): counted apart so `bridged`
    /// says how many callers reached a meeting.
    pub echo_tests: AtomicU64,
    /// Calls refused with 503 because `media.rtp_ports` had no free pair.
    pub refused_no_port: AtomicU64,
}

/// Decrements [`CallStats::active`] when a call's task ends, on every exit path.
pub struct ActiveCallGuard(Arc<CallContext>);

impl Drop for ActiveCallGuard {
    fn drop(&mut self) {
        self.0.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a configuration reload replaces: each call takes the set in force when it starts
/// ([`CallContext::settings`]) and keeps it to its end, so a reload never changes a call midway.
pub struct CallSettings {
    /// PIN → target (servers, `[[pins]]`, `[routing]`).
    pub router: Router,
    /// Encoded prompts (`[ivr]` language and sounds).
    pub prompts: Prompts,
    /// PIN and flow timing.
    pub flow: FlowSettings,
    /// `sip.answer_delay`: how long to ring before answering.
    pub answer_delay: Duration,
    /// `media.timeout`.
    pub media_timeout: Duration,
    /// `media.server_silence` (zero: off).
    pub server_silence: Duration,
    /// `media.server_probe` (zero: off).
    pub server_probe: Duration,
}

/// Everything a call driver needs besides its own state.
pub struct CallContext {
    /// rsipstack's dialog layer (both legs' dialogs live here).
    pub dialog_layer: Arc<DialogLayer>,
    /// Every dialog's state changes, one shared channel handed out per call leg by Call-ID.
    pub dialog_events: Arc<crate::sip::dialog_events::DialogEvents>,
    /// Our Contact URI.
    pub contact: rsipstack::sip::Uri,
    /// Our Contact URI for calls that arrive over TLS (`;transport=tls`, the TLS port), so
    /// the caller's in-dialog requests come back over TLS; `None` without TLS.
    pub tls_contact: Option<rsipstack::sip::Uri>,
    /// The address put in SDP (`sip.advertise`).
    pub advertise: IpAddr,
    /// The local address RTP sockets bind to (the IP of `sip.listen`).
    pub rtp_bind: IpAddr,
    /// The SIP port, for the From URI of the server leg.
    pub sip_port: u16,
    /// The settings in force; replaced whole by a reload (SIGHUP). Read once per call.
    pub settings: RwLock<Arc<CallSettings>>,
    /// RTP ports (`media.rtp_ports`).
    pub ports: PortPool,
    /// Meeting ID → running meeting's voiceBridge, for store mappings to a BBB meeting.
    pub meetings: Arc<dyn crate::bbb_api::MeetingDirectory>,
    /// `sip.session_min_se`: the shortest session-timer interval accepted.
    pub session_min_se: Duration,
    /// `sip.early_media`: the voice menu as early media, 200 once bridged.
    pub early_media: bool,
    /// Counters.
    pub stats: CallStats,
    /// The caller-ID policy, log pseudonyms and per-conference caller numbers.
    pub privacy: Arc<crate::privacy::Privacy>,
    /// Guessing protection: blocked callers and failed-PIN rates.
    pub ledger: Arc<dyn crate::privacy::ledger::AttemptLedger>,
    /// Drain state: whether new calls are refused, and the signal that ends every call.
    pub lifecycle: Arc<Lifecycle>,
    /// The calls in progress, for the admin API and the per-state gauges.
    pub calls: CallRegistry,
    /// The Event Socket of each watched server, by server name (for the mute key).
    pub esl: std::collections::HashMap<crate::ids::ServerName, crate::esl::client::EslHandle>,
    /// The concurrent-call, per-trunk and IVR limits.
    pub admission: Arc<Admission>,
    /// Which trunk a new call's source belongs to (for its per-trunk limit).
    pub trunks: TrunkTable,
    /// `limits.retry_after`: what a 503 for a full limit or no RTP port asks the trunk to wait.
    pub retry_after: Duration,
    /// Each trunk's SRTP setting, in [`TrunkTable`] order (named trunks, then `[trunk]`).
    pub srtp: Vec<SrtpPolicy>,
    /// The call shards every call's task runs on (its media relayed by the shard's loop);
    /// started and shut down by `serve`.
    pub shards: Arc<Shards>,
}

impl CallContext {
    /// Counts a new call as active until the returned guard drops; also gives its number.
    pub fn call_started(self: &Arc<Self>) -> (ActiveCallGuard, u64) {
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let n = self.stats.started.fetch_add(1, Ordering::Relaxed) + 1;
        (ActiveCallGuard(self.clone()), n)
    }

    /// The settings in force now; a call keeps the ones it started with.
    pub fn settings(&self) -> Arc<CallSettings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `settings` in force for calls that start from now on.
    pub fn replace_settings(&self, settings: CallSettings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Admits a call from `source` (its trunk's limit applies), or says which limit is full.
    pub fn admit(&self, source: Option<IpAddr>) -> Result<CallSlot, Refusal> {
        let trunk = source.and_then(|ip| self.trunks.classify(ip));
        self.admission.admit(trunk)
    }

    /// The SRTP setting for a call from `trunk` (the default trunk's when unknown).
    pub fn srtp_policy(&self, trunk: Option<usize>) -> SrtpPolicy {
        trunk
            .and_then(|t| self.srtp.get(t))
            .or(self.srtp.last())
            .copied()
            .unwrap_or_default()
    }

    /// Takes an RTP port for one leg and binds its socket on `rtp_bind`. The lease returns the
    /// port to the pool when it drops, on every exit path of the call. The error is the port
    /// pool's own ([`PortError`]: exhausted, or a bind no other port would fix), so callers
    /// can tell a full range (503, retry later) from a broken address.
    pub fn bind_rtp(&self) -> Result<(PortLease, std::net::UdpSocket), PortError> {
        self.ports.bind(self.rtp_bind)
    }

    /// The read-only view of the live directory (per-server Event Socket state, conference
    /// counts, collisions), for status and metrics; `None` when no server has `esl`.
    pub fn directory_view(&self) -> Option<crate::routing::shared_directory::DirectoryView> {
        self.settings().router.directory().map(|d| d.view())
    }

    /// One line for the status report: counts only, nothing about callers.
    pub fn status_line(&self) -> String {
        let guard = self.ledger.counts();
        let counts = self.admission.counts();
        let mut line = format!(
            "active_calls={} calls_started={} calls_bridged={} echo_tests={} rtp_port_pairs_in_use={} sip_dialogs={} calls_in_ivr={} calls_blocked={} pin_answers_delayed={}",
            self.stats.active.load(Ordering::Relaxed),
            self.stats.started.load(Ordering::Relaxed),
            self.stats.bridged.load(Ordering::Relaxed),
            self.stats.echo_tests.load(Ordering::Relaxed),
            self.ports.in_use(),
            self.dialog_layer.len(),
            counts.ivr,
            guard.blocked_calls,
            guard.delayed_answers,
        );
        if let Some(view) = self.directory_view() {
            for s in view.servers(std::time::Instant::now()) {
                line.push_str(&format!(
                    " esl_{}={:?} conferences_{}={}",
                    s.name, s.state, s.name, s.conferences
                ));
            }
            line.push_str(&format!(" conference_collisions={}", view.collisions()));
        }
        line
    }
}
