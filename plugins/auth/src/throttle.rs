//! Back-off after failed logins, per account and per client address.
//!
//! Each account name (registered or not, so that the answer says nothing
//! about which names exist) and each client address counts its recent
//! failures. Past the threshold it is locked: the first lock-out lasts
//! `lockout_ms`, each further failure doubles it up to `max_lockout_ms`.
//! While locked, logins are refused at once, without looking at the
//! password. A success clears the account's count (not the address's: one
//! valid account must not let its owner guess at others). After
//! `max_lockout_ms` without failures an entry is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ThrottleConfig;

/// What is being counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A folded account name.
    Account(String),
    /// A client address; IPv6 addresses are cut to their /64 network, which
    /// one client usually holds whole.
    Address(IpAddr),
}

impl Subject {
    pub fn address(ip: IpAddr) -> Subject {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Subject::Address(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    Subject::Address(IpAddr::V6(segments.into()))
                }
            },
            v4 => Subject::Address(v4),
        }
    }
}

/// A refusal: who is locked and for how much longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub subject: Subject,
    pub remaining: Duration,
}

impl Lockout {
    /// The message for the client.
    pub fn message(&self) -> String {
        let who = match self.subject {
            Subject::Account(_) => "this account",
            Subject::Address(_) => "your address",
        };
        format!(
            "too many failed logins for {who}; try again in {} s",
            self.seconds()
        )
    }

    /// Whole seconds left, rounded up.
    pub fn seconds(&self) -> u64 {
        self.remaining.as_secs() + u64::from(self.remaining.subsec_nanos() > 0)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// The counters.
pub struct Throttle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Subject, Entry>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn forget_after(&self) -> Duration {
        Duration::from_millis(self.config.max_lockout_ms)
    }

    fn threshold(&self, subject: &Subject) -> u32 {
        match subject {
            Subject::Account(_) => self.config.account_failures,
            Subject::Address(_) => self.config.address_failures,
        }
    }

    /// The longest lock-out in force for any of `subjects`, if any.
    pub fn check(&self, subjects: &[Subject], now: Instant) -> Option<Lockout> {
        let entries = self.entries.lock().unwrap();
        subjects
            .iter()
            .filter_map(|s| {
                let until = entries.get(s)?.locked_until?;
                (until > now).then(|| Lockout {
                    subject: s.clone(),
                    remaining: until - now,
                })
            })
            .max_by_key(|l| l.remaining)
    }

    /// Counts a failure for each subject.
    pub fn record_failure(&self, subjects: &[Subject], now: Instant) {
        let mut entries = self.entries.lock().unwrap();
        for subject in subjects {
            if !entries.contains_key(subject) && entries.len() >= self.config.max_tracked {
                self.make_room(&mut entries, now);
            }
            let entry = entries.entry(subject.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now.duration_since(entry.last_failure) > self.forget_after() {
                entry.failures = 0;
                entry.locked_until = None;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            let threshold = self.threshold(subject);
            if entry.failures >= threshold {
                let doublings = (entry.failures - threshold).min(30);
                let lockout = self
                    .config
                    .lockout_ms
                    .saturating_mul(1u64 << doublings)
                    .min(self.config.max_lockout_ms);
                entry.locked_until = Some(now + Duration::from_millis(lockout));
            }
        }
    }

    /// Clears a subject's failures (a successful login to that account).
    pub fn record_success(&self, subject: &Subject) {
        self.entries.lock().unwrap().remove(subject);
    }

    /// Drops stale entries; if none is stale, the one idle longest.
    fn make_room(&self, entries: &mut HashMap<Subject, Entry>, now: Instant) {
        let forget_after = self.forget_after();
        entries.retain(|_, e| now.duration_since(e.last_failure) <= forget_after);
        if entries.len() >= self.config.max_tracked {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(s, _)| s.clone())
            {
                entries.remove(&oldest);
            }
        }
    }

    /// Subjects tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            account_failures: 3,
            address_failures: 5,
            lockout_ms: 1000,
            max_lockout_ms: 4000,
            max_tracked: 4,
            registrations_per_address: 5,
        }
    }

    #[test]
    fn locks_after_the_threshold_and_doubles_up_to_the_maximum() {
        let t = Throttle::new(config());
        let alice = [Subject::Account("alice".into())];
        let now = Instant::now();
        t.record_failure(&alice, now);
        t.record_failure(&alice, now);
        assert_eq!(t.check(&alice, now), None);
        t.record_failure(&alice, now);
        assert_eq!(
            t.check(&alice, now).unwrap().remaining,
            Duration::from_millis(1000)
        );
        assert_eq!(t.check(&alice, now + Duration::from_millis(1000)), None);
        t.record_failure(&alice, now);
        assert_eq!(
            t.check(&alice, now).unwrap().remaining,
            Duration::from_millis(2000)
        );
        for _ in 0..10 {
            t.record_failure(&alice, now);
        }
        let lock = t.check(&alice, now).unwrap();
        assert_eq!(lock.remaining, Duration::from_millis(4000));
        assert_eq!(
            lock.message(),
            "too many failed logins for this account; try again in 4 s"
        );
        t.record_success(&alice[0]);
        assert_eq!(t.check(&alice, now), None);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let t = Throttle::new(config());
        let bob = [Subject::Account("bob".into())];
        let now = Instant::now();
        t.record_failure(&bob, now);
        t.record_failure(&bob, now);
        let later = now + Duration::from_millis(4001);
        t.record_failure(&bob, later);
        assert_eq!(t.check(&bob, later), None, "the count restarted");
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(config());
        let now = Instant::now();
        for i in 0..100 {
            t.record_failure(&[Subject::Account(format!("user{i}"))], now);
        }
        assert!(t.tracked() <= 4);
    }

    #[test]
    fn ipv6_networks_count_as_one_address() {
        let a = Subject::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Subject::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Subject::address("::ffff:10.0.0.1".parse().unwrap()),
            Subject::address("10.0.0.1".parse().unwrap())
        );
    }
}
