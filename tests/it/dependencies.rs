//! `depends_on`: start order by condition (started, healthy, completed), independent
//! branches in parallel, dependents stopped first, cascade refusal, failures that name the
//! dependency, and validation of targets and cycles.

use std::time::Duration;

use steward::config::{Dependency, DependencyCondition, ProbeCheck, ProbeSpec, RestartPolicy};
use steward::events::EventKind;
use steward::{ControlError, ServiceDefinition, ServiceStatus, Steward};

use crate::support::*;

fn needs(def: &mut ServiceDefinition, service: &str, condition: DependencyCondition) {
    def.depends_on.push(Dependency {
        service: service.to_string(),
        condition,
    });
}

/// A database stand-in: becomes healthy only once its marker file exists, which it creates
/// itself after printing a few lines (slow to become healthy).
fn slow_db(dir: &std::path::Path) -> ServiceDefinition {
    let marker = dir.join("db-ready");
    let mut db = service(
        "db",
        &format!(
            "for i in 1 2 3 4 5; do echo warming $i; sleep 0.05; done; touch {}; exec sleep 300",
            marker.display()
        ),
    );
    let mut probe = ProbeSpec::new(ProbeCheck::Command {
        command: steward::CommandSpec::Argv(vec![
            "test".into(),
            "-e".into(),
            marker.display().to_string(),
        ]),
    });
    probe.interval = Duration::from_millis(50);
    probe.failure_threshold = 1000;
    db.readiness = Some(probe);
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_level_chain_starts_in_condition_order_and_stops_dependents_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let steward = Steward::spawn().await.expect("runtime");
    let mut migrate = service("migrate", "echo migrating; exit 0");
    migrate.restart = RestartPolicy::Temporary;
    needs(&mut migrate, "db", DependencyCondition::Healthy);
    let mut api = service("api", "sleep 300");
    needs(&mut api, "db", DependencyCondition::Healthy);
    needs(&mut api, "migrate", DependencyCondition::Completed);
    let mut web = service("web", "sleep 300");
    needs(&mut web, "api", DependencyCondition::Started);
    let docs = service("docs", "sleep 300");
    // Defined in an order that is not the start order.
    steward
        .define_all(vec![web, api, migrate, slow_db(dir.path()), docs])
        .await
        .expect("define");
    let results = steward.start_all().await.expect("start all");
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");

    let db_ready = first_seq(&steward, "db", EventKind::Ready);
    let migrate_started = first_seq(&steward, "migrate", EventKind::Started);
    let migrate_exited = first_seq(&steward, "migrate", EventKind::Exited);
    let api_started = first_seq(&steward, "api", EventKind::Started);
    let web_started = first_seq(&steward, "web", EventKind::Started);
    assert!(db_ready < migrate_started, "migrate waits for db healthy");
    assert!(
        migrate_exited < api_started,
        "api waits for migrate completed"
    );
    assert!(api_started < web_started, "web waits for api started");
    // An independent branch did not wait for the chain.
    assert!(first_seq(&steward, "docs", EventKind::Started) < db_ready);
    let waiting = steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .find(|e| e.service == "api" && e.kind == EventKind::Starting)
        .and_then(|e| e.cause)
        .expect("api starting cause");
    assert!(
        waiting.contains("waiting for db: healthy, migrate: completed"),
        "{waiting}"
    );

    steward.stop_all().await.expect("stop all");
    let stopped = |s: &str| first_seq(&steward, s, EventKind::Stopped);
    assert!(stopped("web") < stopped("api"));
    assert!(stopped("api") < stopped("db"));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_one_service_starts_what_it_needs_and_says_so() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut cache = service("cache", "sleep 300");
    cache.autostart = false;
    let mut app = service("app", "sleep 300");
    app.autostart = false;
    needs(&mut app, "cache", DependencyCondition::Started);
    steward.define_all(vec![cache, app]).await.expect("define");
    let state = steward.start("app").await.expect("start app");
    assert_eq!(state.status, ServiceStatus::Running);
    let cause = steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .find(|e| e.service == "cache" && e.kind == EventKind::Starting)
        .and_then(|e| e.cause)
        .expect("cache was started");
    assert_eq!(cause, "needed by app");

    // Stopping the dependency by hand is refused while app runs ...
    match steward.stop("cache").await {
        Err(ControlError::DependentsRunning { dependents, .. }) => {
            assert_eq!(dependents, vec!["app".to_string()])
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ... and a cascade stops app first.
    let results = steward.stop_cascade("cache").await.expect("cascade");
    let order: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(order, vec!["app", "cache"]);
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dependency_fails_its_dependent_with_a_reason_naming_it() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut job = service("job", "exit 4");
    job.restart = RestartPolicy::Temporary;
    let mut after = service("after", "sleep 300");
    needs(&mut after, "job", DependencyCondition::Completed);
    let mut broken = service("broken", "sleep 300");
    broken.required_env = vec!["STEWARD_TEST_SURELY_UNSET".into()];
    let mut user = service("user", "sleep 300");
    needs(&mut user, "broken", DependencyCondition::Healthy);
    steward
        .define_all(vec![job, after, broken, user])
        .await
        .expect("define");
    let results = steward.start_all().await.expect("start all");
    let result = |id: &str| {
        results
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.clone())
            .expect("result")
    };
    match result("after") {
        Err(ControlError::DependencyFailed {
            dependency, reason, ..
        }) => {
            assert_eq!(dependency, "job");
            assert!(reason.contains("exit code 4"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let state = steward.get("user").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Failed);
    let reason = state.reason.expect("reason");
    assert!(reason.starts_with("dependency broken failed"), "{reason}");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_targets_and_cycles_are_refused() {
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(service("ghosts", "sleep 300"))
        .await
        .expect("define ghosts");
    let mut lonely = service("lonely", "sleep 300");
    needs(&mut lonely, "ghost", DependencyCondition::Started);
    match steward.define(lonely).await {
        Err(ControlError::InvalidDefinition(errors)) => {
            let m = errors.to_string();
            assert!(m.contains("`ghost`, which is not defined"), "{m}");
            assert!(m.contains("did you mean `ghosts`?"), "{m}");
        }
        other => panic!("unexpected {other:?}"),
    }
    steward.stop("ghosts").await.expect("stop ghosts");
    steward.remove("ghosts").await.expect("remove ghosts");
    let mut a = service("a", "sleep 300");
    needs(&mut a, "b", DependencyCondition::Started);
    let mut b = service("b", "sleep 300");
    needs(&mut b, "c", DependencyCondition::Started);
    let mut c = service("c", "sleep 300");
    needs(&mut c, "a", DependencyCondition::Started);
    match steward.define_all(vec![a, b, c]).await {
        Err(ControlError::InvalidDefinition(errors)) => {
            let m = errors.to_string();
            assert!(m.contains("a → b → c → a"), "{m}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(steward.list().await.expect("list").is_empty());
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_service_that_waits_for_its_dependencies_cancels_the_wait() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut never = service("never-ready", "sleep 300");
    let mut probe = ProbeSpec::new(ProbeCheck::Command {
        command: steward::CommandSpec::Line("false".into()),
    });
    probe.interval = Duration::from_millis(50);
    probe.failure_threshold = 1000;
    never.readiness = Some(probe);
    let mut waiter = service("waiter", "sleep 300");
    waiter.autostart = false;
    needs(&mut waiter, "never-ready", DependencyCondition::Healthy);
    steward
        .define_all(vec![never, waiter])
        .await
        .expect("define");
    steward.start_all().await.expect("start all");
    let root = steward.root();
    // Start without awaiting the reply: it comes only when the wait ends.
    let start = tokio::spawn(async move {
        root.call(
            |reply| steward::RootMsg::Control {
                id: "waiter".into(),
                action: steward::ControlAction::Start,
                reply,
            },
            None,
        )
        .await
    });
    status_becomes(&steward, "waiter", ServiceStatus::Starting).await;
    let state = steward.stop("waiter").await.expect("stop");
    assert_eq!(state.status, ServiceStatus::Stopped);
    let answered = start.await.expect("join");
    assert!(
        format!("{answered:?}").contains("waiting for its dependencies"),
        "{answered:?}"
    );
    steward.shutdown().await.expect("shutdown");
}
