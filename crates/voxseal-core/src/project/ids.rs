//! Validated identifiers. Contractor and prompt ids are spliced into file names, object keys and
//! IAM ARNs, so they are checked once, where they enter, and carried as types afterwards.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// A contractor id did not match `^[a-z0-9][a-z0-9-]{2,62}$`.
    #[error(
        "invalid contractor id {shown}: use 3 to 63 characters from a-z, 0-9 and '-', starting with a letter or digit"
    )]
    Contractor {
        /// The refused value, escaped and shortened for display.
        shown: String,
    },
    /// A prompt id did not match `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
    #[error(
        "invalid prompt id {shown}: use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    )]
    Prompt {
        /// The refused value, escaped and shortened for display.
        shown: String,
    },
    /// A sample or take id was not of the form `<prefix>-<32 hex digits>`.
    #[error("invalid {what} id {shown}: expected {what}-<32 lowercase hex digits>")]
    Generated {
        /// `sample` or `take`.
        what: &'static str,
        /// The refused value, escaped and shortened for display.
        shown: String,
    },
}

/// Escapes and shortens an untrusted value so it is safe to show in an error message.
pub(crate) fn shown(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(40)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 40 {
        s.push_str("...");
    }
    format!("\"{s}\"")
}

/// A contractor's id: `^[a-z0-9][a-z0-9-]{2,62}$`, so it can never hold `/`, `..`, `*`, `?`,
/// `$`, whitespace, NUL or non-ASCII look-alikes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContractorId(String);

impl ContractorId {
    /// The longest valid id, in bytes.
    pub const MAX_LEN: usize = 63;

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContractorId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok = (3..=Self::MAX_LEN).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Contractor { shown: shown(s) })
        }
    }
}

/// A prompt's id from the prompt set: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromptId(String);

impl PromptId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PromptId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok = (1..=64).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Prompt { shown: shown(s) })
        }
    }
}

macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A new, unique, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "-{}"), uuid::Uuid::now_v7().simple()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let ok = s
                    .strip_prefix(concat!($prefix, "-"))
                    .is_some_and(|h| {
                        h.len() == 32 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
                    });
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::Generated { what: $prefix, shown: shown(s) })
                }
            }
        }
    };
}

generated_id!(
    /// One accepted recording of one prompt, as it travels through the outbox and the bucket.
    SampleId,
    "sample"
);
generated_id!(
    /// One recording attempt (accepted or not); a sample is made from exactly one take.
    TakeId,
    "take"
);

macro_rules! string_id_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_id_impls!(ContractorId, PromptId, SampleId, TakeId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contractor_ids_accept_the_documented_alphabet() {
        for ok in ["abc", "alice-01", "0a-", &"a".repeat(63), "a--b"] {
            assert!(ok.parse::<ContractorId>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn contractor_ids_refuse_everything_that_could_escape_a_prefix() {
        let long = "a".repeat(64);
        let bad = [
            "",
            "ab",
            "../x",
            "a/b",
            "*",
            "abc*",
            "abc?",
            "ab$c",
            "%2e%2e",
            "-abc",
            "Alice",
            "al ice",
            "abc\0",
            "аlice",           // Cyrillic a
            "alice\u{2010}01", // Unicode hyphen
            &long,
            "a.b.c",
            "abc\n",
        ];
        for b in bad {
            let err = b.parse::<ContractorId>().unwrap_err();
            assert!(err.to_string().contains("invalid contractor id"), "{b:?}");
        }
        let nasty = "x".repeat(300);
        let msg = nasty.parse::<ContractorId>().unwrap_err().to_string();
        assert!(msg.len() < 200, "error messages stay short: {msg}");
    }

    #[test]
    fn contractor_ids_deserialize_through_validation() {
        let ok: ContractorId = serde_json::from_str("\"bob-7\"").unwrap();
        assert_eq!(ok.as_str(), "bob-7");
        assert!(serde_json::from_str::<ContractorId>("\"../etc\"").is_err());
    }

    #[test]
    fn prompt_ids() {
        for ok in ["p1", "A.b_c-9", &"x".repeat(64)] {
            assert!(ok.parse::<PromptId>().is_ok(), "{ok}");
        }
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(65), "é"] {
            assert!(bad.parse::<PromptId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_round_trip_and_are_unique() {
        let a = SampleId::generate();
        let b = SampleId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<SampleId>().unwrap(), a);
        assert!(a.as_str() < b.as_str(), "time-ordered");
        assert!("sample-../../etc".parse::<SampleId>().is_err());
        assert!(TakeId::generate().as_str().starts_with("take-"));
        assert!(a.as_str().parse::<TakeId>().is_err());
    }
}
