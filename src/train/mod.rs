//! Training machinery for the pretext tasks (issue 4): layers whose backward candle lacks,
//! and, to come, optimisers, schedules and checkpoints.

pub mod pool;
