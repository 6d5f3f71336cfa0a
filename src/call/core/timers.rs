//! The call core's one timer table: every deadline of the call in one place, so the next
//! wake-up is one look, not a fold of optionals spread over the driver.

use std::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The caller's ACK to our 200 is late (a half-open call must not hold its ports).
    Ack,
    /// Look whether media still flows (`media.timeout` since the last packet).
    MediaCheck,
    /// The session timer's expiry (RFC 4028): nobody refreshed.
    SessionExpiry,
    /// Our own session refresh is due.
    SessionRefresh,
    /// A routing answer held back by guessing protection is due.
    HeldRoute,
    /// The next BBB API lookup of a meeting ID is due.
    MeetingPoll,
    /// The call flow's deadline (PIN timers, server answer, echo end, waiting room).
    Flow,
    /// Look whether the bridged server still sends (its silence, or ICMP errors, mean it
    /// was lost).
    ServerCheck,
    /// A caller whose server leg was lost: look again whether the meeting runs.
    Rejoin,
    /// Ask the bridged server with OPTIONS whether it still holds the leg (only where its
    /// silence does not count).
    ServerProbe,
}

impl Timer {
    /// Every timer, in the order due timers fire when several are due at once.
    pub const ALL: [Timer; 10] = [
        Timer::SessionExpiry,
        Timer::Ack,
        Timer::MediaCheck,
        Timer::ServerCheck,
        Timer::Rejoin,
        Timer::ServerProbe,
        Timer::SessionRefresh,
        Timer::Flow,
        Timer::MeetingPoll,
        Timer::HeldRoute,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms (or moves) `timer` to `at`; `None` disarms it.
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// When `timer` is due, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| t <= now)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The timers due at `now`, in [`Timer::ALL`]'s order.
    pub fn due(&self, now: Instant) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL.into_iter().filter(move |t| self.is_due(*t, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_table_answers_the_earliest_deadline_and_what_is_due() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::MediaCheck, Some(t0 + Duration::from_secs(30)));
        table.set(Timer::Ack, Some(t0 + Duration::from_secs(10)));
        table.set(Timer::Flow, Some(t0 + Duration::from_secs(5)));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(5)));
        let due: Vec<_> = table.due(t0 + Duration::from_secs(10)).collect();
        assert_eq!(due, [Timer::Ack, Timer::Flow]);
        table.set(Timer::Flow, None);
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(10)));
        assert!(!table.is_due(Timer::MediaCheck, t0 + Duration::from_secs(29)));
    }
}
