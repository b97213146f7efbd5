//! THE rules for untrusted text, decided here and nowhere else: which characters an identifier,
//! a single line of text, a multi-line text or a displayed name may hold.
//!
//! - No control character (Unicode general category Cc: U+0000–U+001F, U+007F–U+009F) in
//!   identifiers and single-line text. PostgreSQL cannot store a NUL in a text column (the
//!   query fails); the others have no use in a client_id, username, scope, URI or search term
//!   and are refused too (RFC 6749 Appendix A allows only printable characters in every
//!   protocol parameter). Multi-line fields (descriptions, redirect-URI and JWKS text areas)
//!   may hold tab, CR and LF, nothing else.
//! - Names shown to people (client names, usernames) also refuse bidirectional controls and
//!   zero-width characters, so that two clients cannot look alike on the consent page
//!   (Unicode TR 36 3.1; e.g. "Bank\u{202E}ppa" or "Ex\u{200B}ample").
//!
//! Requests are checked at parse time, before any query: the URI of every request (path and
//! query string, see `http::refuse_control_characters`), every parameter of the OAuth client
//! endpoints (`oauth::request::ClientRequest::parse`), and the text fields of form and JSON bodies
//! through the serde helpers below (`#[serde(deserialize_with = "crate::text::line")]`).

use serde::{Deserialize, Deserializer};

/// A text that breaks one of the rules. Its message names the field and the character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must not contain {what} (found U+{code:04X})")]
pub struct TextError {
    /// The field (parameter) name.
    pub field: String,
    /// What kind of character was found.
    pub what: &'static str,
    /// The character's code point.
    pub code: u32,
}

impl From<TextError> for crate::error::AppError {
    fn from(e: TextError) -> Self {
        crate::error::AppError::Invalid(e.to_string())
    }
}

fn refuse(field: &str, what: &'static str, c: char) -> TextError {
    TextError {
        field: field.to_string(),
        what,
        code: c as u32,
    }
}

/// Identifiers and single-line text: no control character at all (Unicode Cc).
pub fn check_single_line(field: &str, value: &str) -> Result<(), TextError> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(refuse(field, "control characters", c)),
        None => Ok(()),
    }
}

/// Multi-line text (descriptions, text areas): tab, CR and LF allowed, no other control
/// character.
pub fn check_multi_line(field: &str, value: &str) -> Result<(), TextError> {
    match value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some(c) => Err(refuse(field, "control characters", c)),
        None => Ok(()),
    }
}

/// Bidirectional-text controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and
/// zero-width characters (U+200B–U+200D, U+2060, U+FEFF): invisible, or they reorder what is
/// shown, so a name holding them can imitate another.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A name shown to people (client name, username): a single line with no bidirectional
/// control and no zero-width character.
pub fn check_name(field: &str, value: &str) -> Result<(), TextError> {
    check_single_line(field, value)?;
    match value.chars().find(|c| is_invisible_or_bidi(*c)) {
        Some(c) => Err(refuse(
            field,
            "bidirectional-control or zero-width characters",
            c,
        )),
        None => Ok(()),
    }
}

/// Decodes `%XX` escapes (and, in a query string, `+`), for checking a request URI. Invalid
/// escapes are kept as they are (the router or the extractor refuses them later).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |b: u8| (b as char).to_digit(16);
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a request's path and query string: every path segment and every query parameter
/// (name and value) is single-line text.
pub fn check_request_uri(path: &str, query: &str) -> Result<(), TextError> {
    check_single_line("the request path", &percent_decode(path, false))?;
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name, true);
        check_single_line(&name, &name)?;
        check_single_line(&name, &percent_decode(value, true))?;
    }
    Ok(())
}

/// serde `deserialize_with`: a single-line `String`.
pub fn line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_single_line("a text field", &s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// serde `deserialize_with`: an optional single-line `String`.
pub fn opt_line<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        check_single_line("a text field", s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

/// serde `deserialize_with`: a list of single-line `String`s.
pub fn lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for s in &v {
        check_single_line("a text field", s).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

/// serde `deserialize_with`: a multi-line `String` (tab, CR, LF allowed).
pub fn multi_line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_multi_line("a text field", &s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// serde `deserialize_with`: an optional multi-line `String`.
pub fn opt_multi_line<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        check_multi_line("a text field", s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_in_single_lines() {
        assert!(check_single_line("x", "abc def").is_ok());
        assert!(check_single_line("x", "é ü 名前").is_ok());
        for bad in ["a\0b", "a\nb", "a\tb", "\u{7f}", "\u{85}"] {
            assert!(check_single_line("x", bad).is_err(), "{bad:?}");
        }
        assert!(check_multi_line("x", "a\r\n\tb").is_ok());
        assert!(check_multi_line("x", "a\0b").is_err());
    }

    #[test]
    fn names_refuse_bidi_and_zero_width() {
        assert!(check_name("name", "Example Bank").is_ok());
        for bad in [
            "Bank\u{202E}ppa",
            "Ex\u{200B}ample",
            "\u{FEFF}A",
            "a\u{2066}b",
        ] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_uris_are_decoded_before_the_check() {
        assert!(check_request_uri("/admin/clients", "q=a+b&page=2").is_ok());
        assert!(check_request_uri("/admin/clients", "q=%00").is_err());
        assert!(check_request_uri("/admin/clients/%0a", "").is_err());
        assert!(check_request_uri("/admin/clients", "%01=x").is_err());
        assert!(check_request_uri("/admin/clients", "q=%C2%85").is_err());
        assert!(check_request_uri("/admin/clients", "q=%zz").is_ok());
    }
}
