//! SIP: the rsipstack endpoint, the trunk leg (UAS) and the server leg (UAC), SDP offer/answer
//! and the source ACL for the trunk.

pub mod acl;
pub mod answer;
pub mod capabilities;
pub mod conn_limits;
pub mod dialog_events;
pub mod dtmf_info;
pub mod edge;
pub mod incoming;
pub mod invite_check;
pub mod legs;
pub mod limits;
pub mod register;
pub mod register_schedule;
pub mod request_check;
pub mod sdes;
pub mod sdp;
pub mod session_timer;
pub mod source_filter;
pub mod tls;
pub mod trunks;
