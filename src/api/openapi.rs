//! The OpenAPI 3.1 document of the API, served at `GET /api/v1/openapi.json`.
//!
//! Written by hand with `serde_json::json!` rather than derived: the API is small, and a
//! hand-written document says what a client needs (which errors, which SSE shape) in
//! words. A test checks that every route of [`super::ROUTES`] is documented and that the
//! document has no route the router lacks.
//!
//! Length: the document is one `json!` literal per route (about 570 lines); splitting it
//! would scatter what a client reads as one page.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

fn error_ref(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn sse_ok(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"text/event-stream": {"schema": {"type": "string"}}}
    })
}

fn id_param() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "Service id (`[a-z0-9][a-z0-9_-]*`).",
        "schema": {"type": "string"}
    })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn last_event_id() -> Value {
    json!({
        "name": "Last-Event-ID", "in": "header", "required": false,
        "description": "Sent by a reconnecting EventSource; counts as `since` and wins over the query.",
        "schema": {"type": "integer", "minimum": 0}
    })
}

/// A control verb on one service (`stop` also takes `cascade`).
fn control(verb: &str, does: &str) -> Value {
    let mut parameters = vec![
        id_param(),
        query(
            "wait",
            json!({"type": "boolean", "default": true}),
            "With `false`, answer `202 Accepted` as soon as the service's Server acted on the verb (a stop: signal sent, `stopping`), with the state then, instead of once the verb is done.",
        ),
    ];
    let mut ok = json_ok(
        "The service's state once the action is done.",
        "ServiceState",
    );
    if verb == "stop" {
        parameters.push(query(
            "cascade",
            json!({"type": "boolean", "default": false}),
            "Stop the running services that depend on this one first (dependents of dependents before them), then this one. Answers `CascadeStopped`. Not with `wait=false`.",
        ));
        ok = json!({
            "description": "The service's state once stopped; with `cascade=true`, the same fields plus `also_stopped`.",
            // anyOf, not oneOf: a CascadeStopped is also a valid ServiceState (extra
            // fields are allowed), so exactly-one-of would reject every cascade answer.
            "content": {"application/json": {"schema": {"anyOf": [
                {"$ref": "#/components/schemas/ServiceState"},
                {"$ref": "#/components/schemas/CascadeStopped"}
            ]}}}
        });
    }
    json!({
        "post": {
            "tags": ["services"],
            "operationId": format!("service_{verb}"),
            "summary": does,
            "parameters": parameters,
            "responses": {
                "200": ok,
                "202": json_ok("With `wait=false`: the request is accepted; the state right after the service's Server acted.", "ServiceState"),
                "400": error_ref("A bad query (`cascade` on another verb than stop, or with `wait=false`)."),
                "401": error_ref("Token missing or wrong."),
                "404": error_ref("No such service (`not_found`)."),
                "409": error_ref("Refused in the current state (`conflict`, `start_failed`, `dependency_failed`, `unavailable`)."),
            }
        }
    })
}

/// A runtime-wide verb.
fn lifecycle(verb: &str, does: &str) -> Value {
    json!({
        "post": {
            "tags": ["runtime"],
            "operationId": format!("lifecycle_{verb}"),
            "summary": does,
            "responses": {
                "200": json_ok("One outcome per service; one refusal does not fail the request.", "LifecycleOutcome"),
                "401": error_ref("Token missing or wrong."),
            }
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    let mut add = |path: &str, item: Value| {
        match (paths.get_mut(path), item) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (_, item) => {
                paths.insert(path.to_string(), item);
            }
        };
    };

    add(
        "/health/live",
        json!({"get": {
            "tags": ["health"], "operationId": "health_live", "security": [],
            "summary": "200 while the runtime's root supervisor answers (liveness probe). Never needs the token.",
            "responses": {
                "200": {"description": "Alive.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"live": {"type": "boolean"}, "state": {"$ref": "#/components/schemas/RuntimeState"}}}}}},
                "503": {"description": "The runtime does not answer.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"live": {"type": "boolean"}, "reason": {"type": "string"}}}}}}
            }
        }}),
    );
    add(
        "/health/ready",
        json!({"get": {
            "tags": ["health"], "operationId": "health_ready", "security": [],
            "summary": "200 when every autostart service is ready or exited with code 0; 503 otherwise and while the runtime is paused or stopping. Never needs the token.",
            "responses": {
                "200": json_ok("Ready.", "Readiness"),
                "503": json_ok("Not ready; `not_ready` lists the services that hold it back.", "Readiness"),
            }
        }}),
    );
    add(
        "/api/v1/usage",
        json!({"get": {
            "tags": ["services"], "operationId": "usage",
            "summary": "Recent CPU and memory samples of each running service (every 5 s, the last 60).",
            "responses": {
                "200": {
                    "description": "Samples per service id, oldest first.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "interval_secs": {"type": "integer"},
                            "services": {"type": "object", "additionalProperties": {
                                "type": "array", "items": {"type": "object", "properties": {
                                    "at": {"type": "string", "format": "date-time"},
                                    "cpu_percent": {"type": "number"},
                                    "rss_bytes": {"type": "integer"}
                                }}
                            }}
                        }
                    }}}
                },
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );
    add(
        "/api/v1/status",
        json!({"get": {
            "tags": ["runtime"], "operationId": "status",
            "summary": "The runtime: state, uptime, version, counts by status, restarts total.",
            "responses": {
                "200": json_ok("The runtime's status.", "RuntimeStatus"),
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );
    add(
        "/api/v1/services",
        json!({
            "get": {
                "tags": ["services"], "operationId": "service_list",
                "summary": "Every service's state, in definition order.",
                "parameters": [query("tag", json!({"type": "string"}), "Only services with this tag.")],
                "responses": {
                    "200": json_ok("The states.", "ServiceList"),
                    "400": error_ref("Bad query (`bad_request`)."),
                    "401": error_ref("Token missing or wrong."),
                }
            },
            "post": {
                "tags": ["services"], "operationId": "service_define",
                "summary": "Define a service at run time (started when `autostart`, the default). The body is one service of services.yml as JSON, plus its `id`; relative paths resolve against the daemon's config directory.",
                "parameters": [query("persist", json!({"type": "boolean"}), "Also write the definition to `<config dir>/services.d/<id>.yml`, which loads back to the same definition.")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DefinitionInput"}}}},
                "responses": {
                    "201": json_ok("Defined; the state after the start (a start that failed shows as status `failed` with its reason).", "ServiceState"),
                    "400": error_ref("Malformed JSON (`bad_request`)."),
                    "401": error_ref("Token missing or wrong."),
                    "409": error_ref("A service with this id exists (`already_exists`)."),
                    "422": error_ref("The definition is invalid (`invalid_definition`); `errors` lists every problem."),
                }
            }
        }),
    );
    add(
        "/api/v1/services/{id}",
        json!({
            "get": {
                "tags": ["services"], "operationId": "service_get",
                "summary": "One service: its state's fields plus `definition` (durations as text, env values whose name contains KEY, TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL (any case) as \"***\").",
                "parameters": [id_param()],
                "responses": {
                    "200": json_ok("State and definition.", "ServiceDetail"),
                    "401": error_ref("Token missing or wrong."),
                    "404": error_ref("No such service (`not_found`)."),
                }
            },
            "delete": {
                "tags": ["services"], "operationId": "service_remove",
                "summary": "Remove a service that is not running.",
                "parameters": [id_param()],
                "responses": {
                    "200": {"description": "Removed.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["removed"], "properties": {"removed": {"type": "string"}}}}}},
                    "401": error_ref("Token missing or wrong."),
                    "404": error_ref("No such service (`not_found`)."),
                    "409": error_ref("The service is running; stop it first (`conflict`)."),
                }
            }
        }),
    );
    for (verb, does) in [
        (
            "start",
            "Start the service; answers once its process is spawned.",
        ),
        (
            "stop",
            "Stop the service gracefully; answers once its process group is gone. Refused (409) while running services depend on it, unless `cascade=true`.",
        ),
        (
            "restart",
            "Stop then start (never counts towards max_restarts).",
        ),
        (
            "kill",
            "SIGKILL the process group now; the service ends `stopped`.",
        ),
        ("pause", "SIGSTOP the process group and suspend probes."),
        ("resume", "SIGCONT the process group and resume probes."),
    ] {
        add(
            &format!("/api/v1/services/{{id}}/{verb}"),
            control(verb, does),
        );
    }
    add(
        "/api/v1/services/{id}/input",
        json!({"post": {
            "tags": ["services"], "operationId": "service_input",
            "summary": "Write the body's bytes to the process's stdin, as they are (no newline added).",
            "parameters": [id_param()],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "200": {"description": "Written.", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["written"], "properties": {"written": {"type": "integer"}}}}}},
                "401": error_ref("Token missing or wrong."),
                "404": error_ref("No such service (`not_found`)."),
                "409": error_ref("Not running, or stdin closed (`conflict`, `input_failed`)."),
            }
        }}),
    );
    add(
        "/api/v1/services/{id}/logs",
        json!({"get": {
            "tags": ["services"], "operationId": "service_logs",
            "summary": "The service's log lines. With `follow=true`: Server-Sent Events, each event's data one LogLine (SSE id = seq), after a backlog of `tail` lines or every line after `since`; lost lines arrive as an event named `gap` with data {\"gap\": N}.",
            "parameters": [
                id_param(),
                query("tail", json!({"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 100}), "Lines of backlog (at most 1000000, the largest ring)."),
                query("since", json!({"type": "integer", "minimum": 0}), "Only lines after this seq (then `tail` is ignored)."),
                query("follow", json!({"type": "boolean", "default": false}), "Stream as Server-Sent Events."),
                last_event_id(),
            ],
            "responses": {
                "200": {
                    "description": "The lines (JSON), or the stream (text/event-stream) with `follow=true`.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Logs"}},
                        "text/event-stream": {"schema": {"type": "string"}}
                    }
                },
                "400": error_ref("Bad query such as `tail=abc` (`bad_request`)."),
                "401": error_ref("Token missing or wrong."),
                "404": error_ref("No such service (`not_found`)."),
            }
        }}),
    );
    add(
        "/api/v1/services/{id}/explain",
        json!({"get": {
            "tags": ["services"], "operationId": "service_explain",
            "summary": "Why the service is in its state: a one-sentence summary, its recent events with causes, last exit, probes, last 20 log lines.",
            "parameters": [id_param()],
            "responses": {
                "200": json_ok("The explanation.", "Explanation"),
                "401": error_ref("Token missing or wrong."),
                "404": error_ref("No such service (`not_found`)."),
            }
        }}),
    );
    add(
        "/api/v1/events",
        json!({"get": {
            "tags": ["runtime"], "operationId": "events",
            "summary": "Server-Sent Events: each event's data one Event (SSE id = seq). With `since`, the events after it still in the ring (the last 1000) come first, then live ones; `since=0` replays the whole ring. Lost events arrive as an event named `gap` with data {\"gap\": N}.",
            "parameters": [
                query("service", json!({"type": "string"}), "Only this service's events."),
                query("since", json!({"type": "integer", "minimum": 0}), "Replay the events after this seq first."),
                last_event_id(),
            ],
            "responses": {
                "200": sse_ok("The event stream."),
                "400": error_ref("Bad query (`bad_request`)."),
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );
    for (verb, does) in [
        (
            "start",
            "Start every autostart service, in definition order.",
        ),
        (
            "stop",
            "Stop every service, dependents first; the daemon stays up.",
        ),
        (
            "pause",
            "Freeze every service and hold restarts back; /health/ready answers 503 until resume.",
        ),
        ("resume", "Thaw every service."),
        (
            "restart",
            "Stop every service, then start the autostart ones.",
        ),
    ] {
        add(&format!("/api/v1/lifecycle/{verb}"), lifecycle(verb, does));
    }
    add(
        "/api/v1/reload",
        json!({"post": {
            "tags": ["runtime"], "operationId": "reload",
            "summary": "Re-read the config directory and apply the difference: new services defined (and started when autostart), removed ones stopped and removed, changed ones replaced (restarted if they ran), unchanged ones untouched. A config with errors changes nothing.",
            "parameters": [query("dry_run", json!({"type": "boolean"}), "Only return the plan.")],
            "responses": {
                "200": {"description": "The plan: one entry per service with `id`, `action` (`start`, `stop`, `restart`, `keep`) and `why`; `applied` says whether it was carried out.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": error_ref("Bad query (`bad_request`)."),
                "401": error_ref("Token missing or wrong."),
                "422": error_ref("The config has errors (`invalid_definition`); nothing changed."),
            }
        }}),
    );
    add(
        "/metrics",
        json!({"get": {
            "tags": ["runtime"], "operationId": "metrics",
            "summary": "Prometheus text format (metric names start with `steward_`; see docs/HTTP_API.md).",
            "responses": {
                "200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );
    add(
        "/api/v1/openapi.json",
        json!({"get": {
            "tags": ["runtime"], "operationId": "openapi",
            "summary": "This document.",
            "responses": {
                "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );

    add(
        "/api/v1/tools",
        json!({"get": {
            "tags": ["tools"], "operationId": "list_tools",
            "summary": "The agent tools (DESIGN §7): each with name, title, description, input_schema (JSON Schema 2020-12) and annotations (read_only, destructive, idempotent). See docs/AGENTS.md.",
            "responses": {
                "200": {"description": "{\"tools\": [ToolDefinition]}.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "401": error_ref("Token missing or wrong."),
            }
        }}),
    );
    add(
        "/api/v1/tools/{name}",
        json!({"post": {
            "tags": ["tools"], "operationId": "call_tool",
            "summary": "Call a tool; the body is its bare input object (empty body: {}). Answers the tool's JSON result, secrets masked.",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": {"description": "The tool's result.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": error_ref("The body is not JSON (`bad_request`)."),
                "401": error_ref("Token missing or wrong."),
                "404": error_ref("No such tool, or no such service (`not_found`)."),
                "409": error_ref("The runtime refused the request in the service's current state."),
                "422": error_ref("The input does not match the tool's schema, or a definition has problems (`invalid_input`, each problem with its JSON path in `details`)."),
            }
        }}),
    );
    add(
        "/mcp",
        json!({"post": {
            "tags": ["tools"], "operationId": "mcp",
            "summary": "The agent tools over the Model Context Protocol (Streamable HTTP, stateless, JSON responses): JSON-RPC `initialize`, `tools/list`, `tools/call`. Needs the token when one is set; `Host` and `Origin` must be loopback or the listen address (DNS-rebinding protection).",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": {"description": "The JSON-RPC answer.", "content": {"application/json": {"schema": {"type": "object"}}}},
                "401": error_ref("Token missing or wrong."),
                "403": error_ref("Host or Origin not allowed (`forbidden`)."),
            }
        }}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "steward HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Control a steward runtime: services, logs, events, lifecycle, metrics. When the daemon has a token, /api/* and /metrics need `Authorization: Bearer <token>`; /health/* never does. Errors are {\"error\": {\"code\", \"message\"}}."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": with_limits(with_notify(schemas())),
        }
    })
}

/// The notification protocol's additions (issue 17): a probe's `notify`, a definition's
/// `watchdog`, a state's `notify_status` and the `notified` event kind. Added to the
/// document built by [`schemas`] (one more key there passes `json!`'s recursion limit).
fn with_notify(mut schemas: Value) -> Value {
    for kind in ["readiness", "liveness", "startup"] {
        schemas["Definition"]["properties"][kind]["properties"]["notify"] = json!({
            "type": "boolean",
            "description": "Readiness only: the service sends READY=1 over NOTIFY_SOCKET (nothing polled)."
        });
    }
    schemas["Definition"]["properties"]["watchdog"] = json!({
        "type": "string",
        "description": "The longest time between two WATCHDOG=1 of the service (absent without one)."
    });
    schemas["ServiceState"]["properties"]["notify_status"] = json!({
        "type": ["string", "null"],
        "description": "The last STATUS= text the process sent over its notify socket; absent before one and once that process is gone."
    });
    if let Some(kinds) = schemas["Event"]["properties"]["kind"]["enum"].as_array_mut() {
        kinds.push(json!("notified"));
    }
    schemas
}

/// Issue 13's additions: a definition's `limits` and `max_memory`, and a state's
/// `limits_not_enforced`.
fn with_limits(mut schemas: Value) -> Value {
    schemas["Definition"]["properties"]["limits"] = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "cgroup v2 limits of the service's cgroup, applied where steward's subtree has the controller (else see the state's limits_not_enforced).",
        "properties": {
            "memory": {"type": "string", "description": "memory.max, a size such as 512MiB (at least 1MiB); swap is not allowed past it."},
            "cpu": {"type": "string", "description": "cpu.max in cores (1.5) or percent of one core (150%), from 0.01 to 1024 cores."},
            "pids": {"type": "integer", "minimum": 1, "description": "pids.max: the most processes and threads at once."}
        }
    });
    schemas["Definition"]["properties"]["max_memory"] = json!({
        "type": "string",
        "description": "Restart (through the restart policy) when the service's process tree uses more memory than this for two samples in a row."
    });
    schemas["ServiceState"]["properties"]["limits_not_enforced"] = json!({
        "type": ["string", "null"],
        "description": "Why the service's limits are not (all) applied, e.g. `cgroups are off (settings.cgroups: false)`; absent when it has none or all are enforced. The service runs either way."
    });
    schemas
}

fn schemas() -> Value {
    let status = json!({"type": "string", "enum": [
        "pending", "installing", "starting", "running", "paused", "stopping",
        "stopped", "exited", "backoff", "failed"]});
    let health = json!({"type": "string", "enum": ["unknown", "healthy", "unhealthy"]});
    let nullable_string = json!({"type": ["string", "null"]});
    let depends_on = json!({
        "type": "object",
        "additionalProperties": {"type": "string", "enum": ["started", "healthy", "completed"]}
    });
    // Function services (issue 15): built here, as the document's macro has a token limit.
    let state_kind = json!({"type": "string", "enum": ["process", "function"],
        "description": "`function`: a function service of the embedding app (pid, CPU and memory are null)."});
    let definition_kind = json!({"type": "string", "enum": ["process", "function"],
        "description": "`function`: a function service, defined in code by the embedding app; it has no YAML form and cannot be defined over HTTP."});
    let function_name =
        json!({"type": "string", "description": "The function's name, for a function service."});
    let probe = json!({"type": ["object", "null"], "properties": {
        "http": {"type": "object", "properties": {"url": {"type": "string"}, "expect_status": {"type": "integer"}}},
        "tcp": {"type": "string"},
        "command": {"type": "string"},
        "function": {"type": "string"},
        "interval": {"type": "string"}, "timeout": {"type": "string"}, "initial_delay": {"type": "string"},
        "failure_threshold": {"type": "integer"}, "success_threshold": {"type": "integer"}
    }});
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": [
                    "bad_request", "unauthorized", "not_found", "method_not_allowed", "conflict",
                    "already_exists", "payload_too_large", "invalid_definition", "dependency_failed",
                    "start_failed", "unavailable", "input_failed", "save_failed", "internal"]},
                "message": {"type": "string"},
                "details": {"type": "array", "description": "With invalid_definition: every problem, with its place when it came from a file.",
                    "items": {"$ref": "#/components/schemas/Problem"}},
                "dependents": {"type": "array", "items": {"type": "string"},
                    "description": "With a stop refused because running services depend on this one: those services (stop with `cascade=true` to stop them first)."},
                "errors": {"type": "array", "description": "The same list as `details`, under the name earlier clients read.",
                    "items": {"$ref": "#/components/schemas/Problem"}}
            }}}
        },
        "Problem": {"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"},
            "hint": {"type": "string", "description": "How to fix it, when there is something useful to say."},
            "file": {"type": "string", "description": "The file the problem is in (absent for a definition sent over the API)."},
            "line": {"type": "integer", "minimum": 1},
            "column": {"type": "integer", "minimum": 1}
        }},
        "CascadeStopped": {"allOf": [
            {"$ref": "#/components/schemas/ServiceState"},
            {"type": "object", "required": ["also_stopped"], "properties": {
                "also_stopped": {"type": "array", "description": "The running dependents stopped first, in the order they stopped.",
                    "items": {"$ref": "#/components/schemas/ServiceState"}}
            }}
        ]},
        "ServiceStatus": status,
        "Health": health,
        "RuntimeState": {"type": "string", "enum": ["running", "paused", "stopping"]},
        "ExitInfo": {"type": "object", "properties": {
            "code": {"type": ["integer", "null"]},
            "signal": nullable_string,
            "at": {"type": "string", "format": "date-time"}
        }},
        "ServiceState": {
            "type": "object",
            "required": ["id", "name", "status", "health", "ready", "restart_count", "changed_at", "tags"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "status": {"$ref": "#/components/schemas/ServiceStatus"},
                "health": {"$ref": "#/components/schemas/Health"},
                "ready": {"type": "boolean"},
                "pid": {"type": ["integer", "null"]},
                "last_exit": {"oneOf": [{"$ref": "#/components/schemas/ExitInfo"}, {"type": "null"}]},
                "restart_count": {"type": "integer", "description": "Automatic restarts (crash, liveness)."},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "changed_at": {"type": "string", "format": "date-time"},
                "reason": nullable_string,
                "tags": {"type": "array", "items": {"type": "string"}},
                "cpu_percent": {"type": ["number", "null"]},
                "rss_bytes": {"type": ["integer", "null"]},
                "log_file_error": {"type": ["string", "null"], "description": "Why the service's log_file cannot be written, while that lasts."},
                "kind": state_kind
            }
        },
        "ServiceList": {"type": "object", "required": ["services"], "properties": {
            "services": {"type": "array", "items": {"$ref": "#/components/schemas/ServiceState"}}}},
        "Definition": {
            "type": "object",
            "description": "A definition in the YAML schema's shape: durations as text, signals by name, env values whose name contains KEY, TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL (any case) as \"***\".",
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "command": {"type": "string"}, "argv": {"type": "array", "items": {"type": "string"}},
                "cwd": {"type": "string"},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "env_file": nullable_string,
                "required_env": {"type": "array", "items": {"type": "string"}},
                "tags": {"type": "array", "items": {"type": "string"}},
                "autostart": {"type": "boolean"},
                "restart": {"type": "string", "enum": ["permanent", "transient", "temporary"]},
                "backoff": {"type": "array", "items": {"type": "string"}},
                "max_restarts": {"type": "integer"}, "restart_window": {"type": "string"},
                "stop_signal": {"type": "string"}, "stop_timeout": {"type": "string"},
                "readiness": probe.clone(), "liveness": probe.clone(), "startup": probe,
                "log_lines": {"type": "integer"}, "log_file": nullable_string,
                "log_max_size": {"type": "integer"}, "log_max_files": {"type": "integer"},
                "source_file": nullable_string,
                "depends_on": depends_on,
                "kind": definition_kind,
                "function": function_name
            }
        },
        "ServiceDetail": {"allOf": [
            {"$ref": "#/components/schemas/ServiceState"},
            {"type": "object", "required": ["definition"], "properties": {
                "definition": {"$ref": "#/components/schemas/Definition"}}}
        ]},
        "DefinitionInput": {
            "type": "object", "required": ["id"],
            "description": "One service of services.yml as JSON, plus `id`: exactly one of `command` and `argv`; every other key as in docs/CONFIGURATION.md. Unknown keys are rejected.",
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
                "command": {"type": "string"},
                "argv": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": true
        },
        "RuntimeStatus": {"type": "object", "properties": {
            "state": {"$ref": "#/components/schemas/RuntimeState"},
            "started_at": {"type": "string", "format": "date-time"},
            "uptime_secs": {"type": "integer"},
            "version": {"type": "string"},
            "services": {"type": "integer"},
            "counts": {"type": "object", "description": "Services by status (only statuses that occur).",
                "additionalProperties": {"type": "integer"}},
            "restarts_total": {"type": "integer"},
            "last_event_seq": {"type": "integer"},
            "tracking": {"type": "object", "description": "How services' processes are tracked: what stop, kill and pause reach.",
                "properties": {
                    "mode": {"type": "string", "enum": ["cgroup", "process_group"]},
                    "cgroup": {"type": "string", "description": "cgroup mode: the runtime's subtree (one leaf per service)."},
                    "reason": {"type": "string", "description": "process_group mode: why cgroups are not used."}
                }}
        }},
        "LifecycleOutcome": {"type": "object", "properties": {
            "action": {"type": "string", "enum": ["start", "stop", "restart", "kill", "pause", "resume"]},
            "runtime": {"$ref": "#/components/schemas/RuntimeState"},
            "results": {"type": "array", "items": {"type": "object", "required": ["id", "ok"], "properties": {
                "id": {"type": "string"},
                "ok": {"type": "boolean"},
                "state": {"$ref": "#/components/schemas/ServiceState"},
                "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
            }}}
        }},
        "Readiness": {"type": "object", "required": ["ready", "runtime", "not_ready"], "properties": {
            "ready": {"type": "boolean"},
            "runtime": {"$ref": "#/components/schemas/RuntimeState"},
            "not_ready": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"},
                "status": {"$ref": "#/components/schemas/ServiceStatus"},
                "health": {"$ref": "#/components/schemas/Health"},
                "reason": {"type": "string"}
            }}}
        }},
        "LogLine": {"type": "object", "required": ["seq", "ts", "stream", "line", "truncated"], "properties": {
            "seq": {"type": "integer", "description": "Per-service, from 1, without holes."},
            "ts": {"type": "string", "format": "date-time"},
            "stream": {"type": "string", "enum": ["stdout", "stderr"]},
            "line": {"type": "string"},
            "truncated": {"type": "boolean", "description": "Cut at 16 KiB; the line ends with `…[cut N bytes]`."}
        }},
        "Logs": {"type": "object", "required": ["service", "lines"], "properties": {
            "service": {"type": "string"},
            "lines": {"type": "array", "items": {"$ref": "#/components/schemas/LogLine"}},
            "gap": {"type": "integer", "description": "With `since`: asked-for lines already gone from the ring."}
        }},
        "Event": {"type": "object", "required": ["seq", "ts", "service", "kind"], "properties": {
            "seq": {"type": "integer"},
            "ts": {"type": "string", "format": "date-time"},
            "service": {"type": "string"},
            "kind": {"type": "string", "enum": [
                "defined", "removed", "installing", "starting", "started", "ready", "health_changed",
                "exited", "backoff", "restarting", "paused", "resumed", "stopping", "stopped",
                "failed", "log_dropped", "log_file_failed", "log_file_resumed"]},
            "pid": {"type": "integer"},
            "exit_code": {"type": "integer"},
            "signal": {"type": "string"},
            "health": {"$ref": "#/components/schemas/Health"},
            "delay_ms": {"type": "integer"},
            "dropped": {"type": "integer"},
            "cause": {"type": "string"}
        }},
        "Explanation": {"type": "object", "properties": {
            "service": {"type": "string"},
            "summary": {"type": "string"},
            "state": {"$ref": "#/components/schemas/ServiceState"},
            "last_exit": {"oneOf": [{"$ref": "#/components/schemas/ExitInfo"}, {"type": "null"}]},
            "probes": {"type": "object", "properties": {
                "startup": {"type": ["object", "null"]}, "readiness": {"type": ["object", "null"]}, "liveness": {"type": ["object", "null"]}}},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "logs": {"type": "array", "items": {"$ref": "#/components/schemas/LogLine"}}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .expect("schemas object");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "dangling $ref to {name}");
        }
    }
}
