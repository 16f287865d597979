//! Retry classification (PROTOCOL.md §6.4): which failures are temporary (deferred and retried with
//! the configured delays) and which are permanent (a terminal `error`); and the backoff of a
//! tenant whose sync calls fail.

/// Backoff of a tenant's sync after its n-th consecutive failed call (PROTOCOL.md §4.4):
/// `min(300, 5 × 2^(n − 1))` seconds.
pub fn sync_backoff_seconds(failures: i64) -> i64 {
    let exp = u32::try_from((failures - 1).clamp(0, 10)).unwrap_or(10);
    (5i64 << exp).min(300)
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry later.
    Temporary,
    /// Give up: terminal error.
    Permanent,
}

/// What is known of a failure: its reply code (if any), whether it was a TLS failure, whether
/// it was an I/O or timeout failure, and its text.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    /// SMTP reply code.
    pub code: Option<u16>,
    /// TLS handshake or certificate failure.
    pub tls: bool,
    /// Timeout, refused or reset connection, DNS or other I/O error.
    pub io: bool,
    /// Human-readable text.
    pub text: String,
}

/// Classifies a failure, first match wins, in the contract's order.
pub fn classify(f: &Failure) -> Class {
    if f.tls {
        return Class::Permanent;
    }
    if f.io {
        return Class::Temporary;
    }
    if let Some(code) = f.code {
        return if (400..500).contains(&code) {
            Class::Temporary
        } else {
            Class::Permanent
        };
    }
    let text = f.text.to_ascii_lowercase();
    const TEMPORARY: [&str; 10] = [
        "421",
        "450",
        "451",
        "452",
        "timeout",
        "connection refused",
        "connection reset",
        "temporarily unavailable",
        "try again",
        "throttl",
    ];
    if TEMPORARY.iter().any(|t| text.contains(t)) {
        return Class::Temporary;
    }
    if text.contains("authentication failed")
        || text
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| matches!(n, "530" | "534" | "535"))
    {
        return Class::Permanent;
    }
    Class::Temporary
}

/// The description of a failure: `<text> (SMTP <code>)` when a code exists.
pub fn describe(f: &Failure) -> String {
    match f.code {
        Some(code) => format!("{} (SMTP {code})", f.text),
        None => f.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_backoff_doubles_up_to_five_minutes() {
        assert_eq!(
            [1, 2, 3, 4, 7, 50].map(sync_backoff_seconds),
            [5, 10, 20, 40, 300, 300]
        );
    }

    fn text(t: &str) -> Failure {
        Failure {
            text: t.into(),
            ..Failure::default()
        }
    }

    #[test]
    fn codes_and_texts_classify_as_the_contract_says() {
        let code = |c| Failure {
            code: Some(c),
            ..Failure::default()
        };
        assert_eq!(classify(&code(451)), Class::Temporary);
        assert_eq!(classify(&code(550)), Class::Permanent);
        assert_eq!(
            classify(&Failure {
                tls: true,
                code: Some(421),
                ..Failure::default()
            }),
            Class::Permanent
        );
        assert_eq!(
            classify(&Failure {
                io: true,
                ..Failure::default()
            }),
            Class::Temporary
        );
        assert_eq!(
            classify(&text("Service not available, try again")),
            Class::Temporary
        );
        assert_eq!(
            classify(&text("535 Authentication failed")),
            Class::Permanent
        );
        assert_eq!(classify(&text("error 5350")), Class::Temporary);
        assert_eq!(classify(&text("something odd")), Class::Temporary);
    }

    #[test]
    fn descriptions_carry_the_code() {
        let f = Failure {
            code: Some(421),
            text: "Service not available".into(),
            ..Failure::default()
        };
        assert_eq!(describe(&f), "Service not available (SMTP 421)");
    }
}
