//! steward's integration tests: one binary, one module per area. Every test runs real
//! processes on this machine and waits for events with deadlines, never bare sleeps.

/// The HTTP API: shapes through the router, SSE and full flows against a real server.
mod api;
/// Nothing escapes: cgroup per service vs process group + subreaper, escaped grandchildren.
mod cgroup;
/// The `steward` binary end to end: validate, up, shutdown, and every client command.
mod cli;
/// gzip of the list and `/metrics` for clients that ask; plain bytes for those that do not.
mod compression;
/// Loading and validating YAML definitions; error messages (snapshots).
mod config;
/// `depends_on`: start order by condition, stop order, cascade, failures, validation.
mod dependencies;
/// Detached services (a stand-in for `docker compose up -d`): launch, probes, restart,
/// stop_command, adoption after a killed steward.
mod detached;
/// Function services: the app's own async functions in the tree, with processes around them.
mod function;
/// The fuzz targets' corpora and crashers replayed through their checks (stable Rust).
mod fuzz_corpus;
/// Probes and the HealthChecker against real HTTP/TCP servers and commands.
mod health;
/// `install` and `source`: clone, install once per definition, failures, stop while installing.
mod install;
/// Service lifecycle through the public API: start, stop, crash, restart policies, backoff.
mod lifecycle;
/// `limits` (memory, cpu, pids): loaded, saved, refused with the place; applied where the
/// cgroup controllers are, else "limits not enforced: <why>" in state, boot log, validate.
mod limits;
/// A service's log file in a running runtime: failures reported once, a full disk,
/// resuming, a flood kept whole through a shutdown.
mod log_file;
/// The LogBuffer and the log file sink.
mod logs;
/// MCP with a real client over Streamable HTTP (`/mcp`) and stdio (`steward mcp`); the
/// token, Host and Origin checks.
mod mcp;
/// service → steward over systemd's notify protocol: READY=1, STATUS=, STOPPING=1,
/// RELOADING=1, the watchdog, the sender check; the keys' errors.
mod notify;
/// Spawning, process groups, pipes, signals, pdeathsig.
mod process;
/// Production: PID 1 and subreaper (PID namespaces), exit_with, the notify protocol.
mod production;
/// Crash recovery: pid files, leftover process groups of a killed steward, adoption.
mod recovery;
/// Reload (difference applied, dry run, broken config) and save.
mod reload;
/// Many services: a boot defined in slices, requests answered in between, order kept.
mod scale;
/// The actor tree: one-for-all restarts, intensity, panic injection.
mod supervision;
/// Shared helpers: deadlines (`SOON`, `wait_for`), waits on a service (`running_pid`,
/// `logged`, `status_becomes`), /proc readers, the event history, host processes, ports.
mod support;
/// The agent tools: schemas, docs/AGENTS.md examples, each tool on real processes, HTTP.
mod tools;
