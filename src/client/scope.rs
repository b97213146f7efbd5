//! Scopes (RFC 6749 3.3): each token checked once, a set kept sorted and without duplicates,
//! written space-delimited wherever the protocol or the database wants text.

use std::fmt;

use serde::{Serialize, Serializer};

/// Checks a scope token: RFC 6749 3.3, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn validate_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() || scope.len() > 200 {
        return Err(format!(
            "invalid scope '{scope}': must be 1 to 200 characters"
        ));
    }
    if !scope
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        return Err(format!(
            "invalid scope '{scope}': only printable ASCII without space, '\"' or '\\' (RFC 6749 3.3)"
        ));
    }
    Ok(())
}

/// A set of valid scope tokens, sorted and without duplicates (RFC 6749 3.3: the order of a
/// `scope` parameter carries no meaning). Shown and stored as space-delimited text, serialized
/// as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// Parses space-delimited text (a `scope` parameter, a form field). Every token is checked
    /// ([`validate_scope`]); an empty text is the empty set.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::from_tokens(text.split_whitespace())
    }

    /// A set from tokens, each of which may itself hold several space-separated tokens (a
    /// repeated command-line option, a JSON list).
    pub fn from_tokens<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut scopes = Vec::new();
        for token in tokens {
            for s in token.as_ref().split_whitespace() {
                validate_scope(s)?;
                scopes.push(s.to_string());
            }
        }
        scopes.sort();
        scopes.dedup();
        Ok(Self(scopes))
    }

    /// Text that was checked when it was written (a stored column, a token's claim): read
    /// without checking again, still sorted and deduplicated.
    pub fn from_stored(text: &str) -> Self {
        let mut scopes: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// True when no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// True when every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.iter().all(|s| other.contains(s))
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes for which `keep` is true (still sorted, no parse).
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    /// Every scope of either set.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        let mut all = self.0.clone();
        all.extend(other.0.iter().cloned());
        all.sort();
        all.dedup();
        ScopeSet(all)
    }

    /// The scopes as a list (for JSON documents that want one).
    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl fmt::Display for ScopeSet {
    /// Space-delimited (RFC 6749 3.3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_set_is_sorted_deduplicated_and_checked_once() {
        let s = ScopeSet::parse("b a  b c").unwrap();
        assert_eq!(s.to_string(), "a b c");
        assert_eq!(s.len(), 3);
        assert!(s.contains("b") && !s.contains("d"));
        assert_eq!(ScopeSet::from_tokens(["c a", "b"]).unwrap(), s);
        assert!(ScopeSet::parse("a").unwrap().is_subset_of(&s));
        assert!(!ScopeSet::parse("a d").unwrap().is_subset_of(&s));
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert!(ScopeSet::parse("ok bad\"quote").is_err());
        assert_eq!(ScopeSet::from_stored("z y z").to_string(), "y z");
        assert_eq!(
            s.union(&ScopeSet::parse("d a").unwrap()).to_string(),
            "a b c d"
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["a","b","c"]"#);
    }
}
