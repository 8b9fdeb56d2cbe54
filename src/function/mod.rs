//! Function services: a service whose code is an async function of the embedding app,
//! supervised in the same tree as OS processes (DESIGN §1, §2 "An embedding app may also
//! register a function service").
//!
//! OTP supervises processes of the VM and needs ports for OS processes; process managers
//! supervise OS processes and nothing else. steward's tree holds both: a
//! [`FunctionService`] is the run part of a [`ServiceDefinition`](crate::ServiceDefinition)
//! (its `function` field; see [`ServiceDefinition::function`](crate::ServiceDefinition::function)),
//! and everything else about the service works as for a process — restart policy, backoff,
//! restart intensity, probes, `depends_on` in both directions, tags, autostart, the log
//! ring, events, the API.
//!
//! The PortManager runs the function as a tokio task (`port_manager/function.rs`), so a
//! panic is caught as the task's `JoinError` and never unwinds into an actor:
//!
//! | the function | the service |
//! |---|---|
//! | returns `Ok(())` | exit code 0 (`completed` for dependents; `transient` does not restart it) |
//! | returns `Err(e)` | exit code 1, cause `returned an error: <e>` |
//! | panics | a crash, exit code null, cause `panicked: <message>` |
//! | stop | [`ServiceContext::cancelled`] resolves; the task is aborted after `stop_timeout` (reported as forced, like a SIGKILL after the grace) |
//! | kill | the task is aborted at once |
//! | pause / resume | refused (409): there is no process to freeze; unless it opts in ([`FunctionService::pausable`]): [`ServiceContext::is_paused`] then says so |
//!
//! A ractor actor can be a function service too ([`FunctionService::actor`]): steward
//! spawns it for each run, asks it to stop on a stop, and takes its end (stopped, or
//! failed) as the function's.
//!
//! The error type `E` of `Result<(), E>` only needs `Display` (`String`, `&str`,
//! `std::io::Error`, `anyhow::Error` and any `std::error::Error` qualify); it is formatted
//! with `{:#}`, so an `anyhow::Error` shows its whole chain.
//!
//! Abort takes effect at the function's next `.await`: a function that blocks a worker
//! thread (a busy loop, blocking I/O) cannot be aborted; put such work in
//! `tokio::task::spawn_blocking`. Tasks the function spawns itself are not aborted with it:
//! hand them the context and let them end on [`ServiceContext::cancelled`].
//!
//! A function service has no text form: YAML and the HTTP API cannot define one, saving one
//! is refused, a reload leaves it alone, and `GET /api/v1/services/{id}` shows it with
//! `kind: function` and the function's name.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod actor;
mod context;

pub use context::{LogWriter, ServiceContext};

/// What a function service's factory returns: `Ok(())` when it finished, else the words
/// of its error.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The run part of a function service: an async factory called once per run with that
/// run's [`ServiceContext`].
///
/// Two definitions compare equal when they hold the same factory (the same `Arc`) under
/// the same name, as function probes do.
#[derive(Clone)]
pub struct FunctionService {
    /// A name for views and messages (`"http api"`); `GET` shows it as `function`.
    pub name: String,
    /// Called once per run (every start and restart).
    pub factory: Arc<dyn Fn(ServiceContext) -> ServiceFuture + Send + Sync>,
    /// The function reports its readiness itself ([`ServiceContext::ready`]), like
    /// `READY=1` of systemd's notify protocol: the service is not `ready` (nor `healthy`
    /// for dependents and `/health/ready`) until it does. Without it, `ready` follows
    /// `running`, as for a process without a readiness probe.
    pub reports_ready: bool,
    /// The function honours pause and resume itself: a pause raises
    /// [`ServiceContext::is_paused`] (and probes are suspended, `ready` turns false, as for
    /// a frozen process) until a resume; the function is expected to hold its work
    /// meanwhile ([`ServiceContext::resumed`]). Without it, pause and resume are refused.
    pub pausable: bool,
}

impl FunctionService {
    /// Wraps an async function as a service. The error type only needs `Display`.
    ///
    /// ```no_run
    /// use steward::function::{FunctionService, ServiceContext};
    ///
    /// let cache_warmer = FunctionService::new("cache warmer", |ctx: ServiceContext| async move {
    ///     ctx.log().stdout("warming");
    ///     ctx.cancelled().await; // until steward stops it
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// ```
    pub fn new<F, Fut, E>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(ServiceContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let factory = move |ctx: ServiceContext| -> ServiceFuture {
            let run = f(ctx);
            Box::pin(async move { run.await.map_err(|e| format!("{e:#}")) })
        };
        FunctionService {
            name: name.into(),
            factory: Arc::new(factory),
            reports_ready: false,
            pausable: false,
        }
    }

    /// The function reports readiness with [`ServiceContext::ready`]; until then the
    /// service is not ready (see [`FunctionService::reports_ready`]).
    #[must_use]
    pub fn reporting_ready(mut self) -> Self {
        self.reports_ready = true;
        self
    }
}

impl FunctionService {
    /// The function honours pause and resume itself (sets [`FunctionService::pausable`]).
    #[must_use]
    pub fn honouring_pause(mut self) -> Self {
        self.pausable = true;
        self
    }
}

impl fmt::Debug for FunctionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionService({})", self.name)
    }
}

impl PartialEq for FunctionService {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.reports_ready == other.reports_ready
            && self.pausable == other.pausable
            && Arc::ptr_eq(&self.factory, &other.factory)
    }
}

/// The keys of `def` that only mean something for a process and are set: a function
/// service with any of them is refused when it is defined.
pub(crate) fn process_only_keys(def: &crate::ServiceDefinition) -> Vec<&'static str> {
    [
        ("detached", def.detached),
        ("install", def.install.is_some()),
        ("source", def.source.is_some()),
        ("stop_command", def.stop_command.is_some()),
        ("pid_file", def.pid_file.is_some()),
        ("user", def.user.is_some()),
        ("group", def.group.is_some()),
        ("write_env_file", def.write_env_file),
        // The notify socket is a process's (a function reports readiness through its
        // context instead).
        ("readiness.notify", def.notify_readiness()),
        ("watchdog", def.watchdog.is_some()),
        ("max_memory", def.max_memory.is_some()),
        ("limits", !def.limits.is_empty()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}

/// The words of a panic payload (`panic!("boom")` → `boom`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_equals_its_clone_and_not_another_function_of_the_same_name() {
        let one = FunctionService::new("job", |_ctx| async { Ok::<(), String>(()) });
        let other = FunctionService::new("job", |_ctx| async { Ok::<(), String>(()) });
        assert_eq!(one, one.clone());
        assert_ne!(one, other);
        assert_ne!(one.clone(), one.reporting_ready());
        assert_eq!(format!("{other:?}"), "FunctionService(job)");
    }

    #[test]
    fn panic_payloads_are_worded() {
        let text: Box<dyn std::any::Any + Send> = Box::new("boom");
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("bang 3"));
        let other: Box<dyn std::any::Any + Send> = Box::new(42u8);
        assert_eq!(panic_message(text.as_ref()), "boom");
        assert_eq!(panic_message(owned.as_ref()), "bang 3");
        assert_eq!(panic_message(other.as_ref()), "a panic without a message");
    }
}
