//! The catalog: each tool's name, title, description for a model, annotations and input
//! type. [`all_tools`] lists them in this order.

use schemars::JsonSchema;

use super::inputs::*;
use super::{Annotations, ToolDefinition};

/// Reads and changes nothing.
const LOOK: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
};
/// Changes state, ends no work, same effect when repeated.
const SAFE_SET: Annotations = Annotations {
    read_only: false,
    destructive: false,
    idempotent: true,
};
/// Ends work in progress; repeating it has no further effect.
const END: Annotations = Annotations {
    read_only: false,
    destructive: true,
    idempotent: true,
};
/// Ends work in progress, and each call does it again.
const END_AGAIN: Annotations = Annotations {
    read_only: false,
    destructive: true,
    idempotent: false,
};
/// Adds something; a second call is refused.
const ADD: Annotations = Annotations {
    read_only: false,
    destructive: false,
    idempotent: false,
};

struct Entry {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    annotations: Annotations,
    schema: fn() -> serde_json::Value,
}

fn schema<T: JsonSchema>() -> serde_json::Value {
    let mut value = schemars::schema_for!(T).to_value();
    if let Some(object) = value.as_object_mut() {
        // The title is the Rust type's name: noise for a model.
        object.remove("title");
    }
    value
}

const STATE: &str = "Returns the service's state: status (pending|installing|starting|running|paused|stopping|stopped|exited|backoff|failed), health, ready, pid, last_exit, restart_count, reason (why it is in this state), cpu and memory.";

fn catalog() -> [Entry; 17] {
    [
        Entry {
            name: "service_list",
            title: "List services",
            description: "Lists every service steward supervises with its current state. Use it first to see what exists and what runs. Returns {services: [state…]}, each state with id, name, status, health, ready, pid, restart_count, reason, tags, cpu and memory.",
            annotations: LOOK,
            schema: schema::<ListInput>,
        },
        Entry {
            name: "service_status",
            title: "Service status",
            description: "One service's state plus its definition (command, cwd, env with secrets masked, restart policy, probes, dependencies). Use it to check one service in detail. Returns the state's fields and `definition`.",
            annotations: LOOK,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_start",
            title: "Start a service",
            description: "Starts a service (its dependencies first, waiting for their condition); does nothing when it already runs. Returns once the process is spawned, or failed to start. Returns the state; when the start failed, `reason` says why.",
            annotations: SAFE_SET,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_stop",
            title: "Stop a service",
            description: "Stops a service gracefully: its stop_signal, then SIGKILL to the whole process group after stop_timeout. Returns once the process is gone. With cascade: true the running services that depend on it are stopped first. Returns the state (and `also_stopped` with cascade). A manual stop is never restarted by policy.",
            annotations: END,
            schema: schema::<StopInput>,
        },
        Entry {
            name: "service_restart",
            title: "Restart a service",
            description: "Stops then starts a service (a manual restart, not counted against max_restarts). Use it after changing files the service reads. Returns the state once the new process is spawned.",
            annotations: END_AGAIN,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_kill",
            title: "Kill a service",
            description: "Sends SIGKILL to the service's whole process group at once and leaves it stopped. Use it only when a stop hangs. Returns the state.",
            annotations: END,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_pause",
            title: "Pause a service",
            description: "Freezes the service's processes (SIGSTOP to the group) and suspends its probes; the process keeps its memory and pid. Returns the state (status paused).",
            annotations: SAFE_SET,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_resume",
            title: "Resume a service",
            description: "Thaws a paused service (SIGCONT) and resumes its probes. Returns the state.",
            annotations: SAFE_SET,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_logs",
            title: "Read a service's log",
            description: "The last lines a service printed on stdout and stderr (from its in-memory ring, which survives restarts). Use `since` with an earlier `last_seq` to read only new lines. Returns {service, lines: [{seq, ts, stream, line, truncated}], last_seq}.",
            annotations: LOOK,
            schema: schema::<LogsInput>,
        },
        Entry {
            name: "service_define",
            title: "Define a service",
            description: "Adds a service at run time, in the schema of services.yml given as JSON (`definition`), and starts it unless autostart is false. With persist: true it is also written to services.d/<id>.yml. An invalid definition is refused with each problem's JSON path and a hint. Returns the new service's state.",
            annotations: ADD,
            schema: schema::<DefineInput>,
        },
        Entry {
            name: "service_remove",
            title: "Remove a service",
            description: "Removes a service's definition. A running service is refused unless stop: true, which stops it first. Returns {removed: id}.",
            annotations: END_AGAIN,
            schema: schema::<RemoveInput>,
        },
        Entry {
            name: "service_explain",
            title: "Explain a service",
            description: "Why a service is in its state: a one-sentence summary, the state, its last exit, its probes, its recent events with their causes and its last log lines. Use it first when a service is failed, in backoff or not ready.",
            annotations: LOOK,
            schema: schema::<ServiceInput>,
        },
        Entry {
            name: "service_events",
            title: "Recent events",
            description: "Events from the runtime's ring of the last 1000 (defined, starting, started, ready, health_changed, exited, backoff, restarting, stopped, failed, …), each with seq, ts, service, kind and `cause` in words. Pass `since` (an earlier `last_seq`) to get only newer events, oldest first. Returns {events, last_seq}.",
            annotations: LOOK,
            schema: schema::<EventsInput>,
        },
        Entry {
            name: "logs_search",
            title: "Search logs",
            description: "Searches the log rings of one or every service for a substring (case-insensitive by default) or a regular expression, with context lines around each match and a cap on matches. Use it to find an error message without reading whole logs. Returns {matches: [{service, line, before, after}], truncated}.",
            annotations: LOOK,
            schema: schema::<LogsSearchInput>,
        },
        Entry {
            name: "runtime_status",
            title: "Runtime status",
            description: "steward's own status: state (running|paused|stopping), uptime, version, number of services, counts by status, automatic restarts in total and the newest event's seq.",
            annotations: LOOK,
            schema: schema::<NoInput>,
        },
        Entry {
            name: "reload",
            title: "Reload the config",
            description: "Re-reads services.yml and services.d/ and compares them with what runs. By default a dry run: returns the plan (each service: start, stop, restart or keep, with why) and changes nothing. With apply: true the plan is applied (changed services restarted, removed ones stopped). A config with errors changes nothing and is answered with its errors. Returns {applied, plan: {entries}}.",
            annotations: END_AGAIN,
            schema: schema::<ReloadInput>,
        },
        Entry {
            name: "dependency_graph",
            title: "Dependency graph",
            description: "The services' dependencies (depends_on) with each node's status: for each service what it depends on (with the condition: started, healthy or completed) and what depends on it, plus the start order in levels (a level starts once the ones before are up). Use it before stopping or restarting a service others need.",
            annotations: LOOK,
            schema: schema::<NoInput>,
        },
    ]
}

/// Every tool, with its input schema and annotations, in the order of DESIGN §7.
pub fn all_tools() -> Vec<ToolDefinition> {
    catalog()
        .into_iter()
        .map(|e| ToolDefinition {
            name: e.name.to_string(),
            title: e.title.to_string(),
            description: match e.name {
                "service_start" | "service_restart" | "service_kill" | "service_pause"
                | "service_resume" => format!("{} {STATE}", e.description),
                _ => e.description.to_string(),
            },
            input_schema: (e.schema)(),
            annotations: e.annotations,
        })
        .collect()
}

/// The annotations of the tool `name`, None when there is no such tool.
pub(super) fn annotations_of(name: &str) -> Option<Annotations> {
    catalog()
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_of_design_section_7_is_listed_once() {
        let names: Vec<String> = all_tools().into_iter().map(|t| t.name).collect();
        for name in [
            "service_list",
            "service_status",
            "service_start",
            "service_stop",
            "service_restart",
            "service_logs",
            "service_define",
            "service_remove",
            "service_kill",
            "service_pause",
            "service_resume",
            "service_explain",
            "service_events",
            "logs_search",
            "runtime_status",
            "reload",
            "dependency_graph",
        ] {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
        }
    }

    #[test]
    fn every_input_schema_is_an_object_schema() {
        for tool in all_tools() {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert!(tool.input_schema.get("title").is_none(), "{}", tool.name);
        }
    }

    #[test]
    fn read_only_tools_are_never_destructive() {
        for tool in all_tools() {
            if tool.annotations.read_only {
                assert!(!tool.annotations.destructive, "{}", tool.name);
            }
        }
    }
}
