//! Operating dialin, the parts the call layer counts and waits through: metrics, health, the
//! registry of calls in progress, graceful drain, the allocator setting ([`allocator`]), the
//! SIP threads' scheduler slice ([`sched`]) and the systemd notification protocol; [`client`]
//! is the admin API's other end, for `dialin status` and `dialin drain`. What looks at the
//! whole service (status, reload, the HTTP routes, refusals by reason) lives in `serve`, which
//! may import every module: so `ops` imports nothing of `call`, `media`, `config` or `sounds`.

pub mod allocator;
pub mod calls;
pub mod client;
pub mod drain;
pub mod end_signal;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod rtp_counters;
pub mod rtp_quality;
pub mod sched;
