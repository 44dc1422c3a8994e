//! Formatting shared by the commands: times, ages, tables, JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use tabled::Tabled;
use tabled::settings::Style;

/// A timestamp as fmdb prints it (RFC 3339, UTC, microseconds when set).
pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An optional timestamp, `-` when absent.
pub fn opt_time(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), time)
}

/// How long before `now` the time `then` was: `3d 4h`, `5m 2s`, or
/// `in the future` when `then` is after `now`.
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let Ok(elapsed) = (now - then).to_std() else {
        return "in the future".to_string();
    };
    duration(elapsed)
}

/// A duration in at most two units: `2d 3h`, `4m 10s`, `250ms`.
pub fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let (days, hours, minutes, seconds) =
        (secs / 86_400, (secs / 3_600) % 24, (secs / 60) % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// Renders rows as a table.
pub fn table<T: Tabled>(rows: impl IntoIterator<Item = T>) -> String {
    let mut table = tabled::Table::new(rows);
    table.with(Style::psql());
    table.to_string()
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Every value fmdb prints is plain data; say so if one is not.
        Err(e) => eprintln!("error: printing JSON: {e}"),
    }
}

/// An optional value, `-` when absent.
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}
