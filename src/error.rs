//! Error types of the library, one `thiserror` enum per domain.
//!
//! * [`ConfigError`] / [`ConfigErrors`]: a definition file that cannot be used, always with
//!   the file, line and column and a hint on how to fix it.
//! * [`ControlError`]: a control message that could not be carried out (unknown service,
//!   service already defined, service running, …). Every variant carries a message a person
//!   can act on; the HTTP API maps each to a status code.

use std::fmt;
use std::path::PathBuf;

/// One problem in a definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (`None` for a definition made in code or sent over the API).
    pub file: Option<PathBuf>,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl ConfigError {
    /// A problem without a position (for definitions that do not come from a file).
    pub fn detached(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            // A problem with the whole file (it could not be read): no position to give.
            Some(file) if self.line == 0 => write!(f, "{}: {}", file.display(), self.message)?,
            Some(file) => write!(
                f,
                "{}:{}:{}: {}",
                file.display(),
                self.line,
                self.column,
                self.message
            )?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, all files at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} error{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// Every problem on one line, separated by `; ` (each with its place and hint).
    pub fn joined(&self) -> String {
        self.0
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// A control message that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No service has this id.
    #[error("no service named `{0}` is defined")]
    NotFound(String),
    /// A service with this id is already defined.
    #[error("a service named `{0}` is already defined; remove it first or pick another id")]
    AlreadyExists(String),
    /// The definition (or the config it came from) was rejected; each problem keeps its
    /// file, line, column and hint.
    #[error("invalid definition: {}", .0.joined())]
    InvalidDefinition(ConfigErrors),
    /// The operation needs the service to be stopped first.
    #[error("service `{0}` is running; stop it first")]
    Running(String),
    /// The operation needs a running process.
    #[error("service `{id}` is not running (status {status})")]
    NotRunning {
        /// The service.
        id: String,
        /// Its status at the time.
        status: String,
    },
    /// A dependency could not be brought up.
    #[error("service `{id}`: dependency `{dependency}` failed: {reason}")]
    DependencyFailed {
        /// The service.
        id: String,
        /// The dependency that failed.
        dependency: String,
        /// Why.
        reason: String,
    },
    /// Stopping this service would pull the rug from under running dependents.
    #[error("service `{id}` is needed by running service(s) {}: stop them first, or stop with cascade (`steward stop --cascade {id}`, `POST /api/v1/services/{id}/stop?cascade=true`)", dependents.join(", "))]
    DependentsRunning {
        /// The service.
        id: String,
        /// The running services that depend on it.
        dependents: Vec<String>,
    },
    /// The service could not be started (missing environment, bad cwd, spawn error, …).
    #[error("service `{id}` could not start: {reason}")]
    StartFailed {
        /// The service.
        id: String,
        /// Why, in words that say what to fix.
        reason: String,
    },
    /// The service's actors are not available (the runtime is shutting down, or the service
    /// gave up after too many actor failures).
    #[error("service `{id}` is unavailable: {reason}")]
    Unavailable {
        /// The service.
        id: String,
        /// Why.
        reason: String,
    },
    /// The action does not apply to this service as it is defined (e.g. pausing a detached
    /// service whose pid steward does not know).
    #[error("cannot {action} service `{id}`: {reason}")]
    Unsupported {
        /// The service.
        id: String,
        /// The refused action (`pause`, `resume`).
        action: String,
        /// Why, and what to change.
        reason: String,
    },
    /// The runtime has no config directory for an operation that reads or writes one
    /// (save, reload).
    #[error(
        "this runtime has no config directory to {operation}: boot it from one (`steward up --config DIR`, `Steward::boot_dir`)"
    )]
    NoConfigDir {
        /// What needed it (`save into`, `reload from`).
        operation: &'static str,
    },
    /// A definition could not be written to its file.
    #[error("could not save `{id}`: {reason}")]
    SaveFailed {
        /// The service.
        id: String,
        /// Why (the file system's or the validator's words).
        reason: String,
    },
    /// The request was overtaken by a later one before it could be carried out: a start
    /// queued behind a stop, then a second stop or a kill. The answer says what the service
    /// is now.
    #[error(
        "the {action} of service `{id}` was overtaken by a {by} requested after it; the service is {status}"
    )]
    Superseded {
        /// The service.
        id: String,
        /// The request that was not carried out (`start`, `restart`).
        action: String,
        /// What overtook it (`stop`).
        by: String,
        /// The service's status when the answer was sent.
        status: String,
    },
    /// Writing to the process's standard input failed.
    #[error("could not write to `{id}`'s stdin: {reason}")]
    Input {
        /// The service.
        id: String,
        /// Why.
        reason: String,
    },
    /// The runtime itself did not answer.
    #[error("the steward runtime did not answer: {0}")]
    Runtime(String),
    /// Pause and resume freeze and thaw a process group; a function service runs inside
    /// the app, with no process of its own to freeze.
    #[error(
        "cannot {action} service `{id}`: a function service cannot be paused (it runs inside the app, with no process to freeze); stop or restart it instead"
    )]
    FunctionNotPausable {
        /// The service.
        id: String,
        /// The refused action (`pause`, `resume`).
        action: String,
    },
}

impl ControlError {
    /// A short machine-readable code (`not_found`, `already_exists`, …), as used by the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::NotFound(_) => "not_found",
            ControlError::AlreadyExists(_) => "already_exists",
            ControlError::InvalidDefinition(_) => "invalid_definition",
            ControlError::NoConfigDir { .. } => "conflict",
            ControlError::SaveFailed { .. } => "save_failed",
            ControlError::Running(_) => "conflict",
            ControlError::NotRunning { .. } => "conflict",
            ControlError::DependentsRunning { .. } => "conflict",
            ControlError::Unsupported { .. } => "conflict",
            ControlError::DependencyFailed { .. } => "dependency_failed",
            ControlError::StartFailed { .. } => "start_failed",
            ControlError::Unavailable { .. } => "unavailable",
            ControlError::Superseded { .. } => "conflict",
            ControlError::Input { .. } => "input_failed",
            ControlError::Runtime(_) => "internal",
            ControlError::FunctionNotPausable { .. } => "conflict",
        }
    }
}

impl<T> From<ractor::RactorErr<T>> for ControlError {
    fn from(e: ractor::RactorErr<T>) -> Self {
        ControlError::Runtime(e.to_string())
    }
}

/// The runtime could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The configuration has errors.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The root supervisor could not be spawned.
    #[error("could not spawn the root supervisor: {0}")]
    Spawn(String),
    /// A control message failed during boot.
    #[error(transparent)]
    Control(#[from] ControlError),
}
