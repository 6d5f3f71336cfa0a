//! Media: RTP packets, G.711, RFC 4733 telephone events, prompts, the RTP port pool, each
//! call's media state (`call_media`) and the relay that carries its packets (`relay`).
//!
//! Everything here but the relay's socket loop is pure and allocation-free per packet.

pub mod call_media;
pub mod dtmf;
pub mod event_clock;
pub mod g711;
pub mod inband_dtmf;
pub mod ports;
pub mod prompt;
pub mod relay;
pub mod rtp;
pub mod side;
pub mod srtp;
pub mod wav;

pub use side::Side;
