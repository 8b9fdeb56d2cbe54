//! Per-service supervisor.
