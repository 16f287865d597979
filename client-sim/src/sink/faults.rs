//! Fault injection: a configured share of messages is answered 451 or 550 after DATA, or has its
//! connection dropped before any reply; replies to message data can be delayed. Draws come from a
//! per-connection generator derived from one seed, so a seeded run is reproducible per
//! connection.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fault settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultConfig {
    /// Per mille of messages answered `451` (temporary failure).
    pub fail_4xx_permille: u32,
    /// Per mille of messages answered `550` (permanent failure).
    pub fail_5xx_permille: u32,
    /// Per mille of messages whose connection is closed instead of answered.
    pub drop_permille: u32,
    /// Delay before the reply to each message's data, milliseconds.
    pub delay_ms: u64,
    /// Seed of the fault draws.
    pub seed: u64,
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Accept it normally.
    None,
    /// Reply 451.
    Temporary,
    /// Reply 550.
    Permanent,
    /// Close the connection without a reply.
    Drop,
}

impl Fault {
    /// The label under which `faults_injected` counts it.
    pub fn class(self) -> Option<&'static str> {
        match self {
            Fault::None => None,
            Fault::Temporary => Some("4xx"),
            Fault::Permanent => Some("5xx"),
            Fault::Drop => Some("drop"),
        }
    }
}

impl FaultConfig {
    /// Checks that the shares add up to at most 1000 per mille.
    pub fn validate(&self) -> crate::Result<()> {
        let sum = self.fail_4xx_permille + self.fail_5xx_permille + self.drop_permille;
        if sum > 1000 {
            return Err(crate::Error::Config(format!(
                "--fail-4xx-permille + --fail-5xx-permille + --drop-permille is {sum}, above 1000"
            )));
        }
        Ok(())
    }

    /// True when no message can be faulted.
    pub fn is_off(&self) -> bool {
        self.fail_4xx_permille + self.fail_5xx_permille + self.drop_permille == 0
    }

    /// The draw generator of connection number `conn`.
    pub fn rng_for(&self, conn: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Draws the fate of one message.
    pub fn draw(&self, rng: &mut StdRng) -> Fault {
        if self.is_off() {
            return Fault::None;
        }
        let u = rng.random_range(0..1000);
        if u < self.drop_permille {
            Fault::Drop
        } else if u < self.drop_permille + self.fail_4xx_permille {
            Fault::Temporary
        } else if u < self.drop_permille + self.fail_4xx_permille + self.fail_5xx_permille {
            Fault::Permanent
        } else {
            Fault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_configuration() {
        let cfg = FaultConfig {
            fail_4xx_permille: 100,
            fail_5xx_permille: 50,
            drop_permille: 20,
            delay_ms: 0,
            seed: 9,
        };
        let mut rng = cfg.rng_for(1);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[cfg.draw(&mut rng) as usize] += 1;
        }
        // Expected 83,000 / 10,000 / 5,000 / 2,000; bounds are about 5 standard deviations.
        assert!((81_500..84_500).contains(&counts[0]), "{counts:?}");
        assert!((9_500..10_500).contains(&counts[1]), "{counts:?}");
        assert!((4_650..5_350).contains(&counts[2]), "{counts:?}");
        assert!((1_780..2_220).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn shares_above_one_are_refused() {
        let cfg = FaultConfig {
            fail_4xx_permille: 600,
            fail_5xx_permille: 500,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }
}
