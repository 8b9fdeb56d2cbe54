//! `limits: { memory, cpu, pids }` (DESIGN §2, §11; issue 13 item 5).
//!
//! The config side everywhere: values load, save and load back, show in JSON, and bad ones
//! are refused with file:line:col. The runtime side depends on the machine: where steward's
//! cgroup subtree has the `memory` and `pids` controllers, the limits are written to the
//! service's cgroup, a fork bomb under `pids: 32` is contained and an allocation past
//! `memory` ends as an OOM kill with that cause; where it has not (this build machine: a
//! controller-less v2 hierarchy beside v1 controllers), those tests print why and return,
//! and the "limits not enforced: <why>" state, boot log line and `validate --strict`
//! failure are tested instead — in cgroup mode without the controllers and with cgroups
//! switched off (`settings.cgroups: false`, `STEWARD_CGROUPS=off`).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use steward::config::{CommandSpec, Limits, ServiceDefinition};
use steward::events::EventKind;
use steward::process::cgroup::TrackingMode;
use steward::{ServiceStatus, Steward};

use crate::cli::{Daemon, config_dir};
use crate::support::{SOON, event_of, service, status_becomes, wait_for};

/// A service's limits as most tests set them.
fn some_limits() -> Limits {
    Limits {
        memory: Some(512 << 20),
        cpu_millicores: Some(1500),
        pids: Some(256),
    }
}

/// `steward validate --config DIR EXTRA…` with `env`.
fn validate(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = assert_cmd::Command::cargo_bin("steward").expect("the steward binary");
    command
        .env_remove("STEWARD_CGROUPS")
        .args(["validate", "--config"])
        .arg(dir)
        .args(extra)
        .timeout(Duration::from_secs(60));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run steward validate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn limits_load_save_and_load_back_in_every_form() {
    let dir = config_dir(
        "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits:\n      memory: 512MiB\n      cpu: 1.5\n      pids: 256\n  worker:\n    command: sleep 100\n    limits: { cpu: 25%, memory: 1GiB }\n  plain:\n    command: sleep 100\n",
    );
    let config = steward::config::load_dir(dir.path()).expect("loads");
    assert_eq!(config.services[0].limits, some_limits());
    assert_eq!(
        config.services[1].limits,
        Limits {
            memory: Some(1 << 30),
            cpu_millicores: Some(250),
            pids: None,
        }
    );
    assert!(config.services[2].limits.is_empty());

    // Saved and loaded back identical; the YAML says it as it was written.
    let out = tempfile::tempdir().expect("tempdir");
    for def in &config.services {
        let yaml = steward::config::service_to_yaml(def);
        match def.id.as_str() {
            "api" => assert!(
                yaml.contains("limits: { memory: 512MiB, cpu: 1.5, pids: 256 }"),
                "{yaml}"
            ),
            "worker" => assert!(
                yaml.contains("limits: { memory: 1GiB, cpu: 0.25 }"),
                "{yaml}"
            ),
            _ => assert!(!yaml.contains("limits"), "{yaml}"),
        }
        steward::config::save_service(def, out.path()).expect("saved");
    }
    std::fs::write(out.path().join("services.yml"), "version: 1\n").expect("write");
    let back = steward::config::load_dir(out.path()).expect("loads back");
    for def in &config.services {
        let again = back
            .services
            .iter()
            .find(|d| d.id == def.id)
            .expect("saved");
        assert_eq!(again.limits, def.limits, "{}", def.id);
    }

    // JSON definitions (the API's) use the same schema, numbers included.
    let json = serde_json::json!({
        "command": "sleep 1",
        "limits": {"memory": "64MiB", "cpu": 0.5, "pids": 32}
    });
    let def = steward::config::definition_from_json("j", &json, Path::new("/srv")).expect("json");
    assert_eq!(
        def.limits,
        Limits {
            memory: Some(64 << 20),
            cpu_millicores: Some(500),
            pids: Some(32),
        }
    );
    assert!(def.limits.controllers() == ["memory", "cpu", "pids"]);
}

#[test]
fn bad_limits_are_refused_naming_the_place() {
    let dir = config_dir(
        "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits:\n      memory: lots\n      cpu: fast\n      pids: 0\n  small:\n    command: sleep 100\n    limits: { memory: 512, cpu: \"0.001\" }\n  daemon:\n    command: sleep 100\n    detached: true\n    stop_command: \"true\"\n    limits: { pids: 10 }\n",
    );
    let error = steward::config::load_dir(dir.path())
        .expect_err("refused")
        .to_string();
    for (place, words) in [
        (
            "services.yml:6:15",
            "invalid `limits.memory` in service `api`: `lots` is not a size",
        ),
        (
            "services.yml:7:12",
            "invalid `limits.cpu` in service `api`: `fast` is not a number of cores",
        ),
        (
            "services.yml:8:13",
            "invalid `limits.pids` in service `api`: 0 is out of range",
        ),
        (
            "services.yml:11:23",
            "invalid `limits.memory` in service `small`: 512 bytes is less than 1MiB",
        ),
        (
            "services.yml:11:33",
            "invalid `limits.cpu` in service `small`: `0.001` is less than 0.01 core",
        ),
        (
            "services.yml:16:13",
            "invalid `limits` in service `daemon`: a detached service's daemon runs outside steward's cgroups",
        ),
    ] {
        let line = error
            .lines()
            .find(|l| l.contains(words))
            .unwrap_or_else(|| panic!("no `{words}` in:\n{error}"));
        assert!(line.contains(place), "{place} not in {line}");
    }

    // An unknown key gets the nearest one.
    let dir = config_dir(
        "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits:\n      memroy: 1GiB\n",
    );
    let error = steward::config::load_dir(dir.path())
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("services.yml:6:7")
            && error.contains("unknown key `memroy` in the `limits` of service `api`")
            && error.contains("did you mean `memory`?"),
        "{error}"
    );
}

#[tokio::test]
async fn limits_of_a_function_service_or_out_of_range_are_refused_at_define() {
    let steward = Steward::spawn_with_cgroups(None, None, false)
        .await
        .expect("runtime");
    let function = steward::FunctionService::new("quiet", |_ctx: steward::ServiceContext| async {
        Ok::<(), std::io::Error>(())
    });
    let mut def = ServiceDefinition::function("fn", function);
    def.limits.pids = Some(8);
    let error = steward.define(def).await.expect_err("refused").to_string();
    assert!(
        error.contains("invalid `limits` in service `fn`: a function service runs no process"),
        "{error}"
    );
    let mut def = service("big", "sleep 100");
    def.limits.pids = Some(0);
    def.limits.cpu_millicores = Some(5);
    let error = steward.define(def).await.expect_err("refused").to_string();
    assert!(error.contains("invalid `limits.pids`"), "{error}");
    assert!(error.contains("invalid `limits.cpu_millicores`"), "{error}");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn with_cgroups_off_a_service_with_limits_runs_and_its_state_says_why() {
    let steward = Steward::spawn_with_cgroups(None, None, false)
        .await
        .expect("runtime");
    let mut limited = service("limited", "sleep 100");
    limited.limits = some_limits();
    steward.define(limited).await.expect("defined");
    steward
        .define(service("plain", "sleep 100"))
        .await
        .expect("defined");
    for id in ["limited", "plain"] {
        steward.start(id).await.expect("started");
    }
    let state = status_becomes(&steward, "limited", ServiceStatus::Running).await;
    assert_eq!(
        state.limits_not_enforced.as_deref(),
        Some("cgroups are off (settings.cgroups: false)")
    );
    let plain = status_becomes(&steward, "plain", ServiceStatus::Running).await;
    assert_eq!(plain.limits_not_enforced, None, "no limits, nothing to say");
    // In the wire format too.
    let json = serde_json::to_value(&state).expect("json");
    assert_eq!(
        json["limits_not_enforced"],
        "cgroups are off (settings.cgroups: false)"
    );
    assert!(
        serde_json::to_value(&plain)
            .expect("json")
            .get("limits_not_enforced")
            .is_none()
    );
    steward.shutdown().await.expect("shutdown");
}

/// `own`'s `cgroup.controllers` in words, as the reason quotes it.
fn controllers_of(own: &Path) -> String {
    let text = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
    let names: Vec<&str> = text.split_whitespace().collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    }
}

/// A runtime in cgroup mode, with its subtree, or `None` with the reason printed.
async fn cgroup_runtime() -> Option<(Steward, PathBuf)> {
    let steward = Steward::spawn_with_cgroups(None, None, true)
        .await
        .expect("runtime");
    let status = steward.status().await.expect("status").tracking;
    match (status.mode, status.cgroup) {
        (TrackingMode::Cgroup, Some(path)) => Some((steward, PathBuf::from(path))),
        _ => {
            eprintln!(
                "skipped: no cgroup mode here ({})",
                status.reason.unwrap_or_default()
            );
            steward.shutdown().await.expect("shutdown");
            None
        }
    }
}

#[tokio::test]
async fn in_cgroup_mode_limits_are_written_or_the_missing_controllers_are_named() {
    let Some((steward, subtree)) = cgroup_runtime().await else {
        return;
    };
    let own = subtree.parent().expect("below own").to_path_buf();
    let mut limited = service("limited", "sleep 100");
    limited.limits = Limits {
        memory: Some(64 << 20),
        cpu_millicores: None,
        pids: Some(32),
    };
    steward.define(limited).await.expect("defined");
    steward.start("limited").await.expect("started");
    let state = status_becomes(&steward, "limited", ServiceStatus::Running).await;
    let leaf = subtree.join("limited");
    let controllers = steward
        .tables()
        .tracking
        .controllers()
        .expect("cgroup mode")
        .clone();
    let own_has = controllers_of(&own);
    let shown = own.display().to_string();
    let shown = shown.trim_end_matches('/');
    match (controllers.has("memory"), controllers.has("pids")) {
        (true, true) => {
            assert_eq!(state.limits_not_enforced, None);
            let read = |file: &str| std::fs::read_to_string(leaf.join(file)).expect(file);
            assert_eq!(read("memory.max").trim(), (64u64 << 20).to_string());
            assert_eq!(read("pids.max").trim(), "32");
        }
        (false, false) if !own_has.split(' ').any(|c| c == "memory" || c == "pids") => {
            // This build machine: the v2 hierarchy has neither controller.
            assert_eq!(
                state.limits_not_enforced.as_deref(),
                Some(
                    format!(
                        "the memory and pids controllers are not available in {shown} (controllers: {own_has})"
                    )
                    .as_str()
                )
            );
            assert!(!leaf.join("memory.max").exists());
            assert!(!leaf.join("pids.max").exists());
        }
        _ => {
            let why = state.limits_not_enforced.expect("some are missing");
            assert!(
                why.starts_with("the ") && why.contains("controller"),
                "{why}"
            );
        }
    }
    // Nothing was enabled or moved outside steward's own subtree.
    assert!(!own.join("steward.main").exists() || controllers.has("memory"));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_boot_log_and_the_state_say_limits_are_not_enforced_with_cgroups_off() {
    let yaml = "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits: { memory: 512MiB }\n  worker:\n    command: sleep 100\n    limits: { pids: 64 }\n  plain:\n    command: sleep 100\n";
    for (settings, env, why) in [
        (
            "settings:\n  cgroups: false\n",
            None,
            "cgroups are off (settings.cgroups: false)",
        ),
        (
            "",
            Some(("STEWARD_CGROUPS", "off")),
            "cgroups are off (STEWARD_CGROUPS=off)",
        ),
    ] {
        let dir = config_dir(&yaml.replacen("services:\n", &format!("{settings}services:\n"), 1));
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let mut daemon = Daemon::spawn(dir.path(), &[], &env);
        let line = daemon.wait_log("the limits warning", SOON, |l| {
            l.contains("limits not enforced")
        });
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains(&format!("limits not enforced: {why}")),
            "{line}"
        );
        assert!(line.contains("api, worker"), "both services named: {line}");
        assert!(!line.contains("plain"), "{line}");
        daemon.wait_live().await;
        daemon.wait_running(&["api", "worker", "plain"]).await;
        let api = daemon.state("api").await.expect("api");
        assert_eq!(api.limits_not_enforced.as_deref(), Some(why));
        let plain = daemon.state("plain").await.expect("plain");
        assert_eq!(plain.limits_not_enforced, None);
        if env.is_empty() {
            shown_by_the_api_and_the_cli(&daemon, why).await;
        }
        daemon.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(daemon.exit(Duration::from_secs(30)).await.success());
    }
}

/// The definition's `limits` and the state's reason in `GET /api/v1/services/api`, the
/// explain route's summary, and `steward status` / `steward explain`.
async fn shown_by_the_api_and_the_cli(daemon: &Daemon, why: &str) {
    let detail: serde_json::Value = reqwest::get(format!("{}/api/v1/services/api", daemon.url))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        detail["definition"]["limits"],
        serde_json::json!({"memory": "512MiB"}),
        "{detail}"
    );
    let explain: serde_json::Value =
        reqwest::get(format!("{}/api/v1/services/api/explain", daemon.url))
            .await
            .expect("explain")
            .json()
            .await
            .expect("json");
    let summary = explain["summary"].as_str().unwrap_or_default();
    assert!(
        summary.ends_with(&format!(
            "Its limits are not enforced ({why}): it runs without them."
        )),
        "{summary}"
    );
    let cli = |args: &[&str]| {
        let output = assert_cmd::Command::cargo_bin("steward")
            .expect("the steward binary")
            .env_remove("STEWARD_TOKEN")
            .args(["--url", daemon.url.as_str()])
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run steward");
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let status = cli(&["status"]);
    assert!(
        status.contains(&format!("\napi: limits not enforced: {why}\n")),
        "{status}"
    );
    assert!(
        status.contains(&format!("worker: limits not enforced: {why}")),
        "{status}"
    );
    assert!(!status.contains("plain: limits"), "{status}");
    let explained = cli(&["explain", "api"]);
    assert!(
        explained.contains(&format!("\nlimits not enforced: {why}\n")),
        "{explained}"
    );
}

#[test]
fn validate_strict_fails_on_limits_that_cannot_be_enforced() {
    let dir = config_dir(
        "version: 1\nsettings:\n  cgroups: false\nservices:\n  api:\n    command: sleep 100\n    limits: { memory: 512MiB }\n  plain:\n    command: sleep 100\n",
    );
    let expected = "limits not enforced: cgroups are off (settings.cgroups: false) (services: api)";
    // Without --strict: a warning, and success.
    let output = validate(dir.path(), &[], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains(&format!("warning: {expected}")),
        "{}",
        text(&output.stdout)
    );
    // With --strict: the same words make it fail.
    let output = validate(dir.path(), &["--strict"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains(&format!("steward: error (--strict): {expected}")),
        "{}",
        text(&output.stderr)
    );
    // JSON carries the warnings.
    let output = validate(dir.path(), &["--strict", "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(body["warnings"], serde_json::json!([expected]));

    // STEWARD_CGROUPS=off says so.
    let on = config_dir(
        "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits: { pids: 10 }\n",
    );
    let output = validate(on.path(), &["--strict"], &[("STEWARD_CGROUPS", "off")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("limits not enforced: cgroups are off (STEWARD_CGROUPS=off) (services: api)"),
        "{}",
        text(&output.stderr)
    );
    // A config without limits passes --strict.
    let none = config_dir("version: 1\nservices:\n  plain:\n    command: sleep 100\n");
    let output = validate(none.path(), &["--strict"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn validate_strict_in_cgroup_mode_agrees_with_the_machine() {
    let dir = config_dir(
        "version: 1\nservices:\n  api:\n    command: sleep 100\n    limits: { memory: 512MiB, pids: 32 }\n",
    );
    let outlook = steward::process::cgroup::ProcessTracking::limits_outlook(true);
    let output = validate(dir.path(), &["--strict"], &[]);
    let why = match &outlook {
        Ok(controllers) => controllers.why_not(&Limits {
            memory: Some(1 << 29),
            cpu_millicores: None,
            pids: Some(32),
        }),
        Err(why) => Some(why.clone()),
    };
    match why {
        None => assert!(output.status.success(), "{}", text(&output.stderr)),
        Some(why) => {
            assert_eq!(output.status.code(), Some(1));
            assert!(
                text(&output.stderr)
                    .contains(&format!("limits not enforced: {why} (services: api)")),
                "{}",
                text(&output.stderr)
            );
            eprintln!("this machine: limits not enforced: {why}");
        }
    }
}

/// The reason the controller tests cannot run here, or `None` when they can.
fn missing(steward: &Steward, limits: &Limits) -> Option<String> {
    steward.tables().tracking.limits_not_enforced(limits)
}

#[tokio::test]
async fn a_fork_bomb_under_pids_32_is_contained() {
    let Some((steward, subtree)) = cgroup_runtime().await else {
        return;
    };
    let limits = Limits {
        pids: Some(32),
        ..Limits::default()
    };
    if let Some(why) = missing(&steward, &limits) {
        eprintln!("skipped: limits not enforced: {why}");
        steward.shutdown().await.expect("shutdown");
        return;
    }
    // Far more processes than allowed, each a fork of the shell.
    let mut bomb = service(
        "bomb",
        "sh -c 'i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000'",
    );
    bomb.limits = limits;
    steward.define(bomb).await.expect("defined");
    steward.start("bomb").await.expect("started");
    status_becomes(&steward, "bomb", ServiceStatus::Running).await;
    let leaf = subtree.join("bomb");
    // The kernel counts each fork it refused in pids.events (`max N`).
    wait_for("a fork refused by pids.max", SOON, || {
        let refused = std::fs::read_to_string(leaf.join("pids.events"))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("max ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
            })
            .unwrap_or(0);
        async move { (refused > 0).then_some(()) }
    })
    .await;
    let current: u64 = std::fs::read_to_string(leaf.join("pids.current"))
        .expect("pids.current")
        .trim()
        .parse()
        .expect("a number");
    assert!(current <= 32, "{current} tasks under pids: 32");
    steward.kill("bomb").await.expect("killed");
    status_becomes(&steward, "bomb", ServiceStatus::Stopped).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_allocation_past_memory_ends_as_an_oom_kill_with_that_cause() {
    let Some((steward, _subtree)) = cgroup_runtime().await else {
        return;
    };
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    if let Some(why) = missing(&steward, &limits) {
        eprintln!("skipped: limits not enforced: {why}");
        steward.shutdown().await.expect("shutdown");
        return;
    }
    let mut events = steward.subscribe_events(None).await.expect("events");
    // 256 MiB written (not just reserved), four times the limit.
    let mut hog = ServiceDefinition::new(
        "hog",
        CommandSpec::Argv(vec![
            "python3".into(),
            "-c".into(),
            "import time\nb = b'x' * (256 << 20)\ntime.sleep(1000)".into(),
        ]),
    );
    hog.restart = steward::config::RestartPolicy::Temporary;
    hog.limits = limits;
    steward.define(hog).await.expect("defined");
    steward.start("hog").await.expect("started");
    let exited = event_of(&mut events, "hog", EventKind::Exited).await;
    assert_eq!(exited.signal.as_deref(), Some("SIGKILL"));
    let cause = exited.cause.unwrap_or_default();
    assert!(
        cause.starts_with("killed by the kernel: out of memory, limit 64MiB"),
        "{cause}"
    );
    let state = status_becomes(&steward, "hog", ServiceStatus::Exited).await;
    assert!(
        state
            .reason
            .is_some_and(|r| r.starts_with("killed by the kernel: out of memory")),
    );
    steward.shutdown().await.expect("shutdown");
}
