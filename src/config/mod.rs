//! Service definitions: the YAML schema, loading `services.yml` + `services.d/*.yml`,
//! validation with file:line:col errors, and the resolved [`ServiceDefinition`].
//!
//! * `definition` — the resolved types the runtime works from;
//! * `model` — the file schema as serde types (unknown keys rejected);
//! * `load` — reading files with serde-saphyr (the one module that knows the YAML crate);
//! * `validate` — turning the file schema into definitions, collecting every error;
//! * `save` — a definition back to YAML (`services.d/<id>.yml`), loading back identical;
//! * `units` — durations (`10s`) and sizes (`10MiB`);
//! * `diff` — reload plans: start / stop / restart / keep, each with why;
//! * `problem` — a positioned problem before it is tied to its file.

mod definition;
mod diff;
mod limits;
mod load;
mod model;
mod problem;
mod save;
mod units;
mod validate;

/// Function services live in [`crate::function`]; the type is here too, next to the definition.
pub use crate::function::FunctionService;
pub use definition::{
    CommandSpec, Config, DEFAULT_BACKOFF, DEFAULT_MAX_SERVICES, Dependency, DependencyCondition,
    FunctionProbe, ProbeCheck, ProbeFuture, ProbeKind, ProbeSpec, RestartPolicy, ServiceDefinition,
    Settings, SourceSpec,
};
pub use diff::{PlanAction, PlanEntry, ReloadPlan, changed_keys, fingerprint, plan_reload};
pub use limits::Limits;
pub use load::load_dir;
/// A duration as the config writes it (`30s`, `5m`, `1500ms`), for words that quote one.
pub(crate) use save::duration_text;
/// A size as the config writes it (`512MiB`), for words that quote one.
pub(crate) use save::size_text;
pub use save::{save_service, service_to_yaml};
/// Cores as `limits.cpu` is written (`1.5`).
pub(crate) use validate::cpu_text;
pub(crate) use validate::{HeldGraph, check_added};
pub use validate::{check_definition, check_dependencies, definition_from_json, is_valid_id};
