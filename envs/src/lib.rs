//! Environments for sslbench's visual-navigation task, free of candle: the `Env` trait, the
//! gym bridge client and the built-in environment land here (see the navigation issue).
