//! steward: an OTP-style service supervisor.
pub mod config;
pub mod error;
pub mod events;
pub mod logs;
pub mod process;
pub mod restart;
pub mod runtime;
pub mod state;
pub mod log_file;
pub mod probe;
