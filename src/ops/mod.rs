//! Operating dialin: metrics, health, status (with calls refused by reason, [`refusals`]),
//! graceful drain, configuration reload, the allocator setting ([`allocator`]), the SIP
//! threads' scheduler slice ([`sched`]) and the systemd notification protocol. The HTTP side is [`http::routes`], mounted on the admin
//! listener; [`client`] is the other end, for `dialin status` and `dialin drain`.

pub mod allocator;
pub mod calls;
pub mod client;
pub mod drain;
pub mod end_signal;
pub mod health;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod refusals;
pub mod reload;
pub mod rtp_counters;
pub mod rtp_quality;
pub mod sched;
pub mod status;
