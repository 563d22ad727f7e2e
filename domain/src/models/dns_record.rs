//! The one place that knows how DNS providers see a TXT record: the normalized record
//! name, the zone candidates walked to find the zone a provider owns, and the quoting of
//! TXT values as DNS character strings.
//!
//! Every provider adapter uses these instead of its own copy, so that they cannot drift
//! (one used to stop the zone walk below the top-level label, another did not; one read
//! multi-string values, another did not).

use super::TxtRecord;
use std::future::Future;

/// The longest character string a TXT record can hold (RFC 1035 §3.3).
const MAX_STRING: usize = 255;

impl TxtRecord {
    /// A record for `name` (any case, with or without trailing dot) and `value`.
    #[must_use]
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: normalize_name(name),
            value: value.into(),
        }
    }

    /// The record name in the form zones and names are compared in: lower case, no
    /// trailing dot, no surrounding space.
    #[must_use]
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// The record name with a trailing dot (`_acme-challenge.example.com.`), as APIs that
    /// take absolute names want it (PowerDNS, lego's `httpreq` convention).
    #[must_use]
    pub fn absolute_name(&self) -> String {
        format!("{}.", self.normalized_name())
    }

    /// The value as DNS presentation text: quoted character strings, split every 255
    /// bytes, `"` and `\` escaped (what Route53 and PowerDNS store).
    #[must_use]
    pub fn quoted_value(&self) -> String {
        quote_txt(&self.value)
    }

    /// The enclosing names of the record, longest first: the names a provider asks for
    /// when it looks for the zone that holds the record.
    #[must_use]
    pub fn zone_candidates(&self) -> Vec<String> {
        zone_candidates(&self.name)
    }
}

/// Lower case, no trailing dot, no surrounding space.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `name` and each name enclosing it, longest first, down to the top-level label
/// (`a.b.example.com`, `b.example.com`, `example.com`, `com`). Single-label zones exist
/// (private Route53 zones such as `corp`, test zones), so the top-level label is tried
/// too.
#[must_use]
pub fn zone_candidates(name: &str) -> Vec<String> {
    let name = normalize_name(name);
    let mut out = Vec::new();
    let mut rest = name.as_str();
    while !rest.is_empty() {
        out.push(rest.to_owned());
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => break,
        }
    }
    out
}

/// Finds the zone that holds `name`: asks `lookup` for each of [`zone_candidates`],
/// longest first, and returns the first zone it knows (with the candidate it matched).
/// `Ok(None)` when no candidate is a zone.
///
/// # Errors
///
/// The first error `lookup` returns; the walk stops there.
pub async fn find_zone<T, E, F, Fut>(name: &str, mut lookup: F) -> Result<Option<(String, T)>, E>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    for candidate in zone_candidates(name) {
        if let Some(zone) = lookup(candidate.clone()).await? {
            return Ok(Some((candidate, zone)));
        }
    }
    Ok(None)
}

/// The DNS presentation of a TXT value: quoted character strings of at most 255 bytes,
/// with `"` and `\` escaped.
#[must_use]
pub fn quote_txt(value: &str) -> String {
    let mut strings = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        if current.len() + c.len_utf8() > MAX_STRING {
            strings.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() || strings.is_empty() {
        strings.push(current);
    }
    strings
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a stored TXT value, as resolvers and ACME servers read it: its quoted
/// character strings unescaped and joined. A value with no quote at all is taken as
/// bare text (Cloudflare returns what it was given).
#[must_use]
pub fn unquote_txt(stored: &str) -> String {
    let trimmed = stored.trim();
    if !trimmed.starts_with('"') {
        return trimmed.to_owned();
    }
    let mut out = String::new();
    let mut in_quotes = false;
    let mut chars = trimmed.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quotes = !in_quotes,
            '\\' if in_quotes => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if in_quotes => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_run_from_the_name_to_the_top_level_label() {
        assert_eq!(
            zone_candidates("_acme-challenge.WWW.example.com."),
            vec![
                "_acme-challenge.www.example.com",
                "www.example.com",
                "example.com",
                "com"
            ]
        );
        assert!(zone_candidates(" . ").is_empty());
    }

    #[test]
    fn the_first_known_zone_wins_and_errors_stop_the_walk() {
        let found = futures::executor::block_on(find_zone(
            "_acme-challenge.www.example.com",
            |candidate| async move {
                Ok::<_, ()>(
                    (candidate == "example.com" || candidate == "com").then_some(candidate.len()),
                )
            },
        ));
        assert_eq!(found, Ok(Some(("example.com".to_owned(), 11))));

        let mut asked = Vec::new();
        let failed = futures::executor::block_on(find_zone("a.b.c", |candidate| {
            asked.push(candidate);
            async { Err::<Option<()>, _>("refused") }
        }));
        assert_eq!(failed, Err("refused"));
        assert_eq!(asked, vec!["a.b.c"], "the walk stops at the first error");

        let none = futures::executor::block_on(find_zone("x.test", |_| async {
            Ok::<Option<()>, ()>(None)
        }));
        assert_eq!(none, Ok(None));
    }

    #[test]
    fn values_are_quoted_and_read_back() {
        assert_eq!(quote_txt("abc"), "\"abc\"");
        assert_eq!(quote_txt(""), "\"\"");
        assert_eq!(quote_txt("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(unquote_txt(&quote_txt("a\"b\\c")), "a\"b\\c");
        assert_eq!(unquote_txt("\"ab\" \"c\""), "abc");
        assert_eq!(unquote_txt("bare"), "bare");
        let long = "x".repeat(300);
        let quoted = quote_txt(&long);
        assert_eq!(
            quoted,
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45)),
            "values over 255 bytes become several character strings"
        );
        assert_eq!(unquote_txt(&quoted), long);
    }

    #[test]
    fn records_normalize_their_name() {
        let record = TxtRecord::new("_ACME-challenge.Example.com.", "v");
        assert_eq!(record.name, "_acme-challenge.example.com");
        assert_eq!(record.absolute_name(), "_acme-challenge.example.com.");
        assert_eq!(record.quoted_value(), "\"v\"");
        assert_eq!(record.zone_candidates().len(), 3);
    }
}
