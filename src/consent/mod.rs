//! Remembered consent: the scopes a user has approved for a client. A later authorization
//! request for the same or fewer scopes skips the consent page.

pub mod store;

/// True when every requested scope was approved before.
pub fn covers(approved: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| approved.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_or_equal_scopes_are_covered_more_are_not() {
        let approved = vec!["a".to_string(), "b".to_string()];
        assert!(covers(&approved, &["a".into()]));
        assert!(covers(&approved, &["a".into(), "b".into()]));
        assert!(covers(&approved, &[]));
        assert!(!covers(&approved, &["a".into(), "c".into()]));
    }
}
