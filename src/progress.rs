//! The one progress-bar builder of long work (extraction, SVM trainings, training steps,
//! PPO updates): a bar with the position, the rate, the time left and a message.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` units of long work (`what`: "pretraining"; `unit`: "steps"),
/// showing the rate, the time left and a message.
pub fn bar(len: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}  {{msg}}"
    );
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
