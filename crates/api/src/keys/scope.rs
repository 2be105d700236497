//! What an admin API key may do. A route names the scopes any one of which lets a key call it
//! (`auth::Requirement`); `admin` lets it call everything.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A scope of an admin API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything, the key routes included.
    Admin,
    /// Check-in, and the sale's stats (check-in progress).
    Door,
    /// Read-only: stats, any order with its payment timeline, the event feed.
    Reporting,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Admin, Scope::Door, Scope::Reporting];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Door => "door",
            Scope::Reporting => "reporting",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes (a byte: it travels in every error's details, which stay small). Serializes
/// as the list of its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(Scope::ALL.into_iter().filter(|x| self.0 & x.bit() != 0))
    }
}

impl Scopes {
    pub const ADMIN: Scopes = Scopes(Scope::Admin.bit());

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    /// Whether any of `any_of` is in the set.
    pub fn allows(self, any_of: &[Scope]) -> bool {
        self.0 & Scopes::of(any_of).0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_allow_by_any() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Scope::parse("root"), None);
        let door = Scopes::of(&[Scope::Door]);
        assert!(door.allows(&[Scope::Door, Scope::Admin]));
        assert!(!door.allows(&[Scope::Admin]));
        assert!(!door.allows(&[Scope::Reporting, Scope::Admin]));
        assert!(Scopes::ADMIN.allows(&[Scope::Admin]));
        assert!(!Scopes::default().allows(&Scope::ALL));
        let json = serde_json::to_string(&Scopes::of(&[Scope::Reporting, Scope::Admin])).unwrap();
        assert_eq!(json, r#"["admin","reporting"]"#);
    }
}
