//! Per-type generation numbers of sitreps.
//!
//! A [`Generation`] starts at 1 and only grows. Along the sitrep history, two
//! sitreps with equal generation for a resource type request the same set of
//! resources of that type (docs/design.md, "Publishing a sitrep"), which is what makes the
//! guarded insert and the tombstone sweep safe.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A generation number: at least 1, never decreasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Generation(i64);

/// A value that cannot be a [`Generation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    /// Generations start at 1.
    #[error("generation must be at least 1, got {0}")]
    NotPositive(i64),
    /// The next generation would not fit in the database column.
    #[error("generation {0} cannot be incremented: it is the largest representable")]
    Overflow(i64),
}

impl Generation {
    /// The generation of the first sitrep.
    pub const FIRST: Generation = Generation(1);

    /// Builds a generation from a database or document value.
    ///
    /// # Errors
    ///
    /// [`GenerationError::NotPositive`] if `value < 1`.
    pub const fn try_new(value: i64) -> Result<Self, GenerationError> {
        if value < 1 { Err(GenerationError::NotPositive(value)) } else { Ok(Generation(value)) }
    }

    /// The generation after this one.
    ///
    /// # Errors
    ///
    /// [`GenerationError::Overflow`] at `i64::MAX`.
    pub const fn next(self) -> Result<Self, GenerationError> {
        match self.0.checked_add(1) {
            Some(v) => Ok(Generation(v)),
            None => Err(GenerationError::Overflow(self.0)),
        }
    }

    /// The generation rule (docs/design.md, "Publishing a sitrep") for one resource type:
    /// the first sitrep has generation 1; a child keeps its parent's
    /// generation when its request set of that type is unchanged, and gets
    /// the next one otherwise.
    ///
    /// `parent` is the parent's generation (`None` for the first sitrep);
    /// `unchanged` says whether the request sets are equal.
    ///
    /// # Errors
    ///
    /// [`GenerationError::Overflow`] at `i64::MAX`.
    pub const fn successor(
        parent: Option<Generation>,
        unchanged: bool,
    ) -> Result<Generation, GenerationError> {
        match parent {
            None => Ok(Generation::FIRST),
            Some(g) if unchanged => Ok(g),
            Some(g) => g.next(),
        }
    }

    /// The value as stored in the database (`INT8`).
    pub const fn as_i64(self) -> i64 {
        self.0
    }
}

impl Default for Generation {
    fn default() -> Self {
        Self::FIRST
    }
}

impl TryFrom<i64> for Generation {
    type Error = GenerationError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::try_new(value)
    }
}

impl From<Generation> for i64 {
    fn from(g: Generation) -> i64 {
        g.0
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_one_and_grows() {
        assert_eq!(Generation::FIRST.as_i64(), 1);
        assert_eq!(Generation::default(), Generation::FIRST);
        let second = Generation::FIRST.next().unwrap();
        assert_eq!(second.as_i64(), 2);
        assert!(second > Generation::FIRST);
    }

    #[test]
    fn successor_follows_the_generation_rule() {
        let g3 = Generation::try_new(3).unwrap();
        assert_eq!(Generation::successor(None, true), Ok(Generation::FIRST));
        assert_eq!(Generation::successor(None, false), Ok(Generation::FIRST));
        assert_eq!(Generation::successor(Some(g3), true), Ok(g3));
        assert_eq!(Generation::successor(Some(g3), false).unwrap().as_i64(), 4);
    }

    #[test]
    fn rejects_zero_negative_and_overflow() {
        assert_eq!(Generation::try_new(0), Err(GenerationError::NotPositive(0)));
        assert_eq!(Generation::try_new(-5), Err(GenerationError::NotPositive(-5)));
        let max = Generation::try_new(i64::MAX).unwrap();
        assert_eq!(max.next(), Err(GenerationError::Overflow(i64::MAX)));
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert_eq!(serde_json::to_string(&Generation::FIRST).unwrap(), "1");
        assert_eq!(serde_json::from_str::<Generation>("7").unwrap().as_i64(), 7);
        let err = serde_json::from_str::<Generation>("0").unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
