//! Address syntax of PROTOCOL.md §3.6: `addr` or `Name <addr>`, where `addr` has a non-empty
//! local part, exactly one `@` and a non-empty domain without spaces.

/// The bare address of `addr` or `Name <addr>`, if valid.
pub fn parse(input: &str) -> Option<&str> {
    let s = input.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => &s[open + 1..s.len() - 1],
        (None, false) => s,
        _ => return None,
    };
    let addr = addr.trim();
    let (local, domain) = addr.split_once('@')?;
    let bad = |p: &str| p.is_empty() || p.contains(char::is_whitespace) || p.contains('@');
    if bad(local) || bad(domain) || addr.contains(['<', '>', ',']) {
        return None;
    }
    Some(addr)
}

/// The domain part of a valid address.
pub fn domain(input: &str) -> Option<&str> {
    parse(input)
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_named_addresses() {
        assert_eq!(parse("a@b.c"), Some("a@b.c"));
        assert_eq!(parse("Name <a@b.c>"), Some("a@b.c"));
        assert_eq!(parse(" \"Last, First\" <x@y> "), Some("x@y"));
        assert_eq!(domain("Sender <s@acme.com>"), Some("acme.com"));
    }

    #[test]
    fn rejects_the_contract_examples() {
        for bad in [
            "invalid-no-at",
            "missing-domain@",
            "@no-local-part.com",
            "a@@b",
            "a b@c",
            "",
            "<a@b",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
