//! Training machinery for the pretext tasks (issue 4): layers whose backward candle lacks
//! and learning-rate schedules; optimisers and checkpoints are to come (the linear probes'
//! SGD lives in `linear::sgd` for now).

pub mod pool;
pub mod schedule;
