//! Everything that talks to the OS about processes: building the argv, spawning in a
//! process group with `PR_SET_PDEATHSIG`, signalling groups, reading pipes as lines,
//! resolving the environment and sampling CPU and memory from `/proc`.
//!
//! This is the only module allowed `unsafe` (for `pre_exec`); each use has a SAFETY note.

pub mod command_line;
pub mod environment;
pub mod pipe_reader;
pub mod signal;
pub mod spawn;
pub mod usage;

pub use command_line::argv_for;
pub use environment::{check_cwd, resolve};
pub use pipe_reader::{LineDecoder, read_lines};
pub use signal::{ProcessGroupGuard, parse_signal, signal_group, signal_name};
pub use spawn::{SpawnPlan, spawn};
pub use usage::UsageSampler;
