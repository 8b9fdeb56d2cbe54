//! Running one probe.
