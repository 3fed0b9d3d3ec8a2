//! Structured log lines on stderr, one event a line, `key=value` pairs after a UTC
//! timestamp, the level and the event name:
//!
//! `ts=20261202-19:26:02.123 level=info event=logon user=ALICE proto=fix peer=127.0.0.1:40212`
//!
//! Invariant: values with spaces or `=` are written with `{:?}` (quoted) by the callers,
//! so every line splits on spaces into `key=value` fields.

/// Writes one line (use the [`log!`](crate::log!) macro).
pub fn line(level: &str, event: &str, fields: std::fmt::Arguments<'_>) {
    let ts = crate::fix::time::format(crate::fix::time::now_ms());
    let fields = fields.to_string();
    let sep = if fields.is_empty() { "" } else { " " };
    eprintln!("ts={ts} level={level} event={event}{sep}{fields}");
}

/// `log!("info", "event", "k={} k2={:?}", a, b)`: one structured line on stderr.
#[macro_export]
macro_rules! log {
    ($level:literal, $event:literal) => {
        $crate::log::line($level, $event, format_args!(""))
    };
    ($level:literal, $event:literal, $($arg:tt)+) => {
        $crate::log::line($level, $event, format_args!($($arg)+))
    };
}
