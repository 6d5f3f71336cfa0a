//! SIP: the rsipstack endpoint, the trunk leg (UAS) and the server leg (UAC), SDP offer/answer
//! and the source ACL for the trunk.

pub mod acl;
pub mod sdp;
