//! Liveness and readiness: `/healthz` says the process answers; `/readyz` says it should get
//! calls, by asking a list of [`ReadinessCheck`]s (SIP listener bound, not draining; later the
//! store and the Event Socket connections plug in here).

use serde::Serialize;
use std::sync::Arc;

/// Why dialin should not get new calls now; shown as the check's `reason` in `/readyz` (no
/// personal data). Each message says what is wrong and where to look.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotReady {
    /// The SIP listener was stopped (shutdown): restart dialin to take calls again.
    #[error("the SIP listener has stopped")]
    SipListenerStopped,
    /// The PIN store does not answer: check the database named by `[store]`.
    #[error("the PIN store cannot be read")]
    StoreUnreachable,
    /// Event Sockets are configured but none is connected: check `esl` of `[[servers]]`.
    #[error("no server's Event Socket is connected")]
    NoEventSocket,
    /// A drain runs: this instance finishes its calls and takes no new ones.
    #[error("draining: new calls go elsewhere")]
    Draining,
}

/// One condition for being ready to take calls.
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short fixed name for the check (shown in `/readyz`).
    fn name(&self) -> &'static str;
    /// `Ok` when ready; otherwise a short reason without personal data.
    fn check(&self) -> Result<(), NotReady>;
}

/// A check made of a name and a closure.
pub struct FnCheck<F> {
    /// The check's name.
    name: &'static str,
    /// The condition.
    f: F,
}

impl<F> FnCheck<F>
where
    F: Fn() -> Result<(), NotReady> + Send + Sync + 'static,
{
    /// A check called `name` that runs `f`.
    pub fn shared(name: &'static str, f: F) -> Arc<dyn ReadinessCheck> {
        Arc::new(FnCheck { name, f })
    }
}

impl<F> ReadinessCheck for FnCheck<F>
where
    F: Fn() -> Result<(), NotReady> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn check(&self) -> Result<(), NotReady> {
        (self.f)()
    }
}

/// The result of one check, as `/readyz` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Why not, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Runs every check; ready when all pass.
pub fn readiness(checks: &[Arc<dyn ReadinessCheck>]) -> (bool, Vec<CheckResult>) {
    let results: Vec<CheckResult> = checks
        .iter()
        .map(|c| match c.check() {
            Ok(()) => CheckResult {
                name: c.name(),
                ok: true,
                reason: None,
            },
            Err(reason) => CheckResult {
                name: c.name(),
                ok: false,
                reason: Some(reason.to_string()),
            },
        })
        .collect();
    (results.iter().all(|r| r.ok), results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let ok = FnCheck::shared("sip", || Ok(()));
        let bad = FnCheck::shared("draining", || Err(NotReady::Draining));
        assert!(readiness(std::slice::from_ref(&ok)).0);
        assert!(readiness(&[]).0);
        let (ready, results) = readiness(&[ok, bad]);
        assert!(!ready);
        assert_eq!(
            results[1].reason.as_deref(),
            Some("draining: new calls go elsewhere")
        );
    }
}
