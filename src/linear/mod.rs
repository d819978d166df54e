//! Linear models on frozen features: the LIBLINEAR-semantics SVM, cross-validation folds,
//! the SVM protocol and its low-shot chains, and linear probes.

pub mod chains;
pub mod external;
pub mod folds;
pub mod lowshot;
pub mod probe;
pub mod protocol;
pub mod simd;
pub mod svm;
pub mod sweep;
