//! Linear models on frozen features: the LIBLINEAR-semantics SVM, cross-validation folds,
//! the metrics (VOC and scikit-learn average precision, top-k), and linear probes.

pub mod chains;
pub mod folds;
pub mod lowshot;
pub mod probe;
pub mod protocol;
pub mod simd;
pub mod svm;
pub mod sweep;
