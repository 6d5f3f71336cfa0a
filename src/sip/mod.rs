//! SIP: the rsipstack endpoint, the trunk leg (UAS) and the server leg (UAC), SDP offer/answer
//! and the source ACL for the trunk.

pub mod acl;
pub mod dtmf_info;
pub mod edge;
pub mod legs;
pub mod limits;
pub mod sdp;
pub mod source_filter;
pub mod trunks;
