//! The bridge client (placeholder until the helper lands it).
