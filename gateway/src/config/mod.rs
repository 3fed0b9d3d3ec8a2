//! The gateway's configuration: a TOML file read with `serde`, checked as a whole
//! before anything starts, and turned into the core's types.
//!
//! Invariants: a [`GatewayConfig`] that passed [`GatewayConfig::check`] has unique
//! symbols, account ids and user names; every market converts to a `MarketConfig` the
//! core accepts; every password hash is a parseable argon2 PHC string; and the engine's
//! capacities hold every configured market and account. Every error names the key.

mod markets;

use std::path::PathBuf;

use cascade_core::{AccountId, EngineConfig};
use serde::{Deserialize, Serialize};

use crate::journal::FsyncPolicy;
pub use markets::{LiquidationSpec, MarketSpec, RiskSpec, TierSpec};

/// The configuration shipped in the binary: two demo perpetuals and three demo traders.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The whole gateway configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listeners, journal, threads and buffers.
    pub gateway: Listen,
    /// Engine capacities (fixed for the life of a journal).
    pub engine: EngineSpec,
    /// Rate limits and logon lockout.
    pub limits: Limits,
    /// The admin credential.
    pub admin: Admin,
    /// Tradable markets, in market-id order.
    pub markets: Vec<MarketSpec>,
    /// Trading accounts and their credentials.
    pub accounts: Vec<AccountSpec>,
}

/// Where the gateway listens and keeps its data.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The gateway's FIX CompID (the clients' TargetCompID).
    pub comp_id: String,
    /// Address every listener binds.
    pub host: String,
    /// FIX 4.4 order entry port (0: any free port).
    pub fix_port: u16,
    /// Binary order entry port.
    pub binary_port: u16,
    /// Market data port.
    pub marketdata_port: u16,
    /// Prometheus metrics port.
    pub metrics_port: u16,
    /// Journal, snapshots and session stores.
    pub journal_dir: PathBuf,
    /// `batch`, `interval-ms:N` or `never`.
    pub fsync: String,
    /// Commands between snapshots (0: only at shutdown).
    pub snapshot_every: u64,
    /// Capacity of the ring from the I/O thread to the engine (a power of two).
    pub inbound_ring: usize,
    /// Capacity of the ring from the engine to the I/O thread (a power of two).
    pub outbound_ring: usize,
    /// CPU to pin the engine thread to (-1: do not pin).
    pub engine_cpu: i32,
    /// Largest accepted FIX message or binary frame, bytes.
    pub max_message_bytes: usize,
    /// A market-data subscriber whose unsent bytes pass this is disconnected.
    pub md_buffer_bytes: usize,
    /// FIX SendingTime may differ from the gateway's clock by at most this much.
    pub sending_time_tolerance_secs: u64,
}

/// Engine capacities, as in `EngineConfig`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// Resting orders.
    pub max_orders: u32,
    /// Accounts.
    pub max_accounts: u32,
    /// Markets.
    pub max_markets: u32,
    /// Position slots (account × market pairs).
    pub max_positions: u32,
    /// Resting stop and take-profit orders.
    pub max_conditionals: u32,
    /// Accounts waiting for liquidation at once.
    pub liquidation_ring: u32,
    /// Resting orders of one account.
    pub max_orders_per_account: u32,
}

/// Per-session throttles and the logon lockout.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Orders (new and replace) per second above which orders are rejected.
    pub soft_orders_per_sec: u32,
    /// Orders per second above which the session is logged out.
    pub hard_orders_per_sec: u32,
    /// Failed logons from one address before each further try waits.
    pub failures_before_delay: u32,
    /// How long a logon from a failing address is held before it is answered, ms.
    pub failure_delay_ms: u64,
    /// Failed logons from one address after which it is refused outright.
    pub failures_before_refusal: u32,
    /// Logons from one address whose passwords may be in check at once (each check
    /// takes tens of milliseconds of a core); more are refused until they finish.
    pub checks_per_address: u32,
}

/// The admin credential (admin commands come only from this user's session).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// FIX SenderCompID and binary user name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// One trading account.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// FIX SenderCompID and binary user name.
    pub username: String,
    /// Engine account id.
    pub id: u32,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Collateral credited when the account is first opened, quote atoms.
    pub deposit: i64,
    /// Cancel the account's resting orders when its last session disconnects.
    pub cancel_on_disconnect: bool,
}

/// A configuration that failed to load: the key and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the key (`markets[0].tick`), or the file for a syntax error.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Builds a [`ConfigError`].
pub(crate) fn bad(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

impl GatewayConfig {
    /// The embedded default.
    pub fn default_config() -> GatewayConfig {
        GatewayConfig::parse(DEFAULT_TOML).expect("the embedded default config is valid")
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        let cfg: GatewayConfig = toml::from_str(text).map_err(|e| {
            let key = e
                .message()
                .split('`')
                .nth(1)
                .unwrap_or("(file)")
                .to_string();
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .map_or(String::new(), |l| format!(" (line {l})"));
            bad(key, format!("{}{line}", e.message().trim()))
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads, parses and checks a file.
    pub fn load(path: &std::path::Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path.display().to_string(), e.to_string()))?;
        GatewayConfig::parse(&text)
    }

    /// Checks everything the types cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.check_gateway()?;
        self.engine_config()
            .validate()
            .map_err(|e| bad("engine", format!("{e:?}")))?;
        self.check_limits()?;
        if self.markets.is_empty() {
            return Err(bad("markets", "at least one market is needed"));
        }
        if self.markets.len() > self.engine.max_markets as usize {
            return Err(bad(
                "engine.max_markets",
                "fewer than the configured markets",
            ));
        }
        for (i, m) in self.markets.iter().enumerate() {
            m.check(&format!("markets[{i}]"))?;
            if self.markets[..i].iter().any(|o| o.symbol == m.symbol) {
                return Err(bad(format!("markets[{i}].symbol"), "repeated"));
            }
        }
        check_hash("admin.password_hash", &self.admin.password_hash)?;
        check_name("admin.username", &self.admin.username)?;
        self.check_accounts()
    }

    fn check_gateway(&self) -> Result<(), ConfigError> {
        let g = &self.gateway;
        check_name("gateway.comp_id", &g.comp_id)?;
        g.host
            .parse::<std::net::IpAddr>()
            .map_err(|e| bad("gateway.host", format!("not an IP address: {e}")))?;
        self.fsync_policy()?;
        for (key, v) in [
            ("inbound_ring", g.inbound_ring),
            ("outbound_ring", g.outbound_ring),
        ] {
            if !v.is_power_of_two() || !(64..=1 << 24).contains(&v) {
                return Err(bad(
                    format!("gateway.{key}"),
                    "a power of two from 64 to 16777216",
                ));
            }
        }
        if !(256..=1 << 20).contains(&g.max_message_bytes) {
            return Err(bad("gateway.max_message_bytes", "from 256 to 1048576"));
        }
        if g.md_buffer_bytes < 65_536 {
            return Err(bad("gateway.md_buffer_bytes", "at least 65536"));
        }
        if g.engine_cpu < -1 {
            return Err(bad(
                "gateway.engine_cpu",
                "a CPU number, or -1 for no pinning",
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.soft_orders_per_sec == 0 || l.hard_orders_per_sec < l.soft_orders_per_sec {
            return Err(bad(
                "limits.hard_orders_per_sec",
                "soft must be > 0 and hard ≥ soft",
            ));
        }
        if l.checks_per_address == 0 {
            return Err(bad("limits.checks_per_address", "must be at least 1"));
        }
        if l.failures_before_refusal < l.failures_before_delay {
            return Err(bad(
                "limits.failures_before_refusal",
                "must be ≥ failures_before_delay",
            ));
        }
        Ok(())
    }

    fn check_accounts(&self) -> Result<(), ConfigError> {
        for (i, a) in self.accounts.iter().enumerate() {
            let key = |k: &str| format!("accounts[{i}].{k}");
            check_name(&key("username"), &a.username)?;
            check_hash(&key("password_hash"), &a.password_hash)?;
            if a.id >= self.engine.max_accounts {
                return Err(bad(key("id"), "not below engine.max_accounts"));
            }
            if a.deposit < 0 {
                return Err(bad(key("deposit"), "negative"));
            }
            let earlier = &self.accounts[..i];
            if earlier.iter().any(|o| o.id == a.id) {
                return Err(bad(key("id"), "repeated"));
            }
            if earlier.iter().any(|o| o.username == a.username) || a.username == self.admin.username
            {
                return Err(bad(key("username"), "repeated (or the admin's)"));
            }
        }
        Ok(())
    }

    /// The journal's fsync policy.
    pub fn fsync_policy(&self) -> Result<FsyncPolicy, ConfigError> {
        self.gateway
            .fsync
            .parse()
            .map_err(|e: String| bad("gateway.fsync", e))
    }

    /// The engine's capacities.
    pub fn engine_config(&self) -> EngineConfig {
        let e = &self.engine;
        EngineConfig {
            max_orders: e.max_orders,
            max_accounts: e.max_accounts,
            max_markets: e.max_markets,
            max_positions: e.max_positions,
            max_conditionals: e.max_conditionals,
            liquidation_ring: e.liquidation_ring,
            max_orders_per_account: e.max_orders_per_account,
            hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
        }
    }

    /// The account a user name logs on to (`None` for the admin or an unknown name).
    pub fn account_of(&self, username: &str) -> Option<&AccountSpec> {
        self.accounts.iter().find(|a| a.username == username)
    }

    /// The account with this engine id.
    pub fn account(&self, id: AccountId) -> Option<&AccountSpec> {
        self.accounts.iter().find(|a| a.id == id.0)
    }

    /// The market traded under this symbol, with its id.
    pub fn market_by_symbol(&self, symbol: &str) -> Option<(u32, &MarketSpec)> {
        self.markets
            .iter()
            .position(|m| m.symbol == symbol)
            .map(|i| (i as u32, &self.markets[i]))
    }
}

/// A comp id or user name: 1–32 printable ASCII characters, no spaces or `=`.
fn check_name(key: &str, v: &str) -> Result<(), ConfigError> {
    let ok = !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
    if ok {
        Ok(())
    } else {
        Err(bad(key, "1 to 32 printable ASCII characters without `=`"))
    }
}

fn check_hash(key: &str, v: &str) -> Result<(), ConfigError> {
    crate::auth::parse_hash(v)
        .map(|_| ())
        .map_err(|e| bad(key, e))
}
