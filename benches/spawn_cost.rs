//! What a spawn costs on std's two paths, as steward's memory grows (benchmark finding 2).
//!
//! std spawns with `posix_spawn` (a `CLONE_VM | CLONE_VFORK` clone: no copy of the
//! parent's page tables) unless the command has a `pre_exec` closure, which forces `fork`
//! and `exec` (a copy of every page-table entry of the parent, then copy-on-write faults
//! in the parent). steward needs a `pre_exec` for `PR_SET_PDEATHSIG`. This program holds R
//! MiB of touched heap (standing in for steward's resident memory) and times, for
//! `/bin/true` with steward's settings (piped stdio, own process group, cleared
//! environment), the median of 300 spawns on each path, plus the cost of the "helper"
//! alternative: `posix_spawn` of a tiny program that sets the death signal and execs the
//! service (`setpriv --pdeathsig KILL`, from util-linux, stands in for it; skipped when
//! absent). `spawn()` is the time until `Command::spawn` returns (after the child's exec);
//! `spawn→exit` adds running `true` and reaping it.
//!
//! The last column is steward's own spawn (`steward::process::spawn`, which clones with
//! `CLONE_VM | CLONE_VFORK | CLONE_PIDFD` and sets the death signal itself; same settings,
//! plus `PR_SET_PDEATHSIG`), waited for through its pidfd.
//!
//! The column `+ cgroup` is the same spawn placed in a cgroup before exec (a service in
//! cgroup mode: the parent opens the leaf's `cgroup.procs`, the child writes `0` to it);
//! it is left out where no writable cgroup v2 hierarchy is found.
//!
//! A last line holds 4,000 open descriptors instead (a steward with 1,000 running
//! services has four each): a child that inherits the descriptor table closes them all at
//! exec, unless it keeps only a few (steward's spawn slots, see `src/process/vfork.rs`).
//!
//! A measuring program, not a criterion bench: `cargo bench --bench spawn_cost`.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const SPAWNS: usize = 300;
const SETPRIV: &str = "/usr/bin/setpriv";

fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

/// Median microseconds of `spawn()` and of spawn → exit.
fn measure(make: &dyn Fn() -> Command) -> (f64, f64) {
    let mut spawned = Vec::with_capacity(SPAWNS);
    let mut exited = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let mut command = make();
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn");
        spawned.push(started.elapsed().as_secs_f64() * 1e6);
        child.wait().expect("wait");
        exited.push(started.elapsed().as_secs_f64() * 1e6);
    }
    spawned.sort_by(f64::total_cmp);
    exited.sort_by(f64::total_cmp);
    (spawned[SPAWNS / 2], exited[SPAWNS / 2])
}

/// Median microseconds of `steward::process::spawn` (into `leaf` when given) and of
/// spawn → exit.
fn measure_steward(
    runtime: &tokio::runtime::Runtime,
    leaf: Option<&steward::process::cgroup::Leaf>,
) -> (f64, f64) {
    let plan = steward::process::SpawnPlan::new(
        vec!["/bin/true".to_string()],
        "/".into(),
        vec![("PATH".to_string(), "/usr/bin:/bin".to_string())],
    );
    let mut spawned = Vec::with_capacity(SPAWNS);
    let mut exited = Vec::with_capacity(SPAWNS);
    runtime.block_on(async {
        for _ in 0..SPAWNS {
            let started = Instant::now();
            let mut child = steward::process::spawn::spawn_placed(
                &plan,
                steward::process::spawn::Pipes::ALL,
                leaf,
            )
            .expect("spawn");
            spawned.push(started.elapsed().as_secs_f64() * 1e6);
            child.wait().await.expect("wait");
            exited.push(started.elapsed().as_secs_f64() * 1e6);
        }
    });
    spawned.sort_by(f64::total_cmp);
    exited.sort_by(f64::total_cmp);
    (spawned[SPAWNS / 2], exited[SPAWNS / 2])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // steward reserves its spawn slots at its first spawn, early in a boot.
    measure_steward(&runtime, None);
    let tracking = steward::process::cgroup::ProcessTracking::detect(true, None);
    let leaf = tracking.subtree().and_then(|s| s.leaf("bench").ok());
    if leaf.is_none() {
        println!("(no cgroup column: {})", tracking.status());
    }
    let mut held: Vec<Vec<u8>> = Vec::new();
    println!("median of {SPAWNS} spawns of /bin/true; µs for spawn() / spawn→exit");
    for mib in [0usize, 16, 64, 256] {
        while held.len() < mib {
            // Touched, so it is resident like steward's own memory.
            let mut block = vec![0u8; 1 << 20];
            for byte in block.iter_mut().step_by(4096) {
                *byte = 1;
            }
            held.push(block);
        }
        let fork = measure(&|| {
            let mut command = command("/bin/true", &[]);
            // SAFETY: the closure does nothing; it only makes std take its fork + exec
            // path, which is what any real `pre_exec` (steward's prctl) costs.
            #[allow(unsafe_code)]
            unsafe {
                command.pre_exec(|| Ok(()));
            }
            command
        });
        let spawn = measure(&|| command("/bin/true", &[]));
        print!(
            "{mib:>4} MiB held: fork+exec {:>7.0} / {:>7.0}   posix_spawn {:>5.0} / {:>5.0}",
            fork.0, fork.1, spawn.0, spawn.1
        );
        if Path::new(SETPRIV).exists() {
            let helper = measure(&|| command(SETPRIV, &["--pdeathsig", "KILL", "/bin/true"]));
            print!("   helper (setpriv) {:>5.0} / {:>5.0}", helper.0, helper.1);
        }
        let ours = measure_steward(&runtime, None);
        print!("   steward clone {:>5.0} / {:>5.0}", ours.0, ours.1);
        if let Some(leaf) = &leaf {
            let placed = measure_steward(&runtime, Some(leaf));
            print!("   + cgroup {:>5.0} / {:>5.0}", placed.0, placed.1);
        }
        println!();
    }
    drop(held);
    let descriptors: Vec<_> = (0..2000)
        .map(|_| nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe"))
        .collect();
    let spawn = measure(&|| command("/bin/true", &[]));
    let ours = measure_steward(&runtime, None);
    print!(
        "4000 fds open: posix_spawn {:>5.0} / {:>5.0}   steward clone {:>5.0} / {:>5.0}",
        spawn.0, spawn.1, ours.0, ours.1
    );
    if let Some(leaf) = &leaf {
        let placed = measure_steward(&runtime, Some(leaf));
        print!("   + cgroup {:>5.0} / {:>5.0}", placed.0, placed.1);
    }
    println!();
    drop(descriptors);
    tracking.release();
}
