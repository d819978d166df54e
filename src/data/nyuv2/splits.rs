//! `splits.mat`: the standard train/test split of the 1449 labelled frames, as 1-based indices
//! `trainNdxs` (795) and `testNdxs` (654), MATLAB v5.

use crate::data::mat5;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The train and test frames, as 1-based NYU indices in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    /// `trainNdxs`.
    pub train: Vec<usize>,
    /// `testNdxs`.
    pub test: Vec<usize>,
}

impl Splits {
    /// Reads `trainNdxs` and `testNdxs`; a missing variable or a value that is not a positive
    /// integer is an error naming the file.
    pub fn read(path: &Path) -> Result<Splits> {
        let vars = mat5::read(path)?;
        let indices = |name: &str| -> Result<Vec<usize>> {
            let array = vars.get(name).and_then(|v| v.numeric()).with_context(|| {
                format!(
                    "{} has no numeric variable `{name}`: use NYUv2's splits.mat \
                         (trainNdxs, testNdxs)",
                    path.display()
                )
            })?;
            array
                .to_f64_vec()
                .into_iter()
                .map(|v| {
                    if v >= 1.0 && v.fract() == 0.0 {
                        Ok(v as usize)
                    } else {
                        bail!(
                            "`{name}` in {} holds {v}, not a 1-based index: use NYUv2's \
                             splits.mat",
                            path.display()
                        )
                    }
                })
                .collect()
        };
        Ok(Splits {
            train: indices("trainNdxs")?,
            test: indices("testNdxs")?,
        })
    }

    /// An error naming `labeled` (the labelled set's file) when an index exceeds `frames`,
    /// that set's size.
    pub fn check_against(&self, frames: usize, labeled: &Path) -> Result<()> {
        if let Some(&i) = self.train.iter().chain(&self.test).find(|&&i| i > frames) {
            bail!(
                "split index {i} is past the {frames} frames of {}: use the splits of this \
                 labelled set",
                labeled.display()
            );
        }
        Ok(())
    }
}
