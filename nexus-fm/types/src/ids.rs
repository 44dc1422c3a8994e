//! Typed identifiers.
//!
//! Each kind of object has its own id type, so an alert id can never be passed
//! where a sitrep id is expected. A bare [`Uuid`] appears only at the database
//! edge, through [`From`] conversions.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_uuid {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Makes a new random (version 4) id.
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an id read from the database or from a trusted document.
            pub const fn from_untyped(id: Uuid) -> Self {
                Self(id)
            }

            /// The bare UUID, for the database edge.
            pub const fn into_untyped(self) -> Uuid {
                self.0
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_uuid!(
    /// Identifies one sitrep (an immutable desired-state document).
    SitrepUuid
);
typed_uuid!(
    /// Identifies one fault-management case.
    CaseUuid
);
typed_uuid!(
    /// Identifies one alert; for FM-created alerts this is also the id of the
    /// alert request that asked for it.
    AlertUuid
);
typed_uuid!(
    /// Identifies one support bundle; for FM-created bundles this is also the
    /// id of the support-bundle request that asked for it.
    SupportBundleUuid
);
typed_uuid!(
    /// Identifies one executor (one running instance of the FM background tasks).
    ExecutorUuid
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_and_serde_round_trip() {
        let id = SitrepUuid::new_v4();
        let text = id.to_string();
        assert_eq!(text.parse::<SitrepUuid>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<SitrepUuid>(&json).unwrap(), id);
        assert_eq!(Uuid::from(id), id.into_untyped());
        assert_eq!(id.into_untyped().get_version_num(), 4);
    }

    #[test]
    fn bad_text_is_rejected() {
        assert!("not-a-uuid".parse::<AlertUuid>().is_err());
    }
}
