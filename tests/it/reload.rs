//! Reload and save: a changed config directory is applied as a difference (new services
//! started, removed ones stopped, changed ones restarted, unchanged ones keep their pid),
//! a dry run only plans, a broken config changes nothing, and a saved definition is
//! diffed like any file-defined service.

use std::path::Path;

use steward::config::PlanAction;
use steward::{ControlError, ServiceStatus, Steward};

use crate::support::*;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

const BASE: &str = "version: 1
settings:
  state_dir: .state
services:
  keep:
    command: sleep 300
  gone:
    command: sleep 300
  changed:
    command: sleep 300
    env: { MODE: one }
";

const NEXT: &str = "version: 1
settings:
  state_dir: .state
services:
  keep:
    command: sleep 300
  changed:
    command: sleep 300
    env: { MODE: two }
  fresh:
    command: sleep 300
";

async fn pid(steward: &Steward, id: &str) -> Option<u32> {
    steward.get(id).await.ok().and_then(|i| i.state.pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_only_the_difference() {
    let dir = tempfile::tempdir().expect("dir");
    write(dir.path(), "services.yml", BASE);
    let config = steward::config::load_dir(dir.path()).expect("config");
    let steward = Steward::boot(config).await.expect("boot");
    let keep = pid(&steward, "keep").await.expect("keep runs");
    let gone = pid(&steward, "gone").await.expect("gone runs");
    let changed = pid(&steward, "changed").await.expect("changed runs");
    // A service defined at run time without a file is kept by reloads.
    steward
        .define(service("adhoc", "sleep 300"))
        .await
        .expect("define");

    write(dir.path(), "services.yml", NEXT);
    let plan = steward.reload(true).await.expect("dry run");
    let action = |id: &str| {
        plan.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| (e.action, e.why.clone()))
            .unwrap_or_else(|| panic!("no entry for {id}"))
    };
    assert_eq!(action("keep").0, PlanAction::Keep);
    assert_eq!(action("gone").0, PlanAction::Stop);
    assert_eq!(action("changed").0, PlanAction::Restart);
    assert!(
        action("changed").1.contains("env"),
        "{}",
        action("changed").1
    );
    assert_eq!(action("fresh").0, PlanAction::Start);
    assert_eq!(action("adhoc").0, PlanAction::Keep);
    // The dry run changed nothing.
    assert_eq!(pid(&steward, "changed").await, Some(changed));
    assert!(steward.get("fresh").await.is_err());

    steward.reload(false).await.expect("reload");
    assert_eq!(
        pid(&steward, "keep").await,
        Some(keep),
        "unchanged keeps its pid"
    );
    assert!(steward.get("gone").await.is_err(), "removed from the files");
    assert!(!pid_alive(gone));
    let new_changed = pid(&steward, "changed").await.expect("changed runs again");
    assert_ne!(new_changed, changed);
    assert!(!pid_alive(changed));
    let info = steward.get("changed").await.expect("get");
    assert_eq!(
        info.definition.env.get("MODE").map(String::as_str),
        Some("two")
    );
    status_becomes(&steward, "fresh", ServiceStatus::Running).await;
    assert!(pid(&steward, "adhoc").await.is_some());

    // A second reload of the same files is a no-op.
    let again = steward.reload(false).await.expect("reload again");
    assert!(
        again.entries.iter().all(|e| e.action == PlanAction::Keep),
        "{again:?}"
    );
    assert_eq!(pid(&steward, "changed").await, Some(new_changed));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_changes_nothing_and_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    write(dir.path(), "services.yml", BASE);
    let config = steward::config::load_dir(dir.path()).expect("config");
    let steward = Steward::boot(config).await.expect("boot");
    let keep = pid(&steward, "keep").await;
    write(
        dir.path(),
        "services.d/bad.yml",
        "version: 1\nservices:\n  bad:\n    comand: x\n",
    );
    let err = steward.reload(false).await.expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("bad.yml:4:5"), "{message}");
    assert!(message.contains("command"), "{message}");
    // The refusal keeps each problem's place, not only its words.
    match &err {
        ControlError::InvalidDefinition(errors) => {
            let problem = errors.0.first().expect("one problem");
            assert!(
                problem
                    .file
                    .as_ref()
                    .is_some_and(|f| f.ends_with("services.d/bad.yml")),
                "{problem:?}"
            );
            assert_eq!((problem.line, problem.column), (4, 5), "{problem:?}");
            assert!(
                problem
                    .hint
                    .as_deref()
                    .is_some_and(|h| h.contains("command")),
                "{problem:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pid(&steward, "keep").await, keep);
    assert_eq!(steward.list().await.expect("list").len(), 3);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_service_survives_a_reload_unchanged() {
    let dir = tempfile::tempdir().expect("dir");
    write(dir.path(), "services.yml", "version: 1\nservices: {}\n");
    let config = steward::config::load_dir(dir.path()).expect("config");
    let steward = Steward::boot(config).await.expect("boot");
    let mut def = service("saved", "sleep 300");
    def.cwd = dir.path().to_path_buf();
    steward.define(def).await.expect("define");
    let before = pid(&steward, "saved").await;
    let path = steward.save("saved").await.expect("save");
    assert_eq!(path, dir.path().join("services.d/saved.yml"));
    let plan = steward.reload(false).await.expect("reload");
    assert!(
        plan.entries.iter().all(|e| e.action == PlanAction::Keep),
        "{plan:?}"
    );
    assert_eq!(pid(&steward, "saved").await, before);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_reload_without_a_config_directory_say_so() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("unsaved", "sleep 300");
    def.autostart = false;
    steward.define(def).await.expect("define");
    let err = steward.save("unsaved").await.expect_err("no config dir");
    assert!(matches!(err, ControlError::NoConfigDir { .. }), "{err:?}");
    assert!(err.to_string().contains("no config directory"), "{err}");
    let err = steward.reload(true).await.expect_err("no config dir");
    assert!(matches!(err, ControlError::NoConfigDir { .. }), "{err:?}");
    assert!(matches!(
        steward.save("nope").await,
        Err(ControlError::NotFound(_))
    ));
    steward.shutdown().await.expect("shutdown");
}
