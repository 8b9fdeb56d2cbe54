//! Loading and validating YAML definitions (`steward::config`): the example `config/`
//! folder, defaults, path resolution, file order, and the message of every kind of bad
//! input (insta snapshots in `tests/it/snapshots/`, with the temp folder shown as `<dir>`).
//!
//! Length (over 600 lines): 52 short tests, most of them one YAML input and its message
//! snapshot; one file for the one `config` loader they test.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use proptest::prelude::*;
use steward::config::{
    CommandSpec, Config, Dependency, DependencyCondition, FunctionProbe, ProbeCheck, ProbeSpec,
    RestartPolicy, ServiceDefinition, SourceSpec, check_definition, check_dependencies, load_dir,
    save_service, service_to_yaml,
};
use steward::error::ConfigErrors;

/// A temp config folder holding `files` (path relative to the folder, contents).
fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    dir
}

fn load_ok(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let dir = config_dir(files);
    match load_dir(dir.path()) {
        Ok(config) => (dir, config),
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

/// The errors of a config that must not load, one per line, with the temp folder as `<dir>`.
fn load_err(files: &[(&str, &str)]) -> String {
    let dir = config_dir(files);
    match load_dir(dir.path()) {
        Ok(config) => panic!("expected errors, got {} services", config.services.len()),
        Err(errors) => render(&errors, dir.path()),
    }
}

fn render(errors: &ConfigErrors, dir: &Path) -> String {
    errors
        .0
        .iter()
        .map(|e| {
            e.to_string()
                .replace(&format!("{}/", dir.display()), "<dir>/")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn service<'a>(config: &'a Config, id: &str) -> &'a ServiceDefinition {
    config
        .services
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no service {id}"))
}

const HEADER: &str = "version: 1\nservices:\n";

/// `services.yml` with `body` under `services:`.
fn services_yml(body: &str) -> String {
    format!("{HEADER}{body}")
}

// ---------------------------------------------------------------- the example config

#[test]
fn the_example_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = load_dir(&dir).unwrap_or_else(|e| panic!("config/ must load:\n{e}"));
    for def in &config.services {
        check_definition(def).unwrap_or_else(|e| panic!("{}: {e}", def.id));
    }
    let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["web", "worker", "hello"]);
    assert_eq!(config.settings.listen, "127.0.0.1:7070");

    let web = service(&config, "web");
    assert_eq!(
        web.command,
        CommandSpec::Line("python3 -m http.server 8181 --bind 127.0.0.1".into())
    );
    let readiness = web.readiness.as_ref().expect("web has a readiness probe");
    assert_eq!(
        readiness.check,
        ProbeCheck::Http {
            url: "http://127.0.0.1:8181/".into(),
            expect_status: 200
        }
    );
    let liveness = web.liveness.as_ref().expect("web has a liveness probe");
    assert_eq!(
        liveness.check,
        ProbeCheck::Tcp {
            address: "127.0.0.1:8181".into()
        }
    );
    assert!(web.tags.contains(&"frontend".to_string()));

    let worker = service(&config, "worker");
    assert!(matches!(&worker.command, CommandSpec::Argv(argv) if argv[0] == "sh"));
    assert!(!worker.tags.is_empty());
    assert_eq!(
        worker.depends_on,
        [Dependency {
            service: "web".into(),
            condition: DependencyCondition::Healthy
        }]
    );
    let all: Vec<&ServiceDefinition> = config.services.iter().collect();
    check_dependencies(&all).unwrap_or_else(|e| panic!("{e}"));

    let hello = service(&config, "hello");
    assert_eq!(hello.restart, RestartPolicy::Temporary);
    assert_eq!(
        hello.source_file.as_deref(),
        Some(dir.join("services.d/jobs.yml").as_path())
    );
    assert_eq!(hello.cwd, dir.join("services.d"));
}

// ---------------------------------------------------------------- defaults and values

#[test]
fn defaults_match_the_design() {
    let (dir, config) = load_ok(&[(
        "services.yml",
        &services_yml("  app:\n    command: ./run\n    readiness:\n      tcp: 127.0.0.1:1\n"),
    )]);
    let app = service(&config, "app");
    assert_eq!(app.name, "app");
    assert!(app.autostart);
    assert_eq!(app.restart, RestartPolicy::Permanent);
    let secs = Duration::from_secs;
    assert_eq!(app.backoff, [secs(1), secs(2), secs(5), secs(10), secs(30)]);
    assert_eq!(app.max_restarts, 10);
    assert_eq!(app.restart_window, secs(300));
    assert_eq!(app.stop_signal, Signal::SIGTERM);
    assert_eq!(app.stop_timeout, secs(10));
    assert_eq!(app.log_lines, 1000);
    assert_eq!(app.log_max_size, 10 * 1024 * 1024);
    assert_eq!(app.log_max_files, 5);
    assert_eq!(app.log_file, None);
    assert_eq!(app.env_file, None);
    assert!(app.env.is_empty() && app.required_env.is_empty() && app.tags.is_empty());
    assert_eq!(app.cwd, dir.path());
    assert_eq!(
        app.source_file.as_deref(),
        Some(dir.path().join("services.yml").as_path())
    );
    let probe = app.readiness.as_ref().expect("readiness");
    assert_eq!(probe.interval, secs(2));
    assert_eq!(probe.timeout, secs(1));
    assert_eq!(probe.initial_delay, Duration::ZERO);
    assert_eq!(probe.failure_threshold, 2);
    assert_eq!(probe.success_threshold, 1);
    assert!(app.liveness.is_none() && app.startup.is_none());

    assert_eq!(config.settings.listen, "127.0.0.1:7070");
    assert_eq!(config.settings.state_dir, dir.path().join(".steward"));
    assert_eq!(config.settings.shutdown_timeout, secs(30));
    assert_eq!(config.settings.token_env, None);
    assert_eq!(config.dir, dir.path());
}

#[test]
fn every_key_is_read() {
    let (dir, config) = load_ok(&[(
        "services.yml",
        r#"version: 1
settings:
  listen: 0.0.0.0:9000
  token_env: MY_TOKEN
  state_dir: /var/lib/steward
  shutdown_timeout: 1m
services:
  api:
    name: The API
    argv: [python3, app.py, --port, 8080]
    cwd: srv
    env: { PORT: 8080, DEBUG: true, RATIO: 1.50, NAME: api, EMPTY: "" }
    env_file: .env
    required_env: [API_KEY]
    tags: [backend, http]
    autostart: false
    restart: on-failure
    backoff: [250ms, 1s]
    max_restarts: 3
    restart_window: 1h
    stop_signal: int
    stop_timeout: 0
    startup:
      command: [test, -f, ready]
      failure_threshold: 30
    readiness:
      http: { url: "https://127.0.0.1:8443/health", expect_status: 204 }
      interval: 500ms
      timeout: 2s
      initial_delay: 1s
      failure_threshold: 4
      success_threshold: 2
    liveness:
      command: pg_isready -h 127.0.0.1
    log_lines: 50
    log_file: logs/api.log
    log_max_size: 512KiB
    log_max_files: 0
"#,
    )]);
    let api = service(&config, "api");
    check_definition(api).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api.name, "The API");
    assert_eq!(
        api.command,
        CommandSpec::Argv(vec![
            "python3".into(),
            "app.py".into(),
            "--port".into(),
            "8080".into()
        ])
    );
    assert_eq!(api.cwd, dir.path().join("srv"));
    let env: Vec<(&str, &str)> = api
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("DEBUG", "true"),
            ("EMPTY", ""),
            ("NAME", "api"),
            ("PORT", "8080"),
            ("RATIO", "1.50")
        ]
    );
    assert_eq!(api.env_file, Some(dir.path().join(".env")));
    assert_eq!(api.required_env, ["API_KEY"]);
    assert_eq!(api.tags, ["backend", "http"]);
    assert!(!api.autostart);
    assert_eq!(api.restart, RestartPolicy::Transient);
    assert_eq!(
        api.backoff,
        [Duration::from_millis(250), Duration::from_secs(1)]
    );
    assert_eq!(api.max_restarts, 3);
    assert_eq!(api.restart_window, Duration::from_secs(3600));
    assert_eq!(api.stop_signal, Signal::SIGINT);
    assert_eq!(api.stop_timeout, Duration::ZERO);
    let startup = api.startup.as_ref().expect("startup");
    assert_eq!(
        startup.check,
        ProbeCheck::Command {
            command: CommandSpec::Argv(vec!["test".into(), "-f".into(), "ready".into()])
        }
    );
    assert_eq!(startup.failure_threshold, 30);
    let readiness = api.readiness.as_ref().expect("readiness");
    assert_eq!(
        readiness.check,
        ProbeCheck::Http {
            url: "https://127.0.0.1:8443/health".into(),
            expect_status: 204
        }
    );
    assert_eq!(readiness.interval, Duration::from_millis(500));
    assert_eq!(readiness.timeout, Duration::from_secs(2));
    assert_eq!(readiness.initial_delay, Duration::from_secs(1));
    assert_eq!(
        (readiness.failure_threshold, readiness.success_threshold),
        (4, 2)
    );
    let liveness = api.liveness.as_ref().expect("liveness");
    assert_eq!(
        liveness.check,
        ProbeCheck::Command {
            command: CommandSpec::Line("pg_isready -h 127.0.0.1".into())
        }
    );
    assert_eq!(api.log_lines, 50);
    assert_eq!(api.log_file, Some(dir.path().join("logs/api.log")));
    assert_eq!(api.log_max_size, 512 * 1024);
    assert_eq!(api.log_max_files, 0);

    assert_eq!(config.settings.listen, "0.0.0.0:9000");
    assert_eq!(config.settings.token_env.as_deref(), Some("MY_TOKEN"));
    assert_eq!(config.settings.state_dir, PathBuf::from("/var/lib/steward"));
    assert_eq!(config.settings.shutdown_timeout, Duration::from_secs(60));
}

#[test]
fn restart_policy_aliases() {
    let (_dir, config) = load_ok(&[(
        "services.yml",
        &services_yml(
            "  a: { command: x, restart: always }\n  b: { command: x, restart: on-failure }\n  c: { command: x, restart: never }\n  d: { command: x, restart: Transient }\n  e: { command: x, restart: temporary }\n",
        ),
    )]);
    let policies: Vec<RestartPolicy> = config.services.iter().map(|s| s.restart).collect();
    use RestartPolicy::*;
    assert_eq!(
        policies,
        [Permanent, Transient, Temporary, Transient, Temporary]
    );
}

#[test]
fn sizes_accept_binary_units_and_plain_bytes() {
    let (_dir, config) = load_ok(&[(
        "services.yml",
        &services_yml(
            "  a: { command: x, log_max_size: 10MiB }\n  b: { command: x, log_max_size: 512KiB }\n  c: { command: x, log_max_size: 1GiB }\n  d: { command: x, log_max_size: 1048576 }\n",
        ),
    )]);
    let sizes: Vec<u64> = config.services.iter().map(|s| s.log_max_size).collect();
    assert_eq!(sizes, [10 << 20, 512 << 10, 1 << 30, 1_048_576]);
}

#[test]
fn a_command_line_is_kept_as_written() {
    let line = r#"sh -c 'echo "$HOME" | tr a-z A-Z'  # not a comment inside quotes"#;
    let yaml = format!(
        "  a:\n    command: {}\n",
        serde_json::to_string(line).expect("json")
    );
    let (_dir, config) = load_ok(&[("services.yml", &services_yml(&yaml))]);
    assert_eq!(config.services[0].command, CommandSpec::Line(line.into()));
}

// ---------------------------------------------------------------- files and paths

#[test]
fn relative_paths_resolve_against_the_defining_file() {
    let (dir, config) = load_ok(&[
        (
            "services.yml",
            &services_yml("  top:\n    command: x\n    cwd: ./web\n"),
        ),
        (
            "services.d/extra.yml",
            &services_yml(
                "  sub:\n    command: x\n    cwd: ../shared\n    env_file: sub.env\n    log_file: logs/sub.log\n  plain:\n    command: x\n  absolute:\n    command: x\n    cwd: /tmp\n",
            ),
        ),
    ]);
    let d = dir.path();
    assert_eq!(service(&config, "top").cwd, d.join("web"));
    let sub = service(&config, "sub");
    assert_eq!(sub.cwd, d.join("services.d/../shared"));
    assert_eq!(sub.env_file, Some(d.join("services.d/sub.env")));
    assert_eq!(sub.log_file, Some(d.join("services.d/logs/sub.log")));
    assert_eq!(sub.source_file, Some(d.join("services.d/extra.yml")));
    assert_eq!(service(&config, "plain").cwd, d.join("services.d"));
    assert_eq!(service(&config, "absolute").cwd, PathBuf::from("/tmp"));
    for s in &config.services {
        assert!(s.cwd.is_absolute(), "{:?}", s.cwd);
    }
}

#[test]
fn a_relative_config_dir_gives_absolute_definitions() {
    // Loading through a relative path must still give absolute paths in definitions.
    let dir = config_dir(&[("services.yml", &services_yml("  a: { command: x }\n"))]);
    let cwd = std::env::current_dir().expect("cwd");
    let relative = pathdiff(dir.path(), &cwd);
    let config = load_dir(&relative).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.dir.is_absolute());
    assert!(config.services[0].cwd.is_absolute());
}

/// `target` relative to `base` (both absolute), through `..` as needed.
fn pathdiff(target: &Path, base: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for _ in base.components().skip(1) {
        out.push("..");
    }
    out.join(target.strip_prefix("/").expect("absolute"))
}

#[test]
fn services_d_files_load_in_name_order() {
    let (_dir, config) = load_ok(&[
        ("services.yml", &services_yml("  main: { command: x }\n")),
        (
            "services.d/b.yml",
            &services_yml("  from-b: { command: x }\n"),
        ),
        (
            "services.d/a.yml",
            &services_yml("  from-a1: { command: x }\n  from-a2: { command: x }\n"),
        ),
        (
            "services.d/10-first.yml",
            &services_yml("  from-10: { command: x }\n"),
        ),
        ("services.d/notes.txt", "not yaml at all: ["),
        ("services.d/.hidden.yml", "broken: ["),
    ]);
    let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["main", "from-10", "from-a1", "from-a2", "from-b"]);
}

#[test]
fn an_empty_or_missing_services_d_is_fine() {
    let (_dir, config) = load_ok(&[("services.yml", &services_yml("  a: { command: x }\n"))]);
    assert_eq!(config.services.len(), 1);
    let dir = config_dir(&[("services.yml", &services_yml("  a: { command: x }\n"))]);
    std::fs::create_dir(dir.path().join("services.d")).expect("mkdir");
    let config = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.services.len(), 1);
}

#[test]
fn a_file_without_services_is_fine() {
    let (_dir, config) = load_ok(&[
        (
            "services.yml",
            "version: 1\nsettings:\n  listen: 127.0.0.1:7171\n",
        ),
        ("services.d/empty.yml", "version: 1\nservices: {}\n"),
    ]);
    assert!(config.services.is_empty());
    assert_eq!(config.settings.listen, "127.0.0.1:7171");
}

#[test]
fn a_relative_pid_file_is_taken_from_the_services_cwd() {
    let (dir, config) = load_ok(&[(
        "services.yml",
        &services_yml(
            "  stack:\n    cwd: stack\n    command: python3 launcher.py\n    detached: true\n    stop_command: python3 stopper.py\n    pid_file: run/daemon.pid\n",
        ),
    )]);
    let root = std::path::absolute(dir.path()).expect("absolute");
    let stack = service(&config, "stack");
    assert_eq!(
        stack.pid_file.as_deref(),
        Some(root.join("stack/run/daemon.pid").as_path()),
        "where the daemon, running in cwd, writes it"
    );
}

#[test]
fn dependency_install_source_and_detached_keys_are_read() {
    let (dir, config) = load_ok(&[
        (
            "services.yml",
            &services_yml(
                "  db:\n    command: x\n  cache:\n    command: x\n  migrate:\n    command: x\n    restart: temporary\n  web:\n    command: x\n    depends_on:\n      db: { condition: healthy }\n      migrate: { condition: completed }\n      cache:\n    install: [npm, ci]\n    source: { git: ../repo, ref: v1.2 }\n    user: www-data\n    group: \"33\"\n    write_env_file: true\n",
            ),
        ),
        (
            "services.d/stack.yml",
            &services_yml(
                "  stack:\n    command: docker compose up -d\n    detached: true\n    stop_command: docker compose down\n    pid_file: run/stack.pid\n    depends_on: [db, cache]\n    source: { git: \"https://example.org/org/stack.git\" }\n",
            ),
        ),
    ]);
    let root = std::path::absolute(dir.path()).expect("absolute");
    let web = service(&config, "web");
    let deps: Vec<(&str, DependencyCondition)> = web
        .depends_on
        .iter()
        .map(|d| (d.service.as_str(), d.condition))
        .collect();
    assert_eq!(
        deps,
        [
            ("db", DependencyCondition::Healthy),
            ("migrate", DependencyCondition::Completed),
            ("cache", DependencyCondition::Started),
        ]
    );
    assert_eq!(
        web.install,
        Some(CommandSpec::Argv(vec!["npm".into(), "ci".into()]))
    );
    let source = web.source.as_ref().expect("source");
    assert_eq!(
        Path::new(&source.git),
        root.join("../repo").as_path(),
        "a relative local repository is resolved against the defining file"
    );
    assert_eq!(source.reference.as_deref(), Some("v1.2"));
    assert_eq!(web.user.as_deref(), Some("www-data"));
    assert_eq!(web.group.as_deref(), Some("33"));
    assert!(web.write_env_file);
    assert!(!web.detached);

    let stack = service(&config, "stack");
    assert!(stack.detached);
    assert_eq!(
        stack.stop_command,
        Some(CommandSpec::Line("docker compose down".into()))
    );
    assert_eq!(
        stack.pid_file.as_deref(),
        Some(Path::new("run/stack.pid")),
        "with a source and no cwd, relative to the checkout (placed at run time)"
    );
    assert!(
        stack
            .depends_on
            .iter()
            .all(|d| d.condition == DependencyCondition::Started)
    );
    assert_eq!(
        stack.source.as_ref().map(|s| s.git.as_str()),
        Some("https://example.org/org/stack.git")
    );
    let all: Vec<&ServiceDefinition> = config.services.iter().collect();
    check_dependencies(&all).unwrap_or_else(|e| panic!("{e}"));
    for def in &all {
        check_definition(def).unwrap_or_else(|e| panic!("{}: {e}", def.id));
    }
}

#[test]
fn check_dependencies_finds_missing_targets_and_cycles_without_files() {
    let with_deps = |id: &str, deps: &[&str]| {
        let mut def = ServiceDefinition::new(id, CommandSpec::Line("x".into()));
        def.depends_on = deps
            .iter()
            .map(|d| Dependency {
                service: d.to_string(),
                condition: DependencyCondition::Started,
            })
            .collect();
        def
    };
    let a = with_deps("a", &["b"]);
    let b = with_deps("b", &["c"]);
    let c = with_deps("c", &["a", "web"]);
    let web = with_deps("web", &["dbb"]);
    let db = with_deps("db", &[]);
    let errors = check_dependencies(&[&a, &b, &c, &web, &db]).expect_err("broken graph");
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "service `web` depends on `dbb`, which is not defined (hint: did you mean `db`?)",
            "dependency cycle: a → b → c → a (hint: services in a cycle would wait for each other forever; remove one of these `depends_on` entries)",
        ]
    );
    assert!(check_dependencies(&[&web, &db]).is_err());
    assert!(check_dependencies(&[&db, &with_deps("api", &["db"])]).is_ok());
}

#[test]
fn check_definition_applies_the_detached_and_self_dependency_rules() {
    let mut def = ServiceDefinition::new("stack", CommandSpec::Line("up".into()));
    def.detached = true;
    def.depends_on.push(Dependency {
        service: "stack".into(),
        condition: DependencyCondition::Healthy,
    });
    let errors = check_definition(&def)
        .expect_err("two problems")
        .to_string();
    assert!(errors.contains("needs a `stop_command`"), "{errors}");
    assert!(errors.contains("depends on itself"), "{errors}");
    def.detached = false;
    def.depends_on.clear();
    def.pid_file = Some(PathBuf::from("relative.pid"));
    def.stop_command = Some(CommandSpec::Line("down".into()));
    let errors = check_definition(&def).expect_err("three problems");
    assert_eq!(errors.0.len(), 3, "{errors}");
    def.detached = true;
    def.pid_file = Some(PathBuf::from("/run/stack.pid"));
    check_definition(&def).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------- error messages

#[test]
fn error_yaml_syntax() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml("  web:\n    command: [python3, app.py\n  api:\n    command: x\n"),
    )]));
}

#[test]
fn error_bad_indentation() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml("  web:\n    command: x\n   tags: [a]\n"),
    )]));
}

#[test]
fn error_unknown_keys_suggest_the_nearest() {
    insta::assert_snapshot!(load_err(&[
        (
            "services.yml",
            "version: 1\nsettings:\n  lsten: 127.0.0.1:7070\nservice:\n  web: {}\n"
        ),
        (
            "services.d/api.yml",
            &services_yml(
                "  api:\n    comand: ./api\n  w1:\n    command: x\n    readiness:\n      tcp: 127.0.0.1:80\n      intervl: 2s\n  w2:\n    command: x\n    liveness:\n      http: { uri: \"http://x/\" }\n  w3:\n    cmd: x\n  w4:\n    command: x\n    xyzzy: 1\n",
            ),
        ),
    ]));
}

#[test]
fn error_new_keys_with_their_rules() {
    // The keys that used to be "not supported yet", each as a user first writes it.
    let mut body = String::new();
    for (i, key) in [
        "depends_on: { db: { condition: healthy } }",
        "install: make",
        "source: { git: \"https://example.org/x.git\" }",
        "detached: true",
        "stop_command: docker compose down",
        "pid_file: run.pid",
        "write_env_file: true",
        "user: www-data",
        "group: www-data",
    ]
    .iter()
    .enumerate()
    {
        body.push_str(&format!("  s{i}:\n    command: x\n    {key}\n"));
    }
    insta::assert_snapshot!(load_err(&[("services.yml", &services_yml(&body))]));
}

#[test]
fn error_missing_dependency_suggests_the_nearest_id() {
    insta::assert_snapshot!(load_err(&[
        (
            "services.yml",
            &services_yml(
                "  db:\n    command: x\n  web:\n    command: x\n    depends_on: { dbb: { condition: healthy } }\n"
            )
        ),
        (
            "services.d/jobs.yml",
            &services_yml("  job:\n    command: x\n    depends_on: [web, cache]\n")
        ),
    ]));
}

#[test]
fn error_self_dependency() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml("  web:\n    command: x\n    depends_on: [web]\n"),
    )]));
}

#[test]
fn error_dependency_cycle_is_named_once_across_files() {
    insta::assert_snapshot!(load_err(&[
        (
            "services.yml",
            &services_yml(
                "  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on:\n      c: { condition: healthy }\n  ok:\n    command: x\n    depends_on: [a]\n"
            )
        ),
        (
            "services.d/c.yml",
            &services_yml(
                "  c:\n    command: x\n    depends_on: [a]\n  x:\n    command: x\n    depends_on: [y]\n  y:\n    command: x\n    depends_on: [x]\n"
            )
        ),
    ]));
}

#[test]
fn error_bad_depends_on() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  db:\n    command: x\n  a:\n    command: x\n    depends_on: { db: { condition: healthyy } }\n  b:\n    command: x\n    depends_on: { db: { conditon: healthy } }\n  c:\n    command: x\n    depends_on: db\n  d:\n    command: x\n    depends_on: [db, db]\n  e:\n    command: x\n    depends: [db]\n",
        ),
    )]));
}

#[test]
fn error_detached_needs_stop_command() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  stack:\n    command: docker compose up -d\n    detached: true\n    readiness: { tcp: 127.0.0.1:8080 }\n",
        ),
    )]));
}

#[test]
fn error_stop_command_and_pid_file_need_detached() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  web:\n    command: x\n    stop_command: docker compose down\n    pid_file: run/web.pid\n  api:\n    command: x\n    detached: false\n    pid_file: api.pid\n",
        ),
    )]));
}

#[test]
fn error_bad_install_source_and_user() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  a:\n    command: x\n    install: \"  \"\n    source: { ref: main }\n    user: \"\"\n  b:\n    command: x\n    source: { git: ./repo, branch: main }\n  c:\n    command: x\n    source: { git: ./repo, ref: \"two words\" }\n    group: \"a b\"\n    write_env_file: sometimes\n    detached: maybe\n    stop_command: []\n  d:\n    command: x\n    source: https://example.org/x.git\n",
        ),
    )]));
}

#[test]
fn error_bad_ids() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  Web:\n    command: x\n  my.api:\n    command: x\n  -x:\n    command: x\n  \"\":\n    command: x\n",
        ),
    )]));
}

#[test]
fn error_command_and_argv() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  both:\n    command: python3 app.py\n    argv: [python3, app.py]\n  neither:\n    tags: [x]\n  empty:\n  blank:\n    command: \"  \"\n  nolist:\n    argv: []\n  list-command:\n    command: [python3, app.py]\n  scalar: python3 app.py\n",
        ),
    )]));
}

#[test]
fn error_bad_durations() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  web:\n    command: x\n    stop_timeout: 10\n    restart_window: 5 minutes please\n    backoff: [1s, 2x, 3]\n    readiness:\n      tcp: 127.0.0.1:80\n      interval: 0s\n      timeout: -1s\n",
        ),
    )]));
}

#[test]
fn error_bad_restart_policy() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  a: { command: x, restart: permanant }\n  b: { command: x, restart: \"no\" }\n  c: { command: x, restart: sometimes }\n",
        ),
    )]));
}

#[test]
fn error_bad_probes() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  two:\n    command: x\n    readiness:\n      http: { url: \"http://127.0.0.1:80/\" }\n      tcp: 127.0.0.1:80\n  none:\n    command: x\n    liveness:\n      interval: 1s\n  bad-values:\n    command: x\n    readiness:\n      http: { url: \"127.0.0.1/health\", expect_status: 999 }\n    liveness:\n      tcp: localhost\n      failure_threshold: 0\n    startup:\n      http: {}\n  scalar:\n    command: x\n    readiness: tcp 127.0.0.1:80\n",
        ),
    )]));
}

#[test]
fn error_bad_signal() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  a: { command: x, stop_signal: SIGTREM }\n  b: { command: x, stop_signal: 15 }\n",
        ),
    )]));
}

#[test]
fn error_bad_values() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        &services_yml(
            "  web:\n    command: x\n    autostart: yes\n  api:\n    command: x\n    max_restarts: -1\n    log_lines: 0\n    log_max_size: 10XB\n    log_max_files: many\n  env:\n    command: x\n    cwd: ~/src\n    env:\n      PORT:\n      BAD NAME: 1\n    required_env: [\"A=B\"]\n  tags:\n    command: x\n    tags: frontend\n",
        ),
    )]));
}

#[test]
fn error_duplicate_id_names_both_files() {
    insta::assert_snapshot!(load_err(&[
        ("services.yml", &services_yml("  web:\n    command: x\n")),
        (
            "services.d/a.yml",
            &services_yml("  api:\n    command: x\n  web:\n    command: y\n")
        ),
        (
            "services.d/b.yml",
            &services_yml("  api:\n    command: z\n  api:\n    command: z\n")
        ),
    ]));
}

#[test]
fn error_in_two_files_are_reported_together() {
    insta::assert_snapshot!(load_err(&[
        (
            "services.yml",
            &services_yml("  web:\n    command: x\n    restart: sometimes\n")
        ),
        (
            "services.d/api.yml",
            &services_yml("  api:\n    comand: x\n")
        ),
        ("services.d/jobs.yml", "version: 1\nservices:\n  job: [\n"),
    ]));
}

#[test]
fn error_version_missing_or_wrong() {
    insta::assert_snapshot!(load_err(&[
        ("services.yml", "services:\n  web: { command: x }\n"),
        ("services.d/a.yml", "version: 2\nservices: {}\n"),
        ("services.d/b.yml", "version:\nservices: {}\n"),
        ("services.d/c.yml", ""),
        ("services.d/d.yml", "version: 1.0\n"),
    ]));
}

#[test]
fn error_file_level_problems() {
    insta::assert_snapshot!(load_err(&[
        (
            "services.yml",
            "version: 1\nsettings:\n  listen: localhost\n  token_env: \"MY TOKEN\"\n  shutdown_timeout: 30\n  state_dir: \"\"\n"
        ),
        (
            "services.d/a.yml",
            "version: 1\nsettings:\n  listen: 127.0.0.1:7070\nservices: [web]\n"
        ),
        ("services.d/b.yml", "- version: 1\n"),
        ("services.d/c.yml", "version: 1\n---\nversion: 1\n"),
        ("services.d/d.yaml", "version: 1\n"),
        (
            "services.d/e.yml",
            "version: 1\nservices:\n  web: &w { command: x }\n  api: *nowhere\n"
        ),
    ]));
}

#[test]
fn error_settings_must_be_a_map() {
    insta::assert_snapshot!(load_err(&[(
        "services.yml",
        "version: 1\nsettings: fast\n"
    )]));
}

#[test]
fn error_missing_services_yml_and_folder() {
    let dir = config_dir(&[("services.d/a.yml", &services_yml("  a: { command: x }\n"))]);
    let errors = load_dir(dir.path()).expect_err("no services.yml");
    insta::assert_snapshot!(render(&errors, dir.path()));
    let errors = load_dir(&dir.path().join("nope")).expect_err("no folder");
    assert_eq!(errors.0.len(), 1);
    assert!(errors.0[0].message.contains("does not exist"), "{errors}");
}

#[test]
fn error_not_utf8() {
    let dir = config_dir(&[]);
    std::fs::write(
        dir.path().join("services.yml"),
        b"version: 1\nservices:\n  a: { command: \xff }\n",
    )
    .expect("write");
    let errors = load_dir(dir.path()).expect_err("not utf-8");
    insta::assert_snapshot!(render(&errors, dir.path()));
}

#[test]
fn every_error_names_file_line_column_and_a_hint() {
    let dir = config_dir(&[
        (
            "services.yml",
            &services_yml(
                "  a:\n    comand: x\n  B: { command: x }\n  c: { command: x, stop_timeout: 1 }\n",
            ),
        ),
        (
            "services.d/x.yml",
            "version: 3\nservices:\n  d: { argv: [] }\n  e: { command: x, restart: sometimes, autostart: maybe }\n",
        ),
    ]);
    let errors = load_dir(dir.path()).expect_err("bad");
    assert_eq!(errors.0.len(), 7, "{errors}");
    for e in &errors.0 {
        assert!(e.file.is_some(), "{e}");
        assert!(e.line >= 1 && e.column >= 1, "{e}");
        assert!(e.hint.as_deref().is_some_and(|h| !h.is_empty()), "{e}");
    }
}

// ------------------------------------------------- files that are not files (issue 14, item 5)

/// The one error of `errors` about `file`.
fn error_about<'a>(errors: &'a ConfigErrors, file: &Path) -> &'a steward::error::ConfigError {
    let about: Vec<_> = errors
        .0
        .iter()
        .filter(|e| e.file.as_deref() == Some(file))
        .collect();
    assert_eq!(
        about.len(),
        1,
        "one error about {}:\n{errors}",
        file.display()
    );
    about[0]
}

/// Regression (issue 14, item 5): a FIFO, a folder, a device and a dangling link named
/// `*.yml` in services.d were skipped without a word. Each is an error naming it; a link to
/// a regular file still loads.
#[test]
fn services_d_entries_that_are_not_regular_files_are_errors_naming_them() {
    let dir = config_dir(&[
        ("services.yml", &services_yml("  a: { command: x }\n")),
        ("services.d/ok.yml", &services_yml("  ok: { command: x }\n")),
        (
            "elsewhere/linked.yml",
            &services_yml("  linked: { command: x }\n"),
        ),
    ]);
    let d = dir.path().join("services.d");
    nix::unistd::mkfifo(&d.join("pipe.yml"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    std::fs::create_dir(d.join("folder.yml")).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.yml")).expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("nowhere.yml"), d.join("gone.yml"))
        .expect("symlink");
    std::os::unix::fs::symlink(
        dir.path().join("elsewhere/linked.yml"),
        d.join("linked.yml"),
    )
    .expect("symlink");

    let errors = load_dir(dir.path()).expect_err("special files are errors");
    assert_eq!(errors.0.len(), 4, "{errors}");
    for (name, what) in [
        ("pipe.yml", "a FIFO"),
        ("folder.yml", "a directory"),
        ("zero.yml", "a character device"),
        ("gone.yml", "which does not exist"),
    ] {
        let error = error_about(&errors, &d.join(name));
        assert!(error.message.contains(what), "{name}: {error}");
        assert!(error.hint.is_some(), "{name}: {error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: ", d.join(name).display())),
            "{error}"
        );
    }

    for name in ["pipe.yml", "zero.yml", "gone.yml"] {
        std::fs::remove_file(d.join(name)).expect("rm");
    }
    std::fs::remove_dir(d.join("folder.yml")).expect("rmdir");
    let config = load_dir(dir.path()).expect("only regular files left");
    let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "linked", "ok"]);
}

/// Regression (issue 14, item 5): a FIFO named services.yml made the loader wait for a
/// writer forever. It is refused without being opened: the writer this test starts is
/// released by the test itself, not by the loader (the old loader read the FIFO instead,
/// got an empty file and reported a missing `version`).
#[test]
fn a_fifo_named_services_yml_is_refused_without_waiting_for_a_writer() {
    let dir = config_dir(&[]);
    let main = dir.path().join("services.yml");
    nix::unistd::mkfifo(&main, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    // A writer that opens (blocking until some reader opens) and closes at once, so the old
    // loader's blocking open and read ended rather than hung.
    let writer = {
        let main = main.clone();
        std::thread::spawn(move || {
            drop(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(main)
                    .expect("open to write"),
            )
        })
    };
    let result = load_dir(dir.path());
    // Release the writer whatever happened: a reader that does not block on open.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&main)
        .expect("open to read");
    writer.join().expect("writer");
    drop(reader);

    let errors = result.expect_err("a FIFO is no config");
    assert_eq!(errors.0.len(), 1, "{errors}");
    let error = error_about(&errors, &main);
    assert!(error.message.contains("a FIFO"), "{error}");
}

/// Regression (issue 14, item 5): `services.yml` linked to `/dev/zero` grew steward by
/// gigabytes (the size check read the metadata length, 0 for a device). It is refused
/// before a byte is read.
#[test]
fn services_yml_linked_to_a_device_is_refused_before_reading() {
    let dir = config_dir(&[]);
    let main = dir.path().join("services.yml");
    std::os::unix::fs::symlink("/dev/zero", &main).expect("symlink");
    let errors = load_dir(dir.path()).expect_err("a device is no config");
    assert_eq!(errors.0.len(), 1, "{errors}");
    let error = error_about(&errors, &main);
    assert!(error.message.contains("a character device"), "{error}");
}

// ---------------------------------------------------------------- docs stay true

#[test]
fn complete_examples_in_the_configuration_docs_load() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CONFIGURATION.md"),
    )
    .expect("docs/CONFIGURATION.md");
    let mut checked = 0;
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```yaml\n") {
        let after = &rest[start + "```yaml\n".len()..];
        let end = after.find("```").expect("closed code block");
        let block = &after[..end];
        rest = &after[end + 3..];
        if block.starts_with("version: 1") {
            let dir = config_dir(&[("services.yml", block)]);
            if let Err(e) = load_dir(dir.path()) {
                panic!("example in docs/CONFIGURATION.md does not load:\n{block}\n{e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} complete examples found");
}

// ---------------------------------------------------------------- never panic

/// Text built from YAML-ish pieces: keys of the schema, indentation, flow syntax, anchors,
/// odd scalars. Most of it is invalid; none of it may panic the loader.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("version: 1\n".to_string()),
        Just("services:\n".to_string()),
        Just("settings:\n".to_string()),
        Just("  web:\n".to_string()),
        Just("    command: x\n".to_string()),
        Just("    argv: [a, 1, true]\n".to_string()),
        Just("    readiness:\n      http: { url: \"http://h:1/\" }\n".to_string()),
        Just("    env: { A: 1, B: }\n".to_string()),
        Just("    backoff: [1s, 2x]\n".to_string()),
        Just("- ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a\n".to_string()),
        Just("!!str ".to_string()),
        Just("? ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("---\n".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just(": ".to_string()),
        "[a-z_ ]{0,12}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_loader(
        main in prop::collection::vec(any::<u8>(), 0..512),
        extra in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = config_dir(&[]);
        std::fs::write(dir.path().join("services.yml"), &main).expect("write");
        std::fs::create_dir(dir.path().join("services.d")).expect("mkdir");
        std::fs::write(dir.path().join("services.d/x.yml"), &extra).expect("write");
        let _ = load_dir(dir.path());
    }

    #[test]
    fn yamlish_text_never_panics_and_errors_are_located(main in yamlish(), extra in yamlish()) {
        let dir = config_dir(&[("services.yml", &main), ("services.d/x.yml", &extra)]);
        let loaded = load_dir(dir.path());
        if let Ok(config) = &loaded {
            // What the loader accepts, the runtime's own check accepts too.
            for def in &config.services {
                prop_assert!(check_definition(def).is_ok(), "{:?}", def);
            }
        }
        if let Err(errors) = loaded {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(e.file.is_some() && e.line >= 1 && e.column >= 1, "{}", e);
                prop_assert!(e.hint.is_some(), "{}", e);
            }
        }
    }
}

#[test]
fn hostile_inputs_are_refused_with_an_error() {
    let deep = format!(
        "version: 1\nservices:\n  a:\n    argv: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mut bomb =
        String::from("version: 1\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = i - 1;
        bomb.push_str(&format!(
            "x{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    bomb.push_str("services:\n  a:\n    env: *a9\n");
    let huge = format!("version: 1\n# {}\n", "x".repeat(5 * 1024 * 1024));
    for (name, text) in [("deep", deep), ("alias bomb", bomb), ("huge", huge)] {
        let dir = config_dir(&[("services.yml", &text)]);
        let errors = load_dir(dir.path()).expect_err(name);
        let last = errors.0.last().expect("an error").to_string();
        assert!(
            last.contains("limit") || last.contains("bytes"),
            "{name}: {last}"
        );
    }
}

// ---------------------------------------------------------------- save round-trips

/// Text that YAML would read as something else unless it is quoted with care.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "8080",
            "true",
            "null",
            "~",
            "yes",
            "1e3",
            "0x10",
            "---",
            "a: b",
            "# not a comment",
            "x #y",
            "  leading spaces",
            "trailing spaces  ",
            "'single' \"double\"",
            "{[,]}",
            "- item",
            "*alias &anchor !tag",
            "%YAML",
            "é ü 中文 🙂",
            "tab\tand\nnewline\r",
            "back\\slash \\n",
            "\u{7f}\u{85}\u{feff}\u{2028}",
            "$HOME `date` 'quoted arg'",
        ])
        .prop_map(str::to_string),
        "\\PC{0,16}",
        any::<String>().prop_map(|s| s.replace('\0', "")),
    ]
}

/// Awkward text that is not blank (a command line, a tag, a name).
fn non_blank() -> impl Strategy<Value = String> {
    awkward().prop_map(|s| {
        if s.trim().is_empty() {
            format!("x{s}")
        } else {
            s
        }
    })
}

fn env_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,8}",
        awkward().prop_map(|s| {
            let name: String = s
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .collect();
            format!("V{name}")
        }),
    ]
}

fn command_spec() -> impl Strategy<Value = CommandSpec> {
    prop_oneof![
        non_blank().prop_map(CommandSpec::Line),
        (non_blank(), prop::collection::vec(awkward(), 0..4)).prop_map(|(program, rest)| {
            let mut argv = vec![program];
            argv.extend(rest);
            CommandSpec::Argv(argv)
        }),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_secs),
        (0u64..10_000_000).prop_map(Duration::from_millis),
        (0u64..u64::from(u32::MAX)).prop_map(Duration::from_nanos),
    ]
}

fn positive_duration() -> impl Strategy<Value = Duration> {
    duration().prop_map(|d| {
        if d.is_zero() {
            Duration::from_secs(1)
        } else {
            d
        }
    })
}

fn probe() -> impl Strategy<Value = ProbeSpec> {
    let check = prop_oneof![
        (
            "https?://[a-z0-9.]{1,8}(:[1-9][0-9]{0,3})?/[a-zA-Z0-9/?=&#:%'\"é-]{0,12}",
            100u16..=599
        )
            .prop_map(|(url, expect_status)| ProbeCheck::Http { url, expect_status }),
        prop_oneof![
            "[a-z0-9.-]{1,10}:[1-9][0-9]{0,3}",
            Just("[::1]:8080".to_string())
        ]
        .prop_map(|address| ProbeCheck::Tcp { address }),
        command_spec().prop_map(|command| ProbeCheck::Command { command }),
    ];
    (
        check,
        positive_duration(),
        positive_duration(),
        duration(),
        1u32..10,
        1u32..10,
    )
        .prop_map(
            |(check, interval, timeout, initial_delay, failure, success)| {
                let mut spec = ProbeSpec::new(check);
                spec.interval = interval;
                spec.timeout = timeout;
                spec.initial_delay = initial_delay;
                spec.failure_threshold = failure;
                spec.success_threshold = success;
                spec
            },
        )
}

/// A path either under the saved file's folder (`true`, relative part) or elsewhere.
fn place() -> impl Strategy<Value = (bool, String)> {
    (
        any::<bool>(),
        prop::collection::vec("[a-zA-Z0-9 _é-][a-zA-Z0-9 ._é-]{0,7}", 0..3),
    )
        .prop_map(|(under, parts)| (under, parts.join("/")))
}

/// Everything a random definition needs except the folder its paths hang from.
#[derive(Debug, Clone)]
struct DefinitionSeed {
    id: String,
    name: Option<String>,
    command: CommandSpec,
    env: Vec<(String, String)>,
    required_env: Vec<String>,
    tags: Vec<String>,
    autostart: bool,
    restart: RestartPolicy,
    backoff: Vec<Duration>,
    max_restarts: u32,
    restart_window: Duration,
    stop_signal: Signal,
    stop_timeout: Duration,
    probes: [Option<ProbeSpec>; 3],
    log_lines: usize,
    log_max_size: u64,
    log_max_files: u32,
    paths: [(bool, String); 4],
    has_paths: [bool; 3],
    depends_on: Vec<(String, DependencyCondition)>,
    install: Option<CommandSpec>,
    source: Option<SourceSpec>,
    detached: Option<(CommandSpec, bool)>,
    write_env_file: bool,
    user: Option<String>,
    group: Option<String>,
}

fn definition_seed() -> impl Strategy<Value = DefinitionSeed> {
    let id = prop_oneof![
        "[a-z0-9][a-z0-9_-]{0,8}",
        prop::sample::select(vec!["true", "null", "8080", "yes", "0"]).prop_map(str::to_string),
    ];
    let restart = prop::sample::select(vec![
        RestartPolicy::Permanent,
        RestartPolicy::Transient,
        RestartPolicy::Temporary,
    ]);
    let signal = prop::sample::select(Signal::iterator().collect::<Vec<_>>());
    let condition = prop::sample::select(vec![
        DependencyCondition::Started,
        DependencyCondition::Healthy,
        DependencyCondition::Completed,
    ]);
    let account = prop_oneof!["[a-z_][a-z0-9_-]{0,8}", "[0-9]{1,5}"];
    let source = (
        prop_oneof![
            "https://[a-z]{1,8}\\.org/[a-z]{1,8}\\.git",
            "git@[a-z]{1,6}\\.com:[a-z]{1,6}/[a-z]{1,6}\\.git",
            "/srv/[a-z]{1,8}",
            "file:///srv/[a-z]{1,4} [a-z]{1,4}",
        ],
        prop::option::of("[a-zA-Z0-9._/-]{1,12}"),
    )
        .prop_map(|(git, reference)| SourceSpec { git, reference });
    let identity = (
        id,
        prop::option::of(non_blank()),
        command_spec(),
        prop::collection::vec((env_name(), awkward()), 0..4),
        prop::collection::vec(env_name(), 0..3),
        prop::collection::vec(non_blank(), 0..3),
    );
    let restarts = (
        any::<bool>(),
        restart,
        prop::collection::vec(duration(), 1..4),
        any::<u32>(),
        positive_duration(),
        signal,
        duration(),
    );
    let probes_and_logs = (
        prop::option::of(probe()),
        prop::option::of(probe()),
        prop::option::of(probe()),
        1usize..=1_000_000,
        1u64..=u64::MAX,
        0u32..=1000,
        [place(), place(), place(), place()],
        [any::<bool>(), any::<bool>(), any::<bool>()],
    );
    let lifecycle = (
        prop::collection::vec(("dep-[a-z]{1,3}", condition), 0..4),
        prop::option::of(command_spec()),
        prop::option::of(source),
        prop::option::of((command_spec(), any::<bool>())),
        any::<bool>(),
        prop::option::of(account.clone()),
        prop::option::of(account),
    );
    (identity, restarts, probes_and_logs, lifecycle).prop_map(
        |(
            (id, name, command, env, required_env, tags),
            (autostart, restart, backoff, max_restarts, restart_window, stop_signal, stop_timeout),
            (
                readiness,
                liveness,
                startup,
                log_lines,
                log_max_size,
                log_max_files,
                paths,
                has_paths,
            ),
            (depends_on, install, source, detached, write_env_file, user, group),
        )| DefinitionSeed {
            id,
            name,
            command,
            env,
            required_env,
            tags,
            autostart,
            restart,
            backoff,
            max_restarts,
            restart_window,
            stop_signal,
            stop_timeout,
            probes: [readiness, liveness, startup],
            log_lines,
            log_max_size,
            log_max_files,
            paths,
            has_paths,
            depends_on,
            install,
            source,
            detached,
            write_env_file,
            user,
            group,
        },
    )
}

impl DefinitionSeed {
    /// The definition, with paths under `folder` or under `/elsewhere`.
    fn build(self, folder: &Path) -> ServiceDefinition {
        let at = |(under, rel): &(bool, String)| {
            if *under {
                folder.join(rel)
            } else {
                Path::new("/elsewhere").join(rel)
            }
        };
        let mut def = ServiceDefinition::new(self.id.clone(), self.command);
        if let Some(name) = self.name {
            def.name = name;
        }
        def.cwd = at(&self.paths[0]);
        def.env = self.env.into_iter().collect();
        def.required_env = self.required_env;
        def.tags = self.tags;
        def.autostart = self.autostart;
        def.restart = self.restart;
        def.backoff = self.backoff;
        def.max_restarts = self.max_restarts;
        def.restart_window = self.restart_window;
        def.stop_signal = self.stop_signal;
        def.stop_timeout = self.stop_timeout;
        let [readiness, liveness, startup] = self.probes;
        def.readiness = readiness;
        def.liveness = liveness;
        def.startup = startup;
        def.log_lines = self.log_lines;
        def.log_max_size = self.log_max_size;
        def.log_max_files = self.log_max_files;
        def.env_file = self.has_paths[0].then(|| at(&self.paths[1]));
        def.log_file = self.has_paths[1].then(|| at(&self.paths[2]));
        let mut seen = Vec::new();
        for (service, condition) in self.depends_on {
            if service != self.id && !seen.contains(&service) {
                seen.push(service.clone());
                def.depends_on.push(Dependency { service, condition });
            }
        }
        def.install = self.install;
        def.source = self.source;
        if let Some((stop_command, with_pid_file)) = self.detached {
            def.detached = true;
            def.stop_command = Some(stop_command);
            def.pid_file = (with_pid_file && self.has_paths[2]).then(|| at(&self.paths[3]));
        }
        def.write_env_file = self.write_env_file;
        def.user = self.user;
        def.group = self.group;
        def
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn saved_definitions_load_back_identical(seed in definition_seed()) {
        let dir = config_dir(&[]);
        let root = std::path::absolute(dir.path()).expect("absolute");
        let def = seed.build(&root.join("services.d"));
        prop_assert!(check_definition(&def).is_ok(), "{:?}", check_definition(&def));
        // The services it depends on, so the folder loads.
        let mut main = String::from(HEADER);
        for dep in &def.depends_on {
            main.push_str(&format!("  {}: {{ command: x }}\n", dep.service));
        }
        if def.depends_on.is_empty() {
            main = "version: 1\nservices: {}\n".to_string();
        }
        std::fs::write(root.join("services.yml"), main).expect("write");

        let path = save_service(&def, &root).expect("saved");
        prop_assert_eq!(&path, &root.join(format!("services.d/{}.yml", def.id)));
        let text = std::fs::read_to_string(&path).expect("read");
        let config = match load_dir(&root) {
            Ok(config) => config,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n--- saved:\n{text}"))),
        };
        let loaded = service(&config, &def.id);
        let mut expected = def.clone();
        expected.source_file = Some(path.clone());
        prop_assert_eq!(loaded, &expected, "saved:\n{}", text);

        // The absolute form is self-contained: it loads the same from any folder.
        let elsewhere = config_dir(&[("services.d/x.yml", "version: 1\n")]);
        let other = std::path::absolute(elsewhere.path()).expect("absolute");
        std::fs::write(other.join("services.yml"), std::fs::read(root.join("services.yml")).expect("read")).expect("write");
        std::fs::write(other.join("services.d/x.yml"), service_to_yaml(&def)).expect("write");
        let config = load_dir(&other).map_err(|e| TestCaseError::fail(format!("{e}\n{}", service_to_yaml(&def))))?;
        let mut expected = def.clone();
        expected.source_file = Some(other.join("services.d/x.yml"));
        prop_assert_eq!(service(&config, &def.id), &expected);
    }
}

#[test]
fn save_refuses_what_yaml_cannot_hold() {
    let dir = config_dir(&[]);
    let mut def = ServiceDefinition::new("web", CommandSpec::Line("x".into()));
    def.cwd = PathBuf::from("/srv/web");
    def.readiness = Some(ProbeSpec::new(ProbeCheck::Function(FunctionProbe::new(
        "ping",
        || async { Ok(()) },
    ))));
    let error = save_service(&def, dir.path()).expect_err("function probe");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        service_to_yaml(&def).contains("# readiness: the function probe `ping` has no YAML form")
    );
    let bad = ServiceDefinition::new("../escape", CommandSpec::Line("x".into()));
    assert!(save_service(&bad, dir.path()).is_err());
    assert!(
        !dir.path().join("services.d").exists()
            || std::fs::read_dir(dir.path().join("services.d"))
                .expect("list")
                .next()
                .is_none()
    );
}

#[test]
fn saving_writes_relative_paths_under_the_folder_and_leaves_no_temp_file() {
    let dir = config_dir(&[("services.yml", "version: 1\nservices: {}\n")]);
    let root = std::path::absolute(dir.path()).expect("absolute");
    let mut def = ServiceDefinition::new(
        "api",
        CommandSpec::Argv(vec![
            "python3".into(),
            "-m".into(),
            "http.server".into(),
            "8080".into(),
        ]),
    );
    def.cwd = root.join("services.d");
    def.log_file = Some(root.join("services.d/logs/api.log"));
    def.env_file = Some(root.join("api.env"));
    def.env.insert("PORT".into(), "8080".into());
    def.stop_timeout = Duration::from_secs(3);
    let path = save_service(&def, &root).expect("saved");
    let text = std::fs::read_to_string(&path).expect("read");
    insta::assert_snapshot!(text.replace(&format!("{}/", root.display()), "<dir>/"));
    let names: Vec<String> = std::fs::read_dir(root.join("services.d"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["api.yml"]);
}

/// A malformed `env` (or secret-looking variable) is reported without quoting its value:
/// config errors reach steward's log and the API, where secrets never appear.
#[test]
fn config_errors_never_quote_env_values() {
    for env in [
        "env: API_TOKEN=tok-s3cr3t",
        "env: [API_TOKEN, tok-s3cr3t]",
        "env:\n      API_TOKEN: {a: tok-s3cr3t}",
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("services.yml"),
            format!("version: 1\nservices:\n  a:\n    command: sleep 1\n    {env}\n"),
        )
        .expect("write");
        let errors = steward::config::load_dir(dir.path())
            .expect_err("invalid")
            .to_string();
        assert!(errors.contains("services.yml:"), "{errors}");
        assert!(!errors.contains("tok-s3cr3t"), "{env}: {errors}");
    }
}
