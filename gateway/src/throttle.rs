//! Per-session order throttles: orders (new and replace) counted in one-second
//! windows. Cancels are never counted, so a session can always reduce its risk.
//!
//! Invariant: within one window, the first `soft` orders pass, the next ones up to
//! `hard` are rejected, and the one past `hard` logs the session out.

use std::time::{Duration, Instant};

/// What to do with an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on.
    Pass,
    /// Reject it with a throttle reason.
    Reject,
    /// Log the session out.
    Logout,
}

/// One session's window.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    soft: u32,
    hard: u32,
    start: Instant,
    count: u32,
}

impl Throttle {
    /// A throttle allowing `soft` orders a second and logging out past `hard`.
    pub fn new(soft: u32, hard: u32, now: Instant) -> Throttle {
        Throttle {
            soft,
            hard,
            start: now,
            count: 0,
        }
    }

    /// Counts one order at `now`.
    pub fn order(&mut self, now: Instant) -> Verdict {
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        if self.count > self.hard {
            Verdict::Logout
        } else if self.count > self.soft {
            Verdict::Reject
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_rejects_hard_logs_out_and_the_window_resets() {
        use Verdict::{Logout, Pass, Reject};
        let t0 = Instant::now();
        let mut t = Throttle::new(3, 5, t0);
        let v: Vec<_> = (0..6).map(|_| t.order(t0)).collect();
        assert_eq!(v, [Pass, Pass, Pass, Reject, Reject, Logout]);
        assert_eq!(t.order(t0 + Duration::from_secs(1)), Pass);
    }
}
