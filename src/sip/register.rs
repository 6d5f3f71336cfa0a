//! Outbound registration per trunk: dialin registers with a provider's registrar so calls for
//! the number reach it (providers without fixed-address trunks require this).
//!
//! [`RegisterSchedule`] (`register_schedule`) is the sans-IO part: when to send the next
//! REGISTER and whether the trunk counts as registered, on simulated time. This file is the tokio
//! part: it sends the REGISTERs with rsipstack's [`Registration`], which answers 401 and 407 digest challenges itself, and
//! publishes each trunk's state in [`RegistrationStatus`] for the status line and metrics.
//! Nothing here logs the account name or the password.

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::StatusCodeKind;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use super::register_schedule::{Attempt, RegState, RegisterSchedule};

/// A trunk registration's settings (`[trunks.register]`, built by `config`): dialin registers
/// with the provider's registrar so that calls for the number are sent to it (providers
/// without fixed-address trunks require this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterConfig {
    /// The registrar's URI as written (`sip:sip.provider.example[:port]`), for the
    /// Request-URI and the address of record's domain.
    pub registrar: String,
    /// The registrar's resolved address (resolved once at load time); its IP is allowed to
    /// send calls for this trunk.
    pub registrar_addr: SocketAddr,
    /// The account (user part of the address of record).
    pub username: String,
    /// The digest user name when it differs from `username`.
    pub auth_username: Option<String>,
    /// The digest password, from `password_file` or `password_env`; never printed.
    pub password: crate::secret::Password,
    /// The registration lifetime dialin asks for (default 1 h); refreshed at three quarters.
    pub expires: Duration,
}

/// How long one REGISTER (with its challenge round) may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(35);

/// Each registering trunk's state, shared with the status line and metrics.
#[derive(Debug, Default)]
pub struct RegistrationStatus {
    /// Trunk name and its [`RegState`] as a number.
    trunks: Vec<(String, AtomicU8)>,
}

impl RegistrationStatus {
    /// How many trunks register.
    pub fn total(&self) -> usize {
        self.trunks.len()
    }

    /// How many of them are registered now.
    pub fn registered(&self) -> usize {
        self.states()
            .filter(|(_, s)| *s == RegState::Registered)
            .count()
    }

    /// Every registering trunk with its state.
    pub fn states(&self) -> impl Iterator<Item = (&str, RegState)> {
        self.trunks
            .iter()
            .map(|(n, s)| (n.as_str(), RegState::from_u8(s.load(Ordering::Relaxed))))
    }
}

/// The running registrations: their state, and the way to end them.
pub struct Registrations {
    /// Each trunk's state, for status and metrics.
    pub status: Arc<RegistrationStatus>,
    /// Stops the refresh loops (each then removes its binding).
    cancel: CancellationToken,
    /// The loops.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Registrations {
    /// Stops refreshing and removes every binding (REGISTER with expires 0), waiting at most
    /// `timeout` in all: at shutdown the provider then stops sending calls at once.
    pub async fn unregister_all(self, timeout: Duration) {
        self.cancel.cancel();
        let all = futures_join(self.tasks);
        tokio::time::timeout(timeout, all).await.ok();
    }
}

/// Waits for every task.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.ok();
    }
}

/// Starts one registration task per trunk in `trunks` (name and settings); `contact` is the
/// address put in the Contact header (the advertised address and SIP port).
pub fn spawn_registrations(
    endpoint: EndpointInnerRef,
    contact: SocketAddr,
    trunks: Vec<(String, RegisterConfig)>,
) -> Registrations {
    let status = Arc::new(RegistrationStatus {
        trunks: trunks
            .iter()
            .map(|(n, _)| (n.clone(), AtomicU8::new(RegState::Registering as u8)))
            .collect(),
    });
    let cancel = CancellationToken::new();
    let tasks = trunks
        .into_iter()
        .enumerate()
        .map(|(index, (name, config))| {
            tokio::spawn(register_loop(
                endpoint.clone(),
                contact,
                Trunk {
                    name,
                    config,
                    index,
                },
                status.clone(),
                cancel.clone(),
            ))
        })
        .collect();
    Registrations {
        status,
        cancel,
        tasks,
    }
}

/// One registering trunk.
struct Trunk {
    /// Its name, for logs.
    name: String,
    /// Its `[trunks.register]`.
    config: RegisterConfig,
    /// Its place in [`RegistrationStatus`].
    index: usize,
}

/// Registers one trunk until `cancel`, following its [`RegisterSchedule`]; then removes the
/// binding if there is one.
// Over 80 lines: the tokio shell of the sans-IO `RegisterSchedule`: wait, try, report, and the
// final un-REGISTER; the decisions are in the schedule.
async fn register_loop(
    endpoint: EndpointInnerRef,
    contact: SocketAddr,
    trunk: Trunk,
    status: Arc<RegistrationStatus>,
    cancel: CancellationToken,
) {
    let Trunk {
        name,
        config,
        index,
    } = trunk;
    let Ok(server) = rsipstack::sip::Uri::try_from(config.registrar.as_str()) else {
        warn!(trunk = %name, "registrar URI does not parse; not registering");
        return;
    };
    let credential = Credential {
        username: config.username.clone(),
        password: config.password.expose().to_string(),
        realm: None,
        auth_username: config.auth_username.clone(),
    };
    let mut registration = Registration::new(endpoint, Some(credential));
    registration.contact = Some(rsipstack::sip::typed::Contact {
        display_name: None,
        uri: rsipstack::sip::Uri {
            scheme: Some(rsipstack::sip::Scheme::Sip),
            auth: Some(rsipstack::sip::Auth {
                user: config.username.clone(),
                password: None,
            }),
            host_with_port: contact.into(),
            ..Default::default()
        },
        params: vec![],
    });
    let expires = config.expires.as_secs() as u32;
    let mut schedule = RegisterSchedule::new(Instant::now());
    let mut last = RegState::Registering;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(schedule.poll_timeout().into()) => {}
            _ = cancel.cancelled() => break,
        }
        let result = tokio::select! {
            r = tokio::time::timeout(ATTEMPT_TIMEOUT, registration.register(server.clone(), Some(expires))) => r,
            _ = cancel.cancelled() => break,
        };
        let attempt = match result {
            Ok(Ok(resp)) if resp.status_code.kind() == StatusCodeKind::Successful => {
                let granted = registration
                    .granted_expires
                    .filter(|g| *g > 0)
                    .unwrap_or(expires);
                Attempt::Registered {
                    granted: Duration::from_secs(granted.into()),
                }
            }
            Ok(Ok(resp)) => {
                warn!(trunk = %name, status = %resp.status_code, "registration refused; check the trunk's username and password");
                Attempt::Refused
            }
            _ => Attempt::Unreachable,
        };
        let now = Instant::now();
        schedule.handle_attempt(now, attempt);
        let state = schedule.state(now);
        status.trunks[index].1.store(state as u8, Ordering::Relaxed);
        match attempt {
            Attempt::Registered { granted } if last != RegState::Registered => {
                info!(trunk = %name, expires_s = granted.as_secs(), "registered with the provider");
            }
            Attempt::Registered { .. } => debug!(trunk = %name, "registration refreshed"),
            Attempt::Unreachable => {
                warn!(trunk = %name, failures = schedule.failures(), "registrar did not answer; retrying");
            }
            Attempt::Refused => {}
        }
        last = state;
    }
    if schedule.state(Instant::now()) == RegState::Registered {
        let removed = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            registration.register(server.clone(), Some(0)),
        )
        .await;
        let ok = matches!(removed, Ok(Ok(r)) if r.status_code.kind() == StatusCodeKind::Successful);
        info!(trunk = %name, ok, "registration removed");
    }
}
