//! Linear models on frozen features: the LIBLINEAR-semantics SVM, cross-validation folds,
//! the metrics (VOC and scikit-learn average precision, top-k), and linear probes.
