//! Timestamps.
//!
//! The database keeps timestamps to the microsecond. Every timestamp this
//! system makes is truncated to that precision when it is made, so a value
//! handed to a caller (or compared in a test) equals the value stored.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, to the microsecond.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(super::now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
