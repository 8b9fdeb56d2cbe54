//! Spawning a service process.
use std::path::PathBuf;

/// Everything needed to spawn one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnPlan {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
}
