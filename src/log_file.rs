//! Log file sink with size-based rotation.
