//! Provider error texts made fit for users: the reason stays, identifiers of the
//! operator's accounts and credentials go.
//!
//! A DNS provider's error text ends up in an order's `error`, which the order's owner
//! reads; the operator's cloud account is not theirs to see. Every DNS adapter passes the
//! texts it takes from its provider through [`redact_provider_text`].

/// `text` with every ARN, AWS account id, hosted-zone id, hexadecimal object id and
/// token-like string replaced by a placeholder; words with a dot (domain names) and plain
/// words stay.
///
/// ```
/// use acmeport_domain::redact_provider_text;
/// let text = "User: arn:aws:iam::123456789012:user/dns is not authorized on \
///             hostedzone/Z0123456789ABCDEFGHIJ for _acme-challenge.example.com";
/// assert_eq!(
///     redact_provider_text(text),
///     "User: <arn> is not authorized on hostedzone/<zone-id> for _acme-challenge.example.com"
/// );
/// ```
#[must_use]
pub fn redact_provider_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if is_word_char(c) {
            word.push(c);
        } else {
            out.push_str(&redact_word(&word));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&redact_word(&word));
    out
}

/// Characters of one word: everything but blanks, quotes and brackets, so that URLs,
/// ARNs and paths stay one word.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"\"'`(),;[]{}<>".contains(c)
}

fn redact_word(word: &str) -> String {
    if let Some(at) = word.find("arn:") {
        return format!("{}<arn>", &word[..at]);
    }
    // Split on the separators of paths, URLs and `key=value`, keeping them.
    let mut out = String::with_capacity(word.len());
    let mut piece = String::new();
    for c in word.chars() {
        if "/:=?&#@".contains(c) {
            out.push_str(redact_piece(&piece));
            piece.clear();
            out.push(c);
        } else {
            piece.push(c);
        }
    }
    out.push_str(redact_piece(&piece));
    out
}

fn redact_piece(piece: &str) -> &str {
    let digits = piece.bytes().filter(u8::is_ascii_digit).count();
    let letters = piece.bytes().filter(u8::is_ascii_alphabetic).count();
    let alphanumeric = |extra: &str| {
        piece
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if piece.len() == 12 && digits == 12 {
        "<account-id>"
    } else if (10..=32).contains(&piece.len())
        && piece.starts_with('Z')
        && digits > 0
        && piece
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        "<zone-id>"
    } else if piece.len() == 32 && piece.chars().all(|c| c.is_ascii_hexdigit()) {
        "<id>"
    } else if piece.len() >= 20 && digits > 0 && letters > 0 && alphanumeric("-_+") {
        // Tokens, keys, request ids: long, mixed, and no dot (names keep theirs).
        "<redacted>"
    } else {
        piece
    }
}

#[cfg(test)]
mod tests {
    use super::redact_provider_text as redact;

    #[test]
    fn account_identifiers_and_tokens_go() {
        for (text, gone) in [
            (
                "User: arn:aws:iam::123456789012:user/acmeport is not authorized to perform: route53:ChangeResourceRecordSets",
                "123456789012",
            ),
            ("No hosted zone found with ID: Z2FDTNDATAQYW2", "Z2FDTNDATAQYW2"),
            (
                "https://api.cloudflare.com/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records",
                "023e105f4ecef8ad9ca31a8372d0c353",
            ),
            ("invalid token Bearer abcDEF0123456789xyzXYZ_-99", "abcDEF0123456789xyzXYZ_-99"),
            ("account 123456789012 (request id 7a62c49f-347e-4fc4-9331-6e8eEXAMPLE)", "123456789012"),
            (
                "request id 7a62c49f-347e-4fc4-9331-6e8eEXAMPLE",
                "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE",
            ),
        ] {
            let shown = redact(text);
            assert!(!shown.contains(gone), "{gone} must go: {shown}");
        }
    }

    #[test]
    fn reasons_and_names_stay() {
        for text in [
            "Route53 InvalidChangeBatch: Tried to delete resource record set [name='_acme-challenge.www.example.com.', type='TXT'] but it was not found (HTTP 400)",
            "Cloudflare 81057: Record already exists. (HTTP 400)",
            "no zone found for _acme-challenge.a-very-long-subdomain-name-12345.example.com",
            "the DNS provider refused the credentials: Invalid API Token (HTTP 403)",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
