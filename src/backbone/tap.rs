//! Taps: the named points of a trunk whose outputs a benchmark reads.

use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;

/// A named output of a backbone: a stage output (post-ReLU) or the global pool.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tap {
    /// First conv block (ResNet: after BN+ReLU, before the max-pool; AlexNet: after ReLU).
    Conv1,
    /// AlexNet conv2, post-ReLU.
    Conv2,
    /// AlexNet conv3, post-ReLU.
    Conv3,
    /// AlexNet conv4, post-ReLU.
    Conv4,
    /// AlexNet conv5, post-ReLU.
    Conv5,
    /// ResNet stage 2 (`layer1`).
    Res2,
    /// ResNet stage 3 (`layer2`).
    Res3,
    /// ResNet stage 4 (`layer3`).
    Res4,
    /// ResNet stage 5 (`layer4`).
    Res5,
    /// ResNet: global average pool of res5; AlexNet: the last max-pool, flattened.
    Pool5,
}

impl Tap {
    /// The tap's name as written in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tap::Conv1 => "conv1",
            Tap::Conv2 => "conv2",
            Tap::Conv3 => "conv3",
            Tap::Conv4 => "conv4",
            Tap::Conv5 => "conv5",
            Tap::Res2 => "res2",
            Tap::Res3 => "res3",
            Tap::Res4 => "res4",
            Tap::Res5 => "res5",
            Tap::Pool5 => "pool5",
        }
    }

    /// Parses a comma-separated list such as `conv1,res4,pool5`; a tap named twice counts once.
    pub fn parse_list(list: &str) -> Result<Vec<Tap>> {
        let mut taps: Vec<Tap> = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse())
            .collect::<Result<_>>()?;
        if taps.is_empty() {
            bail!("no taps given: name at least one of conv1..conv5, res2..res5, pool5");
        }
        let mut seen = Vec::with_capacity(taps.len());
        taps.retain(|t| {
            let first = !seen.contains(t);
            seen.push(*t);
            first
        });
        Ok(taps)
    }
}

impl fmt::Display for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tap {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        const ALL: [Tap; 10] = [
            Tap::Conv1,
            Tap::Conv2,
            Tap::Conv3,
            Tap::Conv4,
            Tap::Conv5,
            Tap::Res2,
            Tap::Res3,
            Tap::Res4,
            Tap::Res5,
            Tap::Pool5,
        ];
        ALL.into_iter()
            .find(|t| t.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                anyhow::anyhow!("unknown tap `{s}`: use conv1..conv5, res2..res5 or pool5")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_named_twice_counts_once_in_its_first_place() {
        let taps = Tap::parse_list("res3, conv1,res3,conv1").unwrap();
        assert_eq!(taps, [Tap::Res3, Tap::Conv1]);
        assert!(Tap::parse_list(" , ").is_err());
    }
}
