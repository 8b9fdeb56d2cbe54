//! Nothing escapes (DESIGN §11): a cgroup per service where steward can create cgroups.
//!
//! A process that calls `setsid` or double-forks leaves its service's process group, and
//! a signal to the group no longer reaches it. A cgroup keeps it: every descendant of a
//! process stays in its cgroup unless someone with the rights moves it. So where a
//! writable cgroup v2 hierarchy is found, each runtime creates its own subtree with one
//! leaf per service, each service process joins its leaf before it execs, and stop, kill
//! and pause act on the leaf (`cgroup.kill`, `cgroup.freeze`, `cgroup.events`).
//!
//! * `hierarchy` — where the unified hierarchy is and where steward sits in it;
//! * `subtree` — the runtime's own subtree, its record in `state_dir`, crash recovery;
//! * `leaf` — one service's cgroup: kill, freeze, wait for `populated 0` / `frozen 1`;
//! * `lineage` — a service's processes in either mode; process-group mode's trace of escapes;
//! * `limits` — the controllers steward may use, `limits` written to a leaf, OOM kills;
//! * `tracking` — the mode in force (cgroup, or process group + subreaper) and why.

pub mod hierarchy;
pub mod leaf;
pub mod limits;
pub mod lineage;
pub mod subtree;
pub mod tracking;

pub use hierarchy::Hierarchy;
pub use leaf::{Condition, Leaf};
pub use limits::Controllers;
pub use subtree::{Subtree, recover};
pub use tracking::{CGROUPS_ENV, ProcessTracking, TrackingMode, TrackingStatus};
