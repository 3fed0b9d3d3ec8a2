//! The engine capacities a journal was recorded with, kept beside its segments as
//! `engine.toml` (one `key = integer` line per `EngineConfig` field, a TOML subset), so
//! a replay or a recovery builds the same engine. A journal is only meaningful with the
//! capacities that produced it: they decide which commands are refused.

use cascade_core::EngineConfig;
use std::fmt::Write as _;
use std::path::Path;

/// File name of the capacities in a journal directory.
pub const ENGINE_FILE: &str = "engine.toml";

/// Writes `cfg` to `dir/engine.toml`.
pub fn write_engine_config(dir: &Path, cfg: &EngineConfig) -> Result<(), String> {
    let mut text = String::from("# Engine capacities this journal was recorded with.\n");
    for (k, v) in EngineConfig::FIELDS.iter().zip(cfg.to_words()) {
        let _ = writeln!(text, "{k} = {v}");
    }
    let path = dir.join(ENGINE_FILE);
    std::fs::File::create(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `cfg` on one line, `key=value` pairs separated by spaces (a text log's `# engine:`).
pub fn engine_config_line(cfg: &EngineConfig) -> String {
    let pairs: Vec<String> = EngineConfig::FIELDS
        .iter()
        .zip(cfg.to_words())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.join(" ")
}

/// Parses [`engine_config_line`]'s format; `origin` names it in errors.
pub fn parse_engine_line(line: &str, origin: &str) -> Result<EngineConfig, String> {
    let pairs = line.split_whitespace().map(|kv| (1, kv));
    from_pairs(pairs, origin)
}

/// Reads `dir/engine.toml`; an error names the file, and the line and key at fault.
pub fn read_engine_config(dir: &Path) -> Result<EngineConfig, String> {
    let path = dir.join(ENGINE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pairs = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    from_pairs(pairs, &path.display().to_string())
}

/// The capacities from `(line number, "key = value")` items.
fn from_pairs<'a>(
    pairs: impl Iterator<Item = (usize, &'a str)>,
    origin: &str,
) -> Result<EngineConfig, String> {
    let mut values = [None; 8];
    for (n, line) in pairs {
        let err = |what: &str| format!("{origin}:{n}: {what}");
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| err("expected key = value"))?;
        let (k, v) = (k.trim(), v.trim());
        let i = EngineConfig::FIELDS
            .iter()
            .position(|&key| key == k)
            .ok_or_else(|| err(&format!("unknown key `{k}`")))?;
        let v: u64 = v
            .parse()
            .map_err(|_| err(&format!("`{k}`: `{v}` is not a non-negative integer")))?;
        values[i] = Some(v);
    }
    let mut words = [0u64; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = values[i]
            .ok_or_else(|| format!("{origin}: missing key `{}`", EngineConfig::FIELDS[i]))?;
    }
    let cfg = EngineConfig::from_words(words)
        .map_err(|i| format!("{origin}: `{}` above {}", EngineConfig::FIELDS[i], u32::MAX))?;
    cfg.validate()
        .map_err(|e| format!("{origin}: invalid capacities: {e:?}"))?;
    Ok(cfg)
}
