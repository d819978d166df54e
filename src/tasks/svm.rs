//! `task = "svm"` (`tasks/voc07_svm.toml`, `tasks/coco2014_svm.toml`): per tap, one linear
//! SVM per class on the cached features of the train split, the cost chosen by
//! cross-validation, scored on the test split (protocols.md section 2).

use super::{RunContext, Splits, TaskOutput};
use crate::linear::protocol::{
    cross_validated, journal_dir, mean_ap_percent, normalised_rows, ClassResult, SvmProtocol,
};
use crate::report::{DetailTable, Metric};
use anyhow::Result;
use serde_json::json;
use std::time::Instant;

/// The sections this task reads besides the shared ones.
pub const SECTIONS: &[&str] = &["svm"];

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
        out.tables.push(per_class(tr.tap.name(), &results));
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

/// The per-class table of a tap: class, chosen cost, CV AP at that cost, test AP (percent).
fn per_class(tap: &str, results: &[ClassResult]) -> DetailTable {
    DetailTable {
        title: format!("{tap}: per class"),
        columns: ["class", "cost", "CV AP", "test AP"]
            .map(String::from)
            .to_vec(),
        rows: results
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    serde_json::Value::from(c.cost).to_string(),
                    format!("{:.1}", 100.0 * c.cv_ap_chosen),
                    format!("{:.1}", 100.0 * c.test_ap),
                ]
            })
            .collect(),
    }
}
