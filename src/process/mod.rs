//! Everything that talks to the OS about processes: building the argv, spawning in a
//! process group with `PR_SET_PDEATHSIG`, signalling groups, reading pipes as lines,
//! resolving the environment (and writing `.env`, masking secrets), switching users,
//! keeping pid files for crash recovery, reaping orphans as init or subreaper, following a detached service's daemon and sampling CPU and memory from `/proc`.
//!
//! This is the only module allowed `unsafe` (the vfork-like spawn in `vfork`, the fork
//! fallback's `pre_exec`, adopting descriptors); each use has a SAFETY note.

pub mod cgroup;
pub mod child;
pub mod command_line;
pub mod daemon;
pub mod env_file_writer;
pub mod environment;
pub mod fd_limit;
pub mod install_marker;
pub mod malloc;
pub mod pid_file;
pub(crate) mod pid_table;
pub mod pipe_reader;
pub mod pipes;
pub mod reaper;
pub mod regular_file;
pub mod secrets;
pub mod signal;
pub mod spawn;
pub mod usage;
pub mod user;
mod vfork;

pub use child::Child;
pub use command_line::argv_for;
pub use env_file_writer::write_env_file;
pub use environment::{check_cwd, resolve};
pub use malloc::{limit_malloc_arenas, trim_malloc};
pub use pid_file::{PidRecord, Recovered, recover, start_time};
pub use pipe_reader::LineDecoder;
pub use pipes::read_pipes;
pub use secrets::{is_secret_key, mask_env};
pub use signal::{ProcessGroupGuard, parse_signal, signal_group, signal_name};
pub use spawn::{SpawnPlan, spawn};
pub use usage::UsageSampler;
pub use user::{ResolvedUser, resolve_user};
