//! Paging of lists (admin area, admin API): the one place that turns a requested page number
//! into an offset. A page number is untrusted input: `(page - 1) * per_page` on an unchecked
//! `i64` overflows (wrapping to the first page on SQLite, an error on PostgreSQL), so pages
//! beyond [`MAX_PAGE`] are refused before any query.

use crate::error::AppError;

/// The highest page number accepted: far beyond any real list, small enough that
/// `MAX_PAGE * 100` (the largest page size) cannot overflow.
pub const MAX_PAGE: i64 = 1_000_000;

/// A checked page request: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based page number, at most [`MAX_PAGE`].
    pub page: i64,
    /// Rows per page, from 1 to 100.
    pub per_page: i64,
}

impl Paging {
    /// The page asked for (None or below 1 = the first page), refused with a readable message
    /// beyond [`MAX_PAGE`]. `per_page` is clamped to 1..=100.
    pub fn new(page: Option<i64>, per_page: i64) -> Result<Paging, AppError> {
        let page = page.unwrap_or(1).max(1);
        if page > MAX_PAGE {
            return Err(AppError::Invalid(format!(
                "page must be a whole number from 1 to {MAX_PAGE}"
            )));
        }
        Ok(Paging {
            page,
            per_page: per_page.clamp(1, 100),
        })
    }

    /// A page number as typed in a query string: empty or not a number = the first page;
    /// a number beyond [`MAX_PAGE`] (or one too long for an i64) is refused.
    pub fn parse(page: Option<&str>, per_page: i64) -> Result<Paging, AppError> {
        let page = match page.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<i64>().unwrap_or(i64::MAX))
            }
            Some(_) => None,
        };
        Paging::new(page, per_page)
    }

    /// The number of rows before this page (cannot overflow, see [`MAX_PAGE`]).
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_are_refused_and_small_ones_clamped() {
        assert!(Paging::new(Some(i64::MAX), 25).is_err());
        assert!(Paging::parse(Some("9223372036854775807"), 25).is_err());
        assert!(Paging::parse(Some("99999999999999999999999"), 25).is_err());
        assert_eq!(Paging::parse(Some("-3"), 25).unwrap().page, 1);
        assert_eq!(Paging::parse(Some("x"), 25).unwrap().page, 1);
        assert_eq!(Paging::new(Some(0), 25).unwrap().offset(), 0);
        assert_eq!(
            Paging::new(Some(MAX_PAGE), 100).unwrap().offset(),
            (MAX_PAGE - 1) * 100
        );
    }
}
