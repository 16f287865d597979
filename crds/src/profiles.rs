//! The seed's four simulated-client profiles (the seed's `pressure-test-README.md`; `client-sim/README.md`) with
//! their rates in integers: messages per sync, and probabilities in permille.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A named client behaviour; `client-sim serve --profile <name>` knows the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// 20 messages per sync, few attachments.
    HighVolume,
    /// 5 messages per sync, mixed attachments.
    Standard,
    /// 50 messages per sync, cached images.
    Newsletter,
    /// 2 messages per sync, large attachments.
    Documents,
}

/// The effective rates of a tenant's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRates {
    /// Average messages returned per sync call.
    pub messages_per_sync: i32,
    /// Probability of reusing cached attachment content, permille.
    pub cache_hit_rate_permille: i32,
    /// Probability of a do-not-disturb answer, permille.
    pub dnd_probability_permille: i32,
    /// Probability of a 10 MiB+ attachment, permille.
    pub large_attachment_rate_permille: i32,
}

impl Profile {
    /// The name `client-sim` takes after `--profile`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::HighVolume => "high-volume",
            Profile::Standard => "standard",
            Profile::Newsletter => "newsletter",
            Profile::Documents => "documents",
        }
    }

    /// The seed compose file's rates for this profile.
    pub fn rates(self) -> ProfileRates {
        let (messages_per_sync, cache, dnd, large) = match self {
            Profile::HighVolume => (20, 100, 20, 50),
            Profile::Standard => (5, 300, 50, 100),
            Profile::Newsletter => (50, 500, 100, 150),
            Profile::Documents => (2, 200, 50, 500),
        };
        ProfileRates {
            messages_per_sync,
            cache_hit_rate_permille: cache,
            dnd_probability_permille: dnd,
            large_attachment_rate_permille: large,
        }
    }

    /// All profiles in the seed's order.
    pub const ALL: [Profile; 4] = [
        Profile::HighVolume,
        Profile::Standard,
        Profile::Newsletter,
        Profile::Documents,
    ];
}

impl ProfileRates {
    /// A permille value as the decimal string the client's environment expects (`"0.05"`).
    pub fn permille_str(permille: i32) -> String {
        let p = permille.clamp(0, 1000);
        let text = format!("{}.{:03}", p / 1000, p % 1000);
        let trimmed = text.trim_end_matches('0');
        trimmed
            .strip_suffix('.')
            .map_or(trimmed.to_string(), |s| s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permille_renders_as_short_decimal() {
        assert_eq!(ProfileRates::permille_str(50), "0.05");
        assert_eq!(ProfileRates::permille_str(100), "0.1");
        assert_eq!(ProfileRates::permille_str(0), "0");
        assert_eq!(ProfileRates::permille_str(1000), "1");
        assert_eq!(ProfileRates::permille_str(125), "0.125");
    }

    #[test]
    fn profiles_match_the_seed() {
        assert_eq!(Profile::Newsletter.rates().messages_per_sync, 50);
        assert_eq!(
            Profile::Documents.rates().large_attachment_rate_permille,
            500
        );
        assert_eq!(Profile::HighVolume.name(), "high-volume");
    }
}
