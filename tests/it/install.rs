//! `install` and `source` with real git and real processes: the clone lands in
//! `state_dir/src/<id>` at its `ref`, install runs once per definition (not after a
//! crash, a manual restart or a new runtime; again when `install` changes), a failing
//! install fails the start with its output, a slow install holds back no other service,
//! and a stop while installing leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Command;

use steward::config::SourceSpec;
use steward::events::EventKind;
use steward::process::pid_file;
use steward::{CommandSpec, ControlError, ServiceStatus, Steward};

use crate::support::*;

/// Runs git in `dir`; panics with its output when it fails.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with `VERSION` = `v1` at tag `v1`, then `v2` on the branch after it.
fn repository(dir: &Path) {
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    for version in ["v1", "v2"] {
        std::fs::write(dir.join("VERSION"), format!("{version}\n")).expect("write");
        git(dir, &["add", "VERSION"]);
        git(
            dir,
            &[
                "-c",
                "user.name=steward tests",
                "-c",
                "user.email=tests@steward.invalid",
                "commit",
                "--quiet",
                "-m",
                version,
            ],
        );
        if version == "v1" {
            git(dir, &["tag", "v1"]);
        }
    }
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The app of the first test: cloned at `v1` from `repo`, no `cwd` (so it runs in
/// `state_dir/src/app`), an install step that appends to `install.log` in its cwd.
fn app(repo: &Path, install: &str) -> steward::ServiceDefinition {
    let mut def = service("app", "sleep 300");
    def.cwd = PathBuf::new();
    def.source = Some(SourceSpec {
        git: format!("file://{}", repo.display()),
        reference: Some("v1".to_string()),
    });
    def.install = Some(CommandSpec::Line(install.to_string()));
    def
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_source_is_cloned_and_install_runs_once_per_definition() {
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let state = tempfile::tempdir().expect("tempdir");
    let checkout = state.path().join("src/app");
    let install_log = checkout.join("install.log");
    let install = "echo installing-now; cat VERSION; echo run >> install.log";

    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let started = steward
        .define(app(repo.path(), install))
        .await
        .expect("starts");
    assert_eq!(started.status, ServiceStatus::Running);

    // installing (clone, checkout, install) → starting → started, in that order.
    let installing = next_event(&mut events, "app installing", SOON, |e| {
        e.service == "app" && e.kind == EventKind::Installing
    })
    .await;
    assert!(installing.pid.is_some(), "{installing:?}");
    let starting = seq_after(&steward, "app", EventKind::Starting, installing.seq);
    let running = seq_after(&steward, "app", EventKind::Started, starting);
    assert!(installing.seq < starting && starting < running);
    assert_eq!(seqs_of(&steward, "app", EventKind::Installing).len(), 3);

    // The clone is at `ref` v1, in state_dir/src/<id>, and is where install ran.
    assert_eq!(
        std::fs::read_to_string(checkout.join("VERSION")).expect("cloned"),
        "v1\n"
    );
    assert_eq!(lines_of(&install_log), 1);
    assert!(state.path().join("installed/app").is_file(), "marker");
    let logged: Vec<String> = steward
        .logs("app", 100)
        .await
        .expect("logs")
        .into_iter()
        .map(|l| String::from(l.line))
        .collect();
    assert!(logged.iter().any(|l| l == "installing-now"), "{logged:?}");
    assert!(logged.iter().any(|l| l == "v1"), "{logged:?}");
    // The definition keeps no cwd: the derived one is the actors' business.
    let info = steward.get("app").await.expect("get");
    assert!(info.definition.cwd.as_os_str().is_empty());

    // A crash restarts without installing again.
    let pid = started.pid.expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let again = next_event(&mut events, "app started after the crash", SOON, |e| {
        e.service == "app" && e.kind == EventKind::Started && e.pid != Some(pid)
    })
    .await;
    assert_ne!(again.pid, Some(pid));
    // A manual restart neither.
    steward.restart("app").await.expect("restart");
    assert_eq!(lines_of(&install_log), 1);
    assert_eq!(seqs_of(&steward, "app", EventKind::Installing).len(), 3);
    steward.shutdown().await.expect("shutdown");

    // Nor a new runtime over the same state directory.
    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let state_now = steward
        .define(app(repo.path(), install))
        .await
        .expect("starts");
    assert_eq!(state_now.status, ServiceStatus::Running);
    assert_eq!(lines_of(&install_log), 1);
    assert_eq!(seqs_of(&steward, "app", EventKind::Installing).len(), 0);

    // A changed install runs again (in the same checkout).
    steward.stop("app").await.expect("stop");
    steward.remove("app").await.expect("remove");
    let changed = format!("{install}; echo changed");
    steward
        .define(app(repo.path(), &changed))
        .await
        .expect("starts");
    assert_eq!(lines_of(&install_log), 2);
    assert_eq!(seqs_of(&steward, "app", EventKind::Installing).len(), 1);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_install_fails_the_start_with_its_exit_and_last_output() {
    let state = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut def = service("broken", "sleep 300");
    def.cwd = work.path().to_path_buf();
    def.install = Some(CommandSpec::Line(
        "echo attempt >> attempts; echo boom-line; exit 3".to_string(),
    ));
    let err = steward.define(def).await.expect_err("install fails");
    assert!(matches!(err, ControlError::StartFailed { .. }), "{err:?}");
    let row = steward.get("broken").await.expect("get").state;
    assert_eq!(row.status, ServiceStatus::Failed);
    assert!(row.pid.is_none());
    let reason = row.reason.expect("reason");
    assert!(reason.contains("boom-line"), "{reason}");
    assert!(reason.contains("exit code 3"), "{reason}");
    assert!(!state.path().join("installed/broken").exists(), "no marker");
    assert_eq!(
        pid_file::read(state.path(), "broken").expect("read"),
        None,
        "no pid record"
    );

    // A manual start tries again.
    steward.start("broken").await.expect_err("fails again");
    assert_eq!(lines_of(&work.path().join("attempts")), 2);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_clone_fails_the_start_and_leaves_no_checkout() {
    let state = tempfile::tempdir().expect("tempdir");
    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut def = service("nowhere", "sleep 300");
    def.cwd = PathBuf::new();
    def.source = Some(SourceSpec {
        git: format!("file://{}", state.path().join("no-such-repo").display()),
        reference: None,
    });
    let err = steward.define(def).await.expect_err("clone fails");
    let reason = err.to_string();
    assert!(reason.contains("cloning file://"), "{reason}");
    assert!(reason.contains("exit code 128"), "{reason}");
    let src = state.path().join("src");
    let left: Vec<_> = std::fs::read_dir(&src)
        .expect("src dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_install_does_not_hold_back_the_other_services() {
    let state = tempfile::tempdir().expect("tempdir");
    let gate = state.path().join("gate");
    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut slow = service("slow", "sleep 300");
    slow.cwd = state.path().to_path_buf();
    slow.install = Some(CommandSpec::Line(format!(
        "while [ ! -e {} ]; do sleep 0.05; done",
        gate.display()
    )));
    // `quick` needs `base`, so it starts one dependency level after `slow`: a start
    // that waited for each level to be spawned would wait for the install.
    let base = service("base", "sleep 300");
    let mut quick = service("quick", "sleep 300");
    quick.depends_on.push(steward::config::Dependency {
        service: "base".to_string(),
        condition: steward::config::DependencyCondition::Started,
    });
    // Defined first, so a start in definition order would wait for it too.
    steward
        .define_all(vec![slow, base, quick])
        .await
        .expect("define");
    let boot = tokio::spawn({
        let steward = steward.clone();
        async move { steward.start_all().await }
    });
    status_becomes(&steward, "quick", ServiceStatus::Running).await;
    assert_eq!(
        steward.get("slow").await.expect("get").state.status,
        ServiceStatus::Installing
    );
    std::fs::write(&gate, "").expect("open the gate");
    let results = boot.await.expect("joined").expect("start all");
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(
        steward.get("slow").await.expect("get").state.status,
        ServiceStatus::Running
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_or_kill_while_installing_ends_the_install_group() {
    let state = tempfile::tempdir().expect("tempdir");
    let steward = Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut def = service("busy", "sleep 300");
    def.cwd = state.path().to_path_buf();
    // A shell with a child in its group: the whole group must go.
    def.install = Some(CommandSpec::Line(
        "sleep 300 & echo $! > install-child.pid; wait".to_string(),
    ));
    def.autostart = false;
    steward.define(def).await.expect("define");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let start = tokio::spawn({
        let steward = steward.clone();
        async move { steward.start("busy").await }
    });
    let installing = next_event(&mut events, "busy installing", SOON, |e| {
        e.service == "busy" && e.kind == EventKind::Installing
    })
    .await;
    let pid = installing.pid.expect("install pid");
    let child_file = state.path().join("install-child.pid");
    let child: u32 = wait_for("the install's child pid", SOON, || async {
        std::fs::read_to_string(&child_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
    .await;
    assert!(
        pid_file::read(state.path(), "busy")
            .expect("read")
            .is_some(),
        "pid record"
    );

    let stopped = steward.stop("busy").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert!(stopped.pid.is_none());
    assert!(
        start.await.expect("joined").is_err(),
        "the start was cut short"
    );
    assert!(!pid_alive(pid), "install shell {pid} still runs");
    // SIGKILLed with the group; the kernel may take a moment to show it dead in /proc.
    wait_for("the install's child to be gone", SOON, || async {
        (!pid_alive(child) && group_members(pid).is_empty()).then_some(())
    })
    .await;
    assert!(!state.path().join("installed/busy").exists(), "no marker");
    assert_eq!(
        pid_file::read(state.path(), "busy").expect("read"),
        None,
        "pid record cleared"
    );

    // No marker, so the next start installs again; a kill ends that install at once.
    let start = tokio::spawn({
        let steward = steward.clone();
        async move { steward.start("busy").await }
    });
    let installing = next_event(&mut events, "busy installing again", SOON, |e| {
        e.service == "busy" && e.kind == EventKind::Installing && e.pid != Some(pid)
    })
    .await;
    let pid = installing.pid.expect("install pid");
    let killed = steward.kill("busy").await.expect("kill");
    assert_eq!(killed.status, ServiceStatus::Stopped);
    assert!(start.await.expect("joined").is_err());
    assert!(!pid_alive(pid), "install {pid} still runs");
    group_empties("the install group to be gone", pid).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_source_without_cwd_runs_its_process_probes_and_env_file_in_the_checkout() {
    // A plain path as `git` (the first test uses a file:// URL).
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let config = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "version: 1\nsettings:\n  state_dir: state\nservices:\n  app:\n    command: sleep 300\n    \
         source: {{ git: \"{}\", ref: main }}\n    install: cat VERSION\n    \
         write_env_file: true\n    env: {{ GREETING: hello }}\n    readiness:\n      \
         command: test -f VERSION\n      interval: 50ms\n",
        repo.path().display()
    );
    std::fs::write(config.path().join("services.yml"), yaml).expect("write");
    let steward = Steward::boot_dir(config.path()).await.expect("boots");
    let checkout = config.path().join("state/src/app");

    // The definition keeps "no cwd"; the process runs in the checkout.
    let info = steward.get("app").await.expect("get");
    assert!(info.definition.cwd.as_os_str().is_empty());
    let pid = info.state.pid.expect("running");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd of the process"),
        checkout
    );
    // The readiness probe only passes where VERSION is: in the checkout.
    wait_for("app ready", SOON, || async {
        steward
            .get("app")
            .await
            .ok()
            .filter(|i| i.state.ready)
            .map(|_| ())
    })
    .await;
    assert!(
        checkout.join(".env").is_file(),
        "write_env_file in the checkout"
    );
    assert_eq!(
        std::fs::read_to_string(checkout.join("VERSION")).expect("cloned"),
        "v2\n"
    );

    // Saved, it still leaves the cwd to the source.
    let saved = steward.save("app").await.expect("save");
    let text = std::fs::read_to_string(saved).expect("saved file");
    assert!(!text.contains("cwd"), "{text}");
    steward.shutdown().await.expect("shutdown");
}
