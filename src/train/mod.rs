//! Training machinery for the pretext tasks: the parameter registry, optimisers, learning-rate
//! schedules, atomic checkpoints with exact resume, the training log, and the layers whose
//! backward candle lacks.

pub mod checkpoint;
pub mod log;
pub mod optim;
pub mod params;
pub mod pool;
pub mod schedule;

/// A progress bar over `len` units of long work (`what`: "pretraining"; `unit`: "steps"),
/// showing the rate, the time left and a message.
pub fn progress(len: u64, what: &str, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let template = format!(
        "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}  {{msg}}"
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
