//! Credentials: argon2id password hashes (PHC strings in the config) and the logon
//! lockout per remote address.
//!
//! Invariants: a password is only ever compared through argon2's constant-time
//! verification; an address with `failures_before_refusal` recent failures is refused
//! before any hash is computed, and one past `failures_before_delay` is answered only
//! after `failure_delay_ms`. A success clears the address's count; counts also expire
//! after ten minutes without a failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Limits;

/// Parses a PHC string, requiring argon2id.
pub fn parse_hash(phc: &str) -> Result<PasswordHash<'_>, String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string: {e}"))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!("algorithm {} is not argon2id", h.algorithm));
    }
    Ok(h)
}

/// Whether `password` matches the argon2id hash `phc`.
pub fn verify(phc: &str, password: &[u8]) -> bool {
    parse_hash(phc).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// Hashes a password with argon2id (m = 19 MiB, t = 2, p = 1: OWASP's baseline) and a
/// salt taken from the operating system's random source.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn fill_random(buf: &mut [u8]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("/dev/urandom: {e}"))
}

/// What to do with a logon from an address, before its password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Check it now.
    Open,
    /// Check it, but answer no earlier than this.
    Delay(Duration),
    /// Refuse it without checking.
    Refuse,
}

/// Failed logons per address.
#[derive(Debug)]
pub struct Lockout {
    limits: Limits,
    failures: HashMap<IpAddr, (u32, Instant)>,
}

const FORGET_AFTER: Duration = Duration::from_secs(600);

impl Lockout {
    /// An empty record under these limits.
    pub fn new(limits: Limits) -> Lockout {
        Lockout {
            limits,
            failures: HashMap::new(),
        }
    }

    /// How to treat the next logon from `ip`.
    pub fn gate(&mut self, ip: IpAddr, now: Instant) -> Gate {
        let n = match self.failures.get(&ip) {
            Some(&(n, last)) if now.duration_since(last) < FORGET_AFTER => n,
            _ => 0,
        };
        if n >= self.limits.failures_before_refusal {
            Gate::Refuse
        } else if n >= self.limits.failures_before_delay {
            Gate::Delay(Duration::from_millis(self.limits.failure_delay_ms))
        } else {
            Gate::Open
        }
    }

    /// Records the outcome of a checked logon.
    pub fn record(&mut self, ip: IpAddr, ok: bool, now: Instant) {
        if ok {
            self.failures.remove(&ip);
            return;
        }
        let e = self.failures.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= FORGET_AFTER {
            e.0 = 0;
        }
        *e = (e.0 + 1, now);
        if self.failures.len() > 100_000 {
            self.failures
                .retain(|_, (_, t)| now.duration_since(*t) < FORGET_AFTER);
        }
    }
}

/// Checks passwords on a thread of its own: an argon2id verification takes tens of
/// milliseconds by design, and the I/O thread must not stop for it. Each check carries
/// a tag that comes back with its answer.
pub struct Verifier<T> {
    tx: crossbeam::channel::Sender<(String, Vec<u8>, T)>,
    rx: crossbeam::channel::Receiver<(T, bool)>,
}

/// A hash no password matches in practice, checked for unknown user names so that
/// answering them takes as long as answering known ones.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$7Q8i0WlcY0Xq2P1l0z0mJ8y3fF2u0xq2m0k6b1a9c8Q";

impl<T: Send + 'static> Verifier<T> {
    /// Starts the thread; `wake` is called after each answer.
    pub fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Verifier<T>> {
        let (tx, jobs) = crossbeam::channel::unbounded::<(String, Vec<u8>, T)>();
        let (answers, rx) = crossbeam::channel::unbounded();
        std::thread::Builder::new()
            .name("cascade-auth".into())
            .spawn(move || {
                for (phc, password, tag) in jobs {
                    let ok = verify(&phc, &password);
                    if answers.send((tag, ok)).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Verifier { tx, rx })
    }

    /// Queues a check of `password` against `phc` (`None`: an unknown user, checked
    /// against a dummy hash and always refused).
    pub fn submit(&self, phc: Option<&str>, password: &[u8], tag: T) {
        let known = phc.is_some();
        let phc = phc.unwrap_or(DUMMY).to_string();
        // An unknown user is refused whatever the dummy check says.
        let password = if known { password.to_vec() } else { Vec::new() };
        let _ = self.tx.send((phc, password, tag));
    }

    /// An answer, if one is ready.
    pub fn try_recv(&self) -> Option<(T, bool)> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, b"s3cret"));
        assert!(!verify(&h, b"s3cret "));
        assert!(!verify("not a hash", b"s3cret"));
    }

    #[test]
    fn lockout_delays_then_refuses_and_success_clears() {
        let limits = Limits {
            soft_orders_per_sec: 1,
            hard_orders_per_sec: 1,
            failures_before_delay: 2,
            failure_delay_ms: 500,
            failures_before_refusal: 4,
            checks_per_address: 1,
        };
        let mut l = Lockout::new(limits);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let t = Instant::now();
        assert_eq!(l.gate(ip, t), Gate::Open);
        l.record(ip, false, t);
        assert_eq!(l.gate(ip, t), Gate::Open);
        l.record(ip, false, t);
        assert_eq!(l.gate(ip, t), Gate::Delay(Duration::from_millis(500)));
        l.record(ip, false, t);
        l.record(ip, false, t);
        assert_eq!(l.gate(ip, t), Gate::Refuse);
        assert_eq!(
            l.gate(ip, t + FORGET_AFTER),
            Gate::Open,
            "forgotten after ten minutes"
        );
        l.record(ip, true, t);
        assert_eq!(l.gate(ip, t), Gate::Open);
    }
}
