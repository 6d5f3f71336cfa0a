//! Media: RTP packets, G.711, RFC 4733 telephone events, prompts and the RTP port pool.
//!
//! Everything here but the socket loops is pure and allocation-free per packet.

pub mod dtmf;
pub mod event_clock;
pub mod g711;
pub mod ports;
pub mod prompt;
pub mod rtp;
pub mod srtp;
pub mod wav;
