//! The built-in environment (placeholder until the helper lands it).
