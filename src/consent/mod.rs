//! Remembered consent: the scopes a user has approved for a client. A later authorization
//! request for the same or fewer scopes skips the consent page.

pub mod store;

use crate::client::ScopeSet;

/// True when every requested scope was approved before. PostgreSQL's batch of new codes
/// decides the same in SQL for a remembered consent (`@>` on the two scope lists, in
/// `token::store`'s `InsertGrantsPg`): a change here changes it there too.
pub fn covers(approved: &ScopeSet, requested: &ScopeSet) -> bool {
    requested.is_subset_of(approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_or_equal_scopes_are_covered_more_are_not() {
        let approved = ScopeSet::parse("a b").unwrap();
        let s = |t: &str| ScopeSet::parse(t).unwrap();
        assert!(covers(&approved, &s("a")));
        assert!(covers(&approved, &s("a b")));
        assert!(covers(&approved, &s("")));
        assert!(!covers(&approved, &s("a c")));
    }
}
