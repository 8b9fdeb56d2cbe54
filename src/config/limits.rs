//! A service's resource `limits` (memory, CPU, pids) as the runtime works from them; how
//! they are read from a file is in `validate/limits.rs`, how they reach the kernel in
//! `process::cgroup::limits`.

/// A service's `limits:` (DESIGN §2): what its cgroup may use. Each is optional; none set
/// means no limit is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// `memory: 512MiB` — bytes, written to `memory.max` (and `memory.swap.max` 0, so the
    /// limit is not stretched by swap): past it the kernel's OOM killer ends a process.
    pub memory: Option<u64>,
    /// `cpu: 1.5` or `cpu: 150%` — thousandths of a core (1500), written to `cpu.max` as a
    /// quota per 100 ms period (`150000 100000`).
    pub cpu_millicores: Option<u32>,
    /// `pids: 256` — the most processes and threads at once, written to `pids.max`.
    pub pids: Option<u64>,
}

impl Limits {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu_millicores.is_none() && self.pids.is_none()
    }

    /// The cgroup controllers the limits set here need (`memory`, `cpu`, `pids`).
    pub fn controllers(&self) -> Vec<&'static str> {
        [
            ("memory", self.memory.is_some()),
            ("cpu", self.cpu_millicores.is_some()),
            ("pids", self.pids.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}
