//! Root supervisor.
