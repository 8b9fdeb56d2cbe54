//! The agent tools (`steward::tools`): schemas checked with a JSON Schema validator, the
//! examples of docs/AGENTS.md checked against them, each tool run against a real runtime
//! with real processes, and the HTTP routes `GET /api/v1/tools`, `POST /api/v1/tools/{name}`.

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use steward::Steward;
use steward::api;
use steward::tools::{ToolError, Tools, all_tools};

use crate::support::{SOON, pid_alive, process_ends, wait_for};

/// Calls a tool that must succeed.
async fn call(tools: &Tools, name: &str, input: Value) -> Value {
    match tools.call(name, input.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{name}({input}) failed: {e} {}", e.to_json()),
    }
}

fn pid_of(state: &Value) -> u32 {
    state["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid in {state}")) as u32
}

#[test]
fn every_tool_schema_is_valid_json_schema() {
    let tools = all_tools();
    assert_eq!(tools.len(), 17);
    for tool in tools {
        if let Err(e) = jsonschema::meta::validate(&tool.input_schema) {
            panic!("{}: {e}\n{}", tool.name, tool.input_schema);
        }
        assert!(
            jsonschema::validator_for(&tool.input_schema).is_ok(),
            "{}",
            tool.name
        );
        assert!(tool.description.len() > 40, "{}", tool.name);
    }
}

/// The fenced blocks of docs/AGENTS.md whose info string is `json TOOL` (a call's input)
/// or `json result` (a result).
fn doc_examples() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/AGENTS.md");
    let text = std::fs::read_to_string(&path).expect("docs/AGENTS.md");
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) if info.starts_with("json ") => {
                current = Some((info["json ".len()..].trim().to_string(), String::new()));
            }
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_example_in_agents_md_validates_against_its_schema() {
    let examples = doc_examples();
    for tool in all_tools() {
        let calls: Vec<&String> = examples
            .iter()
            .filter(|(info, _)| *info == tool.name)
            .map(|(_, body)| body)
            .collect();
        assert!(
            !calls.is_empty(),
            "docs/AGENTS.md has no example call of {}",
            tool.name
        );
        let validator = jsonschema::validator_for(&tool.input_schema).expect("schema");
        for body in calls {
            let input: Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}\n{body}", tool.name));
            if let Err(e) = validator.validate(&input) {
                panic!(
                    "{}: example does not match the schema: {e}\n{body}",
                    tool.name
                );
            }
        }
    }
    for (info, body) in &examples {
        let known = info == "result" || all_tools().iter().any(|t| t.name == *info);
        assert!(known, "a `json {info}` block names no tool");
        serde_json::from_str::<Value>(body)
            .unwrap_or_else(|e| panic!("`json {info}` block is not JSON: {e}\n{body}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn define_start_stop_and_remove_run_real_processes() {
    let steward = Steward::spawn().await.expect("runtime");
    let tools = Tools::new(steward.clone());
    let defined = call(
        &tools,
        "service_define",
        json!({"id": "tl-web", "definition": {"command": "sleep 300", "autostart": false, "stop_timeout": "5s"}}),
    )
    .await;
    assert_eq!(defined["status"], "pending");
    let started = call(&tools, "service_start", json!({"id": "tl-web"})).await;
    assert_eq!(started["status"], "running");
    let pid = pid_of(&started);
    assert!(pid_alive(pid), "pid {pid} is not in /proc");
    let listed = call(&tools, "service_list", json!({})).await;
    assert_eq!(listed["services"][0]["id"], "tl-web");

    let paused = call(&tools, "service_pause", json!({"id": "tl-web"})).await;
    assert_eq!(paused["status"], "paused");
    let resumed = call(&tools, "service_resume", json!({"id": "tl-web"})).await;
    assert_eq!(resumed["status"], "running");

    // A running service is not removed without `stop: true`.
    let refused = tools
        .call("service_remove", json!({"id": "tl-web"}))
        .await
        .expect_err("running");
    assert_eq!(refused.code(), "conflict", "{}", refused.to_json());
    let stopped = call(&tools, "service_stop", json!({"id": "tl-web"})).await;
    assert_eq!(stopped["status"], "stopped");
    process_ends("the process to be gone", pid).await;

    let restarted = call(&tools, "service_restart", json!({"id": "tl-web"})).await;
    let second = pid_of(&restarted);
    assert!(pid_alive(second));
    let killed = call(&tools, "service_kill", json!({"id": "tl-web"})).await;
    assert_eq!(killed["status"], "stopped");
    process_ends("the killed process to be gone", second).await;
    let removed = call(
        &tools,
        "service_remove",
        json!({"id": "tl-web", "stop": true}),
    )
    .await;
    assert_eq!(removed["removed"], "tl-web");
    let gone = tools
        .call("service_status", json!({"id": "tl-web"}))
        .await
        .expect_err("removed");
    assert_eq!(gone.code(), "not_found");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_search_finds_a_printed_line_with_its_context_and_secrets_are_masked() {
    let steward = Steward::spawn().await.expect("runtime");
    let tools = Tools::new(steward.clone());
    call(
        &tools,
        "service_define",
        json!({"id": "tl-talk", "definition": {
            "command": "echo before; echo NEEDLE-4711 found; echo key=$API_KEY; echo after; sleep 300",
            "env": {"API_KEY": "hunter2-very-secret", "PORT": "8080"}
        }}),
    )
    .await;
    let found = wait_for("the line in the ring", SOON, || {
        let tools = tools.clone();
        async move {
            let found = call(
                &tools,
                "logs_search",
                json!({"pattern": "needle-47", "context": 1}),
            )
            .await;
            let after = found["matches"][0]["after"][0]["line"]
                .as_str()
                .map(str::to_string);
            (after.is_some_and(|a| a.starts_with("key="))).then_some(found)
        }
    })
    .await;
    let hit = &found["matches"][0];
    assert_eq!(hit["service"], "tl-talk");
    assert_eq!(hit["line"]["line"], "NEEDLE-4711 found");
    assert_eq!(hit["before"][0]["line"], "before");
    assert_eq!(found["truncated"], false);
    // The secret the service printed is masked in every result.
    assert_eq!(hit["after"][0]["line"], "key=***");
    let logs = call(&tools, "service_logs", json!({"id": "tl-talk"})).await;
    let text = logs.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("key=***"), "{text}");
    let status = call(&tools, "service_status", json!({"id": "tl-talk"})).await;
    assert_eq!(status["definition"]["env"]["API_KEY"], "***");
    assert_eq!(status["definition"]["env"]["PORT"], "8080");
    // A regular expression, case-sensitive: no match in another case.
    let none = call(
        &tools,
        "logs_search",
        json!({"id": "tl-talk", "pattern": "needle-\\d+", "regex": true, "case_sensitive": true}),
    )
    .await;
    assert_eq!(none["matches"].as_array().map(Vec::len), Some(0));
    let bad = tools
        .call("logs_search", json!({"pattern": "(", "regex": true}))
        .await
        .expect_err("bad regex");
    assert_eq!(bad.code(), "invalid_input");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_events_status_and_graph_describe_the_runtime() {
    let steward = Steward::spawn().await.expect("runtime");
    let tools = Tools::new(steward.clone());
    call(
        &tools,
        "service_define",
        json!({"id": "tl-db", "definition": {"command": "sleep 300"}}),
    )
    .await;
    call(
        &tools,
        "service_define",
        json!({"id": "tl-app", "definition": {"command": "sleep 300", "depends_on": {"tl-db": {"condition": "started"}}}}),
    )
    .await;
    let explained = call(&tools, "service_explain", json!({"id": "tl-app"})).await;
    assert!(
        explained["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("tl-app is running")),
        "{explained}"
    );
    let events = call(&tools, "service_events", json!({"service": "tl-db"})).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"started"), "{kinds:?}");
    let last = events["last_seq"].as_u64().expect("last_seq");
    call(&tools, "service_restart", json!({"id": "tl-db"})).await;
    let newer = call(&tools, "service_events", json!({"since": last})).await;
    assert!(
        newer["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["seq"].as_u64().is_some_and(|s| s > last)),
        "{newer}"
    );
    assert!(newer["events"].as_array().is_some_and(|e| !e.is_empty()));
    let status = call(&tools, "runtime_status", json!({})).await;
    assert_eq!(status["services"], 2);
    let graph = call(&tools, "dependency_graph", json!({})).await;
    assert_eq!(graph["start_order"], json!([["tl-db"], ["tl-app"]]));
    let db = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == "tl-db")
        .expect("db node")
        .clone();
    assert_eq!(db["dependents"], json!(["tl-app"]));
    assert_eq!(db["status"], "running");
    // A stop of a service others need is refused; with cascade the dependent goes first.
    let stopped = call(
        &tools,
        "service_stop",
        json!({"id": "tl-db", "cascade": true}),
    )
    .await;
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["also_stopped"][0]["id"], "tl-app");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_and_definitions_name_the_json_path_and_a_hint() {
    let steward = Steward::spawn().await.expect("runtime");
    let tools = Tools::new(steward.clone());
    let missing = tools
        .call("service_start", json!({}))
        .await
        .expect_err("no id");
    assert_eq!(missing.code(), "invalid_input");
    assert!(
        missing.to_string().contains("missing field `id`"),
        "{missing}"
    );
    let unknown_field = tools
        .call("service_start", json!({"id": "x", "force": true}))
        .await
        .expect_err("unknown field");
    assert!(
        unknown_field.to_string().contains("force"),
        "{unknown_field}"
    );
    let not_object = tools
        .call("runtime_status", json!([1]))
        .await
        .expect_err("array");
    assert_eq!(not_object.code(), "invalid_input");
    let no_tool = tools.call("rm_rf", json!({})).await.expect_err("unknown");
    assert!(matches!(no_tool, ToolError::UnknownTool(_)));
    let looking = tools.clone().read_only(true);
    assert!(
        looking
            .definitions()
            .iter()
            .all(|t| t.annotations.read_only)
    );
    let refused = looking
        .call(
            "service_define",
            json!({"id": "tl-ro", "definition": {"command": "sleep 1"}}),
        )
        .await
        .expect_err("read-only");
    assert_eq!(refused.code(), "forbidden");
    call(&looking, "runtime_status", json!({})).await;

    let bad = tools
        .call(
            "service_define",
            json!({"id": "tl-bad", "definition": {"command": "sleep 1", "autostart": true, "restart": "sometimes"}}),
        )
        .await
        .expect_err("bad restart");
    let json = bad.to_json();
    assert_eq!(json["error"]["code"], "invalid_input", "{json}");
    assert_eq!(
        json["error"]["details"][0]["path"], "$.definition.restart",
        "{json}"
    );
    let typo = tools
        .call(
            "service_define",
            json!({"id": "tl-bad", "definition": {"comand": "sleep 1"}}),
        )
        .await
        .expect_err("typo");
    let json = typo.to_json();
    assert_eq!(
        json["error"]["details"][0]["path"], "$.definition.comand",
        "{json}"
    );
    assert!(
        json["error"]["details"][0]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("command")),
        "{json}"
    );
    assert!(steward.list().await.expect("list").is_empty());
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_is_a_dry_run_unless_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |command: &str| {
        std::fs::write(
            dir.path().join("services.yml"),
            format!(
                "version: 1\nservices:\n  tl-r:\n    command: {command}\n    stop_timeout: 5s\n"
            ),
        )
        .expect("write services.yml")
    };
    write("sleep 300");
    let config = steward::config::load_dir(dir.path()).expect("config");
    let steward = Steward::boot(config).await.expect("boot");
    let tools = Tools::new(steward.clone());
    let before = pid_of(&call(&tools, "service_status", json!({"id": "tl-r"})).await);
    write("sleep 301");
    let plan = call(&tools, "reload", json!({})).await;
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["plan"]["entries"][0]["action"], "restart", "{plan}");
    let same = pid_of(&call(&tools, "service_status", json!({"id": "tl-r"})).await);
    assert_eq!(same, before, "a dry run changed the process");
    assert!(pid_alive(before));
    let applied = call(&tools, "reload", json!({"apply": true})).await;
    assert_eq!(applied["applied"], true);
    let after = wait_for("the restarted process", SOON, || {
        let tools = tools.clone();
        async move {
            let state = call(&tools, "service_status", json!({"id": "tl-r"})).await;
            state["pid"].as_u64().filter(|p| *p as u32 != before)
        }
    })
    .await;
    assert!(pid_alive(after as u32));
    steward.shutdown().await.expect("shutdown");
}

async fn http(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_string()))
        .expect("request");
    crate::support::request_json(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_routes_list_and_call_the_tools() {
    let steward = Steward::spawn().await.expect("runtime");
    let app = api::router(steward.clone(), None);
    let (status, list) = http(&app, "GET", "/api/v1/tools", "").await;
    assert_eq!(status, StatusCode::OK);
    let tools = list["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 17);
    let start = tools
        .iter()
        .find(|t| t["name"] == "service_start")
        .expect("service_start");
    assert_eq!(start["input_schema"]["required"], json!(["id"]));
    assert_eq!(start["annotations"]["read_only"], false);

    let (status, body) = http(
        &app,
        "POST",
        "/api/v1/tools/service_define",
        r#"{"id": "th-web", "definition": {"command": "sleep 300"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(pid_alive(pid_of(&body)));
    let (status, body) = http(&app, "POST", "/api/v1/tools/runtime_status", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["services"], 1);
    let (status, body) = http(&app, "POST", "/api/v1/tools/service_start", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`id`"))
    );
    let (status, body) = http(&app, "POST", "/api/v1/tools/service_start", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = http(&app, "POST", "/api/v1/tools/no_such_tool", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = http(
        &app,
        "POST",
        "/api/v1/tools/service_status",
        r#"{"id": "nope"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    steward.shutdown().await.expect("shutdown");
}
