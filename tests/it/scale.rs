//! Many services (issue 16): a boot's definitions are made a slice per root message, so
//! requests are answered while a long boot is under way, and the boot keeps its order,
//! its reservations and its dependency semantics across slices.
//!
//! The interleaving is asserted through the root's mailbox order, not through time: on a
//! current-thread runtime, `tokio::join!` sends the `DefineAll` and the request before the
//! root runs at all, so the request is queued behind the first slice and ahead of the
//! continuation the root sends itself. With more services than one slice may hold
//! ([`DEFINE_CHUNK`]), the request must see some, but not all, of them.

use steward::config::{Dependency, DependencyCondition};
use steward::runtime::root::DEFINE_CHUNK;
use steward::{ControlError, EventKind, ServiceDefinition, ServiceStatus, Steward};

use crate::support::{SOON, first_seq, service, wait_for};

/// More services than one slice holds, with room for the cross-slice cases below.
const TOTAL: usize = DEFINE_CHUNK + 44;

/// `TOTAL` services `b0`, `b1`, … that are not started by a boot.
fn batch() -> Vec<ServiceDefinition> {
    (0..TOTAL)
        .map(|i| {
            let mut def = service(&format!("b{i}"), "sleep 300");
            def.autostart = false;
            def
        })
        .collect()
}

fn needs(def: &mut ServiceDefinition, target: &str) {
    def.depends_on.push(Dependency {
        service: target.to_string(),
        condition: DependencyCondition::Started,
    });
}

/// The ids of every service, in the order the runtime lists them (its definition order).
async fn listed_ids(steward: &Steward) -> Vec<String> {
    let services = steward.list().await.expect("list");
    services.into_iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn a_status_asked_during_a_long_define_all_is_answered_before_it_completes() {
    let steward = Steward::spawn().await.expect("runtime");
    let defs = batch();
    let ids: Vec<String> = defs.iter().map(|d| d.id.clone()).collect();
    let (defined, status) = tokio::join!(steward.define_all(defs), steward.status());
    defined.expect("define_all");
    let seen = status.expect("status").services;
    assert!(
        seen > 0 && seen < TOTAL,
        "the status was answered between slices: it saw {seen} of {TOTAL} services"
    );
    // Every service is defined, in the batch's order.
    let listed = listed_ids(&steward).await;
    assert_eq!(listed, ids);
    assert_eq!(steward.status().await.expect("status").services, TOTAL);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_define_during_a_boot_may_not_take_a_reserved_id_but_may_depend_on_one() {
    let steward = Steward::spawn().await.expect("runtime");
    let last = format!("b{}", TOTAL - 1);
    let mut taken = service(&last, "sleep 1");
    taken.tags = vec!["intruder".to_string()];
    let mut after = service("after", "sleep 300");
    after.autostart = false;
    needs(&mut after, &last);
    let (defined, refused, accepted) = tokio::join!(
        steward.define_all(batch()),
        steward.define(taken),
        steward.define(after)
    );
    defined.expect("the boot completes");
    match refused {
        Err(ControlError::AlreadyExists(id)) => assert_eq!(id, last),
        other => panic!("a reserved id was not refused: {other:?}"),
    }
    let accepted = accepted.expect("a definition may depend on a reserved service");
    assert_eq!(accepted.status, ServiceStatus::Pending);
    // The boot's own definition holds the id, and `after` came between two slices.
    let info = steward.get(&last).await.expect("get");
    assert!(info.state.tags.is_empty(), "{:?}", info.state.tags);
    let listed = listed_ids(&steward).await;
    let at = listed.iter().position(|id| id == "after").expect("after");
    assert!(at > 0 && at < TOTAL, "after is at {at} of {}", listed.len());
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boot_split_in_slices_starts_in_dependency_order_across_them() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut defs = batch();
    let (first, late, last) = (0, DEFINE_CHUNK + 4, TOTAL - 1);
    // `first` is in the first slice, `late` and `last` in a later one, and `late` needs
    // `last`, defined after it (a forward reference within the batch).
    for i in [first, late, last] {
        defs[i].autostart = true;
    }
    needs(&mut defs[last], &format!("b{first}"));
    needs(&mut defs[late], &format!("b{last}"));
    // More autostart services than start at once (the fan-out's window), all running.
    let mut more: Vec<String> = Vec::new();
    for (i, def) in defs.iter_mut().enumerate().skip(1).step_by(5).take(60) {
        if i != late && i != last {
            def.autostart = true;
            more.push(def.id.clone());
        }
    }
    steward.define_all(defs).await.expect("define_all");
    let results = steward.start_all().await.expect("start_all");
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(results.len(), more.len() + 3);
    let (first, late, last) = (format!("b{first}"), format!("b{late}"), format!("b{last}"));
    wait_for("the chain to run", SOON, || async {
        let states = steward.list().await.ok()?;
        let running = |id: &String| {
            states
                .iter()
                .any(|s| &s.id == id && s.status == ServiceStatus::Running)
        };
        ([&first, &late, &last].into_iter().all(running) && more.iter().all(running)).then_some(())
    })
    .await;
    let started = |id: &str| first_seq(&steward, id, EventKind::Started);
    assert!(started(&first) < started(&last), "{last} waits for {first}");
    assert!(started(&last) < started(&late), "{late} waits for {last}");
    steward.shutdown().await.expect("shutdown");
}
