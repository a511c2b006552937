//! Django REST framework's `AnonRateThrottle`: a sliding window of request times per client
//! address (facts §5).
//!
//! The backend throttles anonymous calls, `/info/` among them, to `DEFAULT_THROTTLE_RATES`
//! per minute per client IP. Organizations on one cluster share an IP, which is why the
//! harness paces its table polling; the twin must throttle the same way for that to matter.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The throttle window of a `N/minute` rate.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The outcome of one throttle check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Rejected; DRF's estimate of the seconds until a request would pass, rounded up, when
    /// it can give one.
    Throttled {
        wait_seconds: Option<u64>,
    },
}

/// The response detail DRF writes for a throttled request.
pub fn throttled_detail(wait_seconds: Option<u64>) -> String {
    match wait_seconds {
        None => "Request was throttled.".to_owned(),
        Some(1) => "Request was throttled. Expected available in 1 second.".to_owned(),
        Some(seconds) => format!("Request was throttled. Expected available in {seconds} seconds."),
    }
}

/// Request histories per client address, newest first as DRF keeps them.
#[derive(Debug, Default)]
pub struct Throttle {
    histories: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Throttle {
    /// Records one anonymous request from `client` unless it exceeds `limit` per [`WINDOW`].
    pub fn check(&mut self, client: IpAddr, limit: u32, now: Instant) -> Decision {
        let history = self.histories.entry(client).or_default();
        while history
            .back()
            .is_some_and(|oldest| now.saturating_duration_since(*oldest) >= WINDOW)
        {
            history.pop_back();
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if history.len() >= limit {
            let remaining = match history.back() {
                Some(oldest) => WINDOW.saturating_sub(now.saturating_duration_since(*oldest)),
                None => WINDOW,
            };
            // DRF spreads the remaining window over the requests that will become available.
            let available = (limit + 1).saturating_sub(history.len());
            let wait_seconds = (available > 0).then(|| {
                let wait = remaining.as_secs_f64() / available as f64;
                wait.ceil() as u64
            });
            return Decision::Throttled { wait_seconds };
        }
        history.push_front(now);
        Decision::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_limit_applies_per_client_in_a_sliding_window() {
        let mut throttle = Throttle::default();
        let first = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1));
        let second = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1));
        let start = Instant::now();
        assert_eq!(throttle.check(first, 2, start), Decision::Allowed);
        assert_eq!(
            throttle.check(first, 2, start + Duration::from_secs(10)),
            Decision::Allowed
        );
        assert_eq!(
            throttle.check(first, 2, start + Duration::from_secs(20)),
            Decision::Throttled {
                wait_seconds: Some(40)
            }
        );
        assert_eq!(throttle.check(second, 2, start), Decision::Allowed);
        // The oldest request leaves the window after 60 s.
        assert_eq!(throttle.check(first, 2, start + WINDOW), Decision::Allowed);
    }

    #[test]
    fn details_read_like_drf() {
        assert_eq!(
            throttled_detail(Some(12)),
            "Request was throttled. Expected available in 12 seconds."
        );
        assert_eq!(
            throttled_detail(Some(1)),
            "Request was throttled. Expected available in 1 second."
        );
    }

    #[test]
    fn a_zero_limit_throttles_everything() {
        let mut throttle = Throttle::default();
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(matches!(
            throttle.check(client, 0, Instant::now()),
            Decision::Throttled {
                wait_seconds: Some(60)
            }
        ));
    }
}
