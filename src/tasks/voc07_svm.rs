//! `task = "svm"` (`tasks/voc07_svm.toml`, `tasks/coco2014_svm.toml`): per tap, one linear
//! SVM per class on the cached features of the train split, the cost chosen by
//! cross-validation, scored on the test split (protocols.md section 2).

use super::{cache_ref, data_spec, RunContext, TaskOutput};
use crate::data::Dataset;
use crate::features::extract::Extracted;
use crate::linear::protocol::{
    cross_validated, journal_dir, mean_ap_percent, normalised_rows, SvmProtocol,
};
use crate::report::Metric;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::Instant;

/// The cached features of a task's train and test splits.
pub struct Splits {
    /// The train split and its entries (one per tap).
    pub train: (Dataset, Vec<Extracted>),
    /// The test split and its entries.
    pub test: (Dataset, Vec<Extracted>),
}

impl Splits {
    /// Extracts (or finds) `data.train` and `data.test` at the run's taps and checks that the
    /// two splits share their classes.
    pub fn load(ctx: &RunContext) -> Result<Splits> {
        let doc = &ctx.setup.doc;
        let (train_spec, test_spec) = (data_spec(doc, "train")?, data_spec(doc, "test")?);
        let open = |spec: &str| {
            ctx.setup.features(spec, ctx.taps).with_context(|| {
                format!("cannot use {spec}: point the task at your copy with --set data.root=DIR")
            })
        };
        let (train, test) = (open(&train_spec)?, open(&test_spec)?);
        if train.0.classes != test.0.classes {
            bail!(
                "{train_spec} and {test_spec} have different classes ({} vs {}): set the same \
                 data.classes for both",
                train.0.classes.len(),
                test.0.classes.len()
            );
        }
        Ok(Splits { train, test })
    }

    /// The cache references of both splits.
    pub fn cache_refs(&self) -> Vec<crate::report::CacheRef> {
        [&self.train, &self.test]
            .iter()
            .flat_map(|(d, es)| es.iter().map(|e| cache_ref(&d.spec, e)))
            .collect()
    }
}

/// Runs the SVM protocol at every tap.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let protocol = SvmProtocol::from_doc(&ctx.setup.doc)?;
    let started = Instant::now();
    let splits = Splits::load(ctx)?;
    let extract_s = started.elapsed().as_secs_f64();
    let mut out = TaskOutput {
        cache: splits.cache_refs(),
        ..Default::default()
    };
    let classes = &splits.train.0.classes;
    let mut taps = Vec::new();
    for (tr, te) in splits.train.1.iter().zip(&splits.test.1) {
        let tap_started = Instant::now();
        let store = &ctx.setup.store;
        let (train, test) = (store.read(&tr.key)?, store.read(&te.key)?);
        let train_rows = normalised_rows(&train.features, protocol.norm_eps)?;
        let test_rows = normalised_rows(&test.features, protocol.norm_eps)?;
        let journal = journal_dir(
            store.root(),
            &[tr.key.digest(), te.key.digest(), classes.join(",")],
            &protocol,
        )?;
        let results = cross_validated(
            &protocol,
            &train_rows,
            train.targets.view(),
            &test_rows,
            test.targets.view(),
            classes,
            &journal,
            &format!("SVM {}", tr.tap.name()),
        )?;
        let map = mean_ap_percent(&results);
        eprintln!(
            "{}: mAP {map:.2} over {} classes",
            tr.tap.name(),
            results.len()
        );
        out.metrics.push(Metric {
            tap: tr.tap.name().to_string(),
            name: "mAP".into(),
            value: map,
            ..Default::default()
        });
        taps.push(json!({
            "tap": tr.tap.name(),
            "mAP": map,
            "dim": train_rows.dim(),
            "train_images": train_rows.len(),
            "test_images": test_rows.len(),
            "journal": journal,
            "seconds": tap_started.elapsed().as_secs_f64(),
            "classes": results,
        }));
    }
    out.details = json!({ "protocol": protocol, "taps": taps });
    out.timings.insert("features_s".into(), extract_s.into());
    out.timings.insert(
        "svm_s".into(),
        (started.elapsed().as_secs_f64() - extract_s).into(),
    );
    Ok(out)
}
