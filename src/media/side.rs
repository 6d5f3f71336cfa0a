//! Which of a call's two legs something is about: the caller's (the trunk) or the BBB
//! server's.
//!
//! Why an enum and not a `bool`: `relay_queued(.., true)` or `server: true` say nothing at the
//! call site, and a flipped bool relays a packet back to where it came from. Media and the
//! call share it, so it lives here and is re-exported as [`crate::media::Side`].

/// One leg of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg, from the provider's trunk.
    Caller,
    /// The leg to the BBB server's conference (FreeSWITCH).
    Server,
}

impl Side {
    /// The leg's position in per-leg pairs (`[caller, server]`), such as a path's connected
    /// peers or its two quality records.
    pub const fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Server => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Side;

    #[test]
    fn the_caller_comes_first_in_per_leg_pairs() {
        assert_eq!([Side::Caller.index(), Side::Server.index()], [0, 1]);
    }
}
