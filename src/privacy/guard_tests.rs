use super::*;
use crate::privacy::pseudonym::Pseudonymizer;
use crate::secret::CallerNumber;
use std::net::Ipv4Addr;
use std::time::{Instant, UNIX_EPOCH};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn caller(n: &str) -> CallerKey {
    Pseudonymizer::new(Instant::now(), Duration::from_secs(86_400), [3; 32])
        .caller(&CallerNumber::new(n))
}

fn net(a: u8, b: u8, c: u8, d: u8) -> SourceNet {
    SourceNet::of(
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
        &GuardLimits::default(),
    )
}

/// Minute offsets of failed calls → the standing right after each.
#[test]
fn three_failed_calls_in_ten_minutes_block_with_back_off() {
    let mut g = Guard::new(GuardLimits::default());
    let alice = caller("+4930111");
    let min = |m: u64| at(m * 60);
    // (minute, failed?, blocked afterwards until minute …)
    let steps: [(u64, bool, Option<u64>); 9] = [
        (0, true, None),
        (4, true, None),
        (5, false, None), // a good call does not count
        (9, true, Some(19)),
        // blocked calls are not failures; after the block, the count starts again
        (20, true, None),
        (21, true, None),
        (22, true, Some(42)), // second block: 20 minutes
        (43, true, None),
        (44, true, None),
    ];
    for (minute, failed, blocked_until) in steps {
        assert_eq!(
            g.check_caller(min(minute), &alice),
            Standing::Allowed,
            "{minute}"
        );
        g.record_call(min(minute), &alice, failed);
        let want = match blocked_until {
            Some(until) => Standing::Blocked { until: min(until) },
            None => Standing::Allowed,
        };
        assert_eq!(g.check_caller(min(minute), &alice), want, "after {minute}");
    }
    // Third block: 40 minutes.
    g.record_call(min(45), &alice, true);
    assert_eq!(
        g.check_caller(min(84), &alice),
        Standing::Blocked { until: min(85) }
    );
    assert_eq!(g.check_caller(min(85), &alice), Standing::Allowed);
    let counts = g.counts();
    assert_eq!(counts.blocks, 3);
    // The checks right after the first two blocks, and the one at minute 84.
    assert_eq!(counts.blocked_calls, 3);
}

#[test]
fn failures_spread_over_more_than_the_window_do_not_block() {
    let mut g = Guard::new(GuardLimits::default());
    let bob = caller("+4930222");
    for minute in [0, 6, 12, 18, 24] {
        g.record_call(at(minute * 60), &bob, true);
        assert_eq!(g.check_caller(at(minute * 60), &bob), Standing::Allowed);
    }
}

#[test]
fn blocks_never_exceed_the_maximum_and_strikes_are_forgotten() {
    let limits = GuardLimits {
        failed_calls: 1,
        block: Duration::from_secs(60),
        block_max: Duration::from_secs(300),
        ..GuardLimits::default()
    };
    let mut g = Guard::new(limits);
    let c = caller("+4930333");
    let mut t = 0;
    let mut lengths = Vec::new();
    for _ in 0..6 {
        g.record_call(at(t), &c, true);
        let Standing::Blocked { until } = g.check_caller(at(t), &c) else {
            panic!("blocked");
        };
        let len = until.duration_since(at(t)).unwrap().as_secs();
        lengths.push(len);
        t += len;
    }
    assert_eq!(lengths, [60, 120, 240, 300, 300, 300]);
    // Quiet for block_max: the next failure starts again at the first block.
    t += 300;
    g.record_call(at(t), &c, true);
    assert_eq!(
        g.check_caller(at(t), &c),
        Standing::Blocked { until: at(t + 60) }
    );
}

#[test]
fn withheld_callers_share_one_bucket() {
    let mut g = Guard::new(GuardLimits::default());
    let hidden = caller("anonymous");
    assert_eq!(hidden, CallerKey::Withheld);
    for i in 0..3 {
        // Different people (or one hiding), all withheld.
        g.record_call(at(i * 10), &caller(""), true);
    }
    assert!(matches!(
        g.check_caller(at(31), &hidden),
        Standing::Blocked { .. }
    ));
    // A presented number is not affected.
    assert_eq!(
        g.check_caller(at(31), &caller("+4930444")),
        Standing::Allowed
    );
}

#[test]
fn zero_failed_calls_never_blocks() {
    let limits = GuardLimits {
        failed_calls: 0,
        ..GuardLimits::default()
    };
    let mut g = Guard::new(limits);
    let c = caller("+4930555");
    for i in 0..20 {
        g.record_call(at(i), &c, true);
    }
    assert_eq!(g.check_caller(at(21), &c), Standing::Allowed);
}

#[test]
fn a_network_over_its_rate_gets_slower_answers_others_do_not() {
    let limits = GuardLimits {
        failed_pins_per_network: 5,
        failed_pins_global: 1000,
        rate_window: Duration::from_secs(60),
        slow_answer: Duration::from_secs(1),
        slow_answer_max: Duration::from_secs(8),
        ..GuardLimits::default()
    };
    let mut g = Guard::new(limits);
    let bad = net(192, 0, 2, 7);
    let same_net = net(192, 0, 2, 200);
    let other = net(198, 51, 100, 1);
    // (wrong PINs so far, expected delay in seconds) within one second.
    let expected = [(1, 0), (5, 0), (6, 1), (7, 2), (8, 4), (9, 8), (15, 8)];
    let mut sent = 0;
    for (n, delay) in expected {
        while sent < n {
            g.record_failed_pin(at(0), &bad);
            sent += 1;
        }
        assert_eq!(g.answer_delay(at(0), &bad).as_secs(), delay, "{n} failures");
        assert_eq!(g.answer_delay(at(0), &same_net).as_secs(), delay);
        assert_eq!(g.answer_delay(at(0), &other), Duration::ZERO);
    }
    // Half a window later half of the old failures still count (15 / 2 = 7.5 → 2.5 over).
    assert_eq!(g.answer_delay(at(90), &bad).as_secs(), 4);
    // Two windows later nothing does.
    assert_eq!(g.answer_delay(at(200), &bad), Duration::ZERO);
    assert!(g.counts().delayed_answers > 0);
    assert_eq!(g.counts().failed_pins, 15);
}

#[test]
fn the_global_rate_slows_everyone() {
    let limits = GuardLimits {
        failed_pins_per_network: 0,
        failed_pins_global: 3,
        ..GuardLimits::default()
    };
    let mut g = Guard::new(limits);
    for i in 0..4u8 {
        g.record_failed_pin(at(1), &net(10, i, 0, 1));
    }
    let delay = g.answer_delay(at(2), &net(203, 0, 113, 9));
    assert_eq!(delay, limits.slow_answer);
}

#[test]
fn source_networks_group_by_prefix() {
    let l = GuardLimits::default();
    let v6 = |s: &str| SourceNet::of(Some(s.parse().unwrap()), &l);
    assert_eq!(net(192, 0, 2, 1), net(192, 0, 2, 254));
    assert_ne!(net(192, 0, 2, 1), net(192, 0, 3, 1));
    assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:ffff::9"));
    assert_ne!(v6("2001:db8:1::1"), v6("2001:db8:2::1"));
    assert_eq!(SourceNet::of(None, &l), SourceNet::of(None, &l));
    assert_eq!(format!("{:?}", net(192, 0, 2, 1)), "SourceNet(<hidden>)");
    let all = GuardLimits {
        network_prefix_v4: 0,
        ..l
    };
    assert_eq!(
        SourceNet::of(Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))), &all),
        SourceNet::of(Some(IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9))), &all)
    );
}

#[test]
fn memory_stays_bounded() {
    let mut g = Guard::new(GuardLimits::default());
    let p = Pseudonymizer::new(Instant::now(), Duration::from_secs(86_400), [4; 32]);
    for i in 0..(MAX_KEYS + 10) {
        let c = p.caller(&CallerNumber::new(&format!("+49{i}")));
        g.record_call(at(i as u64 / 1000), &c, true);
    }
    assert_eq!(g.tracked().0, MAX_KEYS);
}

#[test]
fn a_clock_going_backwards_does_not_panic() {
    let mut g = Guard::new(GuardLimits::default());
    let c = caller("+4930666");
    g.record_call(at(100), &c, true);
    g.record_call(at(50), &c, true);
    g.record_failed_pin(at(100), &net(1, 1, 1, 1));
    g.record_failed_pin(at(10), &net(1, 1, 1, 1));
    let _ = g.answer_delay(at(5), &net(1, 1, 1, 1));
    let _ = g.check_caller(at(0), &c);
}
