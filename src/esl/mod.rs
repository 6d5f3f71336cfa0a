//! FreeSWITCH Event Socket (ESL), our own client: a pure frame codec ([`frame`]), typed
//! messages ([`message`]), a sans-IO session state machine ([`session`]: auth, subscription,
//! snapshot, keepalive, request bookkeeping) and a thin tokio task per server ([`client`]:
//! socket, timers, reconnect with backoff and jitter) that feeds the conference directory.

pub mod client;
pub mod frame;
pub mod message;
pub mod session;
