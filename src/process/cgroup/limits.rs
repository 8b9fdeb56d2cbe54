//! `limits` (DESIGN §2, §11): which of the `memory`, `cpu` and `pids` controllers steward's
//! subtree can use, enabling them where steward may, writing a service's limits to its
//! leaf before its process execs, and reading the kernel's OOM kills back
//! (`memory.events`).
//!
//! A controller reaches a service's leaf only when every cgroup above it enables it in
//! `cgroup.subtree_control`. steward enables controllers only in cgroups it created (its
//! subtree, `<own>/steward-<pid>-<n>`), and those the subtree can have are the ones its own
//! cgroup (`<own>`, not steward's) passes down. The one exception, following systemd's
//! delegation rules: when `<own>` is **delegated** to steward — its directory carries
//! systemd's `trusted.delegate` / `user.delegate` mark (a unit with `Delegate=yes`), or it
//! is the root of a cgroup namespace of its own (a container) — and steward is the only
//! process in it, steward moves itself into a leaf `<own>/steward.main` (the
//! no-internal-processes rule forbids a cgroup that enables controllers from holding
//! processes) and enables the controllers `<own>` has in `<own>/cgroup.subtree_control`.
//! Nothing else outside the subtree is ever written, and no other process is ever moved.
//!
//! Whatever cannot be enabled is recorded with the reason, so a service with limits still
//! runs and its state, the boot log and `steward validate --strict` say
//! `limits not enforced: <why>`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::Limits;

/// The controllers `limits` use, in the order of the key's fields.
pub const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The leaf steward moves itself into when it enables controllers in a delegated cgroup.
pub const SELF_LEAF: &str = "steward.main";

/// `cpu.max`'s period: a quota of `cores × 100000` µs per 100 ms.
pub const CPU_PERIOD_USEC: u64 = 100_000;

/// The cgroup namespace inode of the host (`PROC_CGROUP_INIT_INO`): a process in any other
/// one is in a container with a cgroup namespace of its own.
const INIT_CGROUP_NS: u64 = 0xEFFF_FFFB;

/// Why a controller does not reach the leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `<own>` does not have it (its `cgroup.controllers` lists these).
    NotAvailable { at: String, controllers: String },
    /// `<own>` has it but does not pass it down, and steward may not change that.
    NotPassedDown { at: String, why: String },
    /// Writing a control file failed.
    Failed { why: String },
}

impl Missing {
    fn words(&self, names: &str, plural: bool) -> String {
        let (noun, verb) = match plural {
            true => ("controllers", "are"),
            false => ("controller", "is"),
        };
        match self {
            Missing::NotAvailable { at, controllers } => {
                format!(
                    "the {names} {noun} {verb} not available in {at} (controllers: {controllers})"
                )
            }
            Missing::NotPassedDown { at, why } => {
                format!("the {names} {noun} {verb} not enabled for the children of {at} ({why})")
            }
            Missing::Failed { why } => format!("the {names} {noun} could not be enabled: {why}"),
        }
    }
}

/// Which controllers a runtime's leaves have, and why the others are missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controllers {
    enabled: BTreeSet<&'static str>,
    missing: Vec<(&'static str, Missing)>,
}

impl Controllers {
    /// True when the leaves have `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.enabled.contains(controller)
    }

    /// Why some of `limits` cannot be enforced (`None`: all can, or none is set). The
    /// controllers missing for the same reason are named together: `the memory and pids
    /// controllers are not available in /sys/fs/cgroup (controllers: hugetlb)`.
    pub fn why_not(&self, limits: &Limits) -> Option<String> {
        let wanted = limits.controllers();
        let mut groups: Vec<(Vec<&str>, &Missing)> = Vec::new();
        for (controller, missing) in &self.missing {
            if !wanted.contains(controller) {
                continue;
            }
            match groups.iter_mut().find(|(_, m)| *m == missing) {
                Some((names, _)) => names.push(controller),
                None => groups.push((vec![controller], missing)),
            }
        }
        if groups.is_empty() {
            return None;
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(names, missing)| {
                let list = match names.as_slice() {
                    [one] => (*one).to_string(),
                    [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                    [] => String::new(),
                };
                missing.words(&list, names.len() > 1)
            })
            .collect();
        Some(parts.join("; "))
    }
}

/// What [`plan`] found for one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The subtree has it: enable it for the leaves.
    Enable,
    /// `<own>` is delegated and steward alone in it: move steward into [`SELF_LEAF`], enable
    /// it in `<own>`, then for the leaves.
    MoveSelfAndEnable,
    /// It cannot reach the leaves.
    Skip(Missing),
}

/// The words of a list file (`cgroup.controllers`): its names, or `none`.
fn listed(text: &str) -> String {
    let names: Vec<&str> = text.split_whitespace().collect();
    match names.is_empty() {
        true => "none".to_string(),
        false => names.join(" "),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A cgroup's path as the words show it (without the trailing `/` a mount root has).
fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    match text.len() > 1 {
        true => text.trim_end_matches('/').to_string(),
        false => text,
    }
}

/// Decides, for each of [`CONTROLLERS`], how it reaches the leaves of a subtree below
/// `own` that has `reaching` (the subtree's `cgroup.controllers`, or for one not yet
/// created `own/cgroup.subtree_control`), reading only `own/cgroup.controllers` and
/// `own/cgroup.procs`. `delegated` says whether `own` is steward's to change
/// ([`is_delegated`]); `self_pid` is steward's pid.
pub(crate) fn plan(
    own: &Path,
    reaching: &str,
    delegated: bool,
    self_pid: u32,
) -> Vec<(&'static str, Step)> {
    let reaching: BTreeSet<&str> = reaching.split_whitespace().collect();
    let own_text = read(&own.join("cgroup.controllers"));
    let own_has: BTreeSet<&str> = own_text.split_whitespace().collect();
    let others: Vec<u32> = read(&own.join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|pid| *pid != self_pid)
        .collect();
    CONTROLLERS
        .into_iter()
        .map(|controller| {
            let step = if reaching.contains(controller) {
                Step::Enable
            } else if !own_has.contains(controller) {
                Step::Skip(Missing::NotAvailable {
                    at: shown(own),
                    controllers: listed(&own_text),
                })
            } else if !delegated {
                Step::Skip(Missing::NotPassedDown {
                    at: shown(own),
                    why: "it is not delegated to steward, so steward leaves its cgroup.subtree_control alone".to_string(),
                })
            } else if !others.is_empty() {
                Step::Skip(Missing::NotPassedDown {
                    at: shown(own),
                    why: format!(
                        "it holds other processes ({}), which steward does not move",
                        others
                            .iter()
                            .take(5)
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            } else {
                Step::MoveSelfAndEnable
            };
            (controller, step)
        })
        .collect()
}

/// Carries out [`plan`]: moves steward into `own/steward.main` when a delegated `own`
/// must enable a controller, enables what it can in `own` (only then) and in `subtree`,
/// and returns what the leaves have.
pub fn enable(own: &Path, subtree: &Path, delegated: bool, self_pid: u32) -> Controllers {
    let reaching = read(&subtree.join("cgroup.controllers"));
    let steps = plan(own, &reaching, delegated, self_pid);
    let mut controllers = Controllers::default();
    let must_move = steps.iter().any(|(_, s)| *s == Step::MoveSelfAndEnable);
    let moved = match must_move {
        true => move_self(own, self_pid),
        false => Ok(()),
    };
    for (controller, step) in steps {
        let result = match step {
            Step::Skip(missing) => Err(missing),
            Step::Enable => write_control(subtree, controller),
            Step::MoveSelfAndEnable => moved
                .clone()
                .map_err(|why| Missing::Failed { why })
                .and_then(|()| write_control(own, controller))
                .and_then(|()| write_control(subtree, controller)),
        };
        match result {
            Ok(()) => {
                controllers.enabled.insert(controller);
            }
            Err(missing) => controllers.missing.push((controller, missing)),
        }
    }
    controllers
}

/// What [`enable`] would give a new subtree below `own`, without writing anything (for
/// `steward validate`).
pub fn preview(own: &Path, delegated: bool, self_pid: u32) -> Controllers {
    let reaching = read(&own.join("cgroup.subtree_control"));
    let mut controllers = Controllers::default();
    for (controller, step) in plan(own, &reaching, delegated, self_pid) {
        match step {
            Step::Skip(missing) => controllers.missing.push((controller, missing)),
            Step::Enable | Step::MoveSelfAndEnable => {
                controllers.enabled.insert(controller);
            }
        }
    }
    controllers
}

/// `+controller` to `cgroup/cgroup.subtree_control`.
fn write_control(cgroup: &Path, controller: &str) -> Result<(), Missing> {
    let file = cgroup.join("cgroup.subtree_control");
    std::fs::write(&file, format!("+{controller}")).map_err(|e| Missing::Failed {
        why: format!("writing +{controller} to {}: {e}", file.display()),
    })
}

/// Moves steward (the whole process) into `own/steward.main`.
fn move_self(own: &Path, self_pid: u32) -> Result<(), String> {
    let leaf = own.join(SELF_LEAF);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", leaf.display())),
    }
    let procs = leaf.join("cgroup.procs");
    std::fs::write(&procs, self_pid.to_string())
        .map_err(|e| format!("cannot move steward into {}: {e}", leaf.display()))?;
    tracing::info!(cgroup = %leaf.display(), "moved steward into a leaf of its delegated cgroup to enable controllers");
    Ok(())
}

/// Whether `own` is delegated to steward: systemd's delegation mark on the directory, or
/// steward at the root of a cgroup namespace that is not the host's.
pub fn is_delegated(own: &Path, mount: &Path) -> bool {
    let ns_inode = std::fs::read_link("/proc/self/ns/cgroup")
        .ok()
        .and_then(|link| namespace_inode(&link.to_string_lossy()));
    delegation(has_delegate_mark(own), own == mount, ns_inode)
}

/// [`is_delegated`] on what it read.
pub(crate) fn delegation(marked: bool, at_mount_root: bool, ns_inode: Option<u64>) -> bool {
    marked || (at_mount_root && ns_inode.is_some_and(|inode| inode != INIT_CGROUP_NS))
}

/// `cgroup:[4026531835]` → 4026531835.
fn namespace_inode(link: &str) -> Option<u64> {
    link.strip_prefix("cgroup:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// systemd marks a delegated cgroup with the extended attribute `trusted.delegate` (system
/// units) or `user.delegate` (user units) set to `1`.
#[allow(unsafe_code)]
fn has_delegate_mark(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    ["trusted.delegate", "user.delegate"]
        .into_iter()
        .any(|name| {
            let Ok(name) = std::ffi::CString::new(name) else {
                return false;
            };
            let mut value = [0u8; 8];
            // SAFETY: both names are NUL-terminated C strings that outlive the call, and the
            // kernel writes at most `value.len()` bytes into `value`.
            let n = unsafe {
                nix::libc::getxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            n > 0 && value[..n as usize].starts_with(b"1")
        })
}

/// Writes `limits` to the leaf at `leaf` for the controllers it has (`max` for those not
/// set, so a limit removed by a reload is lifted). An error names the file.
pub fn apply(leaf: &Path, limits: &Limits, controllers: &Controllers) -> std::io::Result<()> {
    let mut writes: Vec<(&str, String)> = Vec::new();
    if controllers.has("memory") {
        let max = limits.memory.map_or("max".to_string(), |b| b.to_string());
        writes.push(("memory.max", max));
        // Without swap the limit is what it says: past it the OOM killer ends a process
        // instead of the service swapping slowly on.
        if leaf.join("memory.swap.max").exists() {
            let swap = limits.memory.map_or("max", |_| "0");
            writes.push(("memory.swap.max", swap.to_string()));
        }
    }
    if controllers.has("cpu") {
        writes.push(("cpu.max", cpu_max(limits.cpu_millicores)));
    }
    if controllers.has("pids") {
        let max = limits.pids.map_or("max".to_string(), |p| p.to_string());
        writes.push(("pids.max", max));
    }
    for (file, value) in writes {
        let path = leaf.join(file);
        std::fs::write(&path, &value).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write `{value}` to {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// `cpu.max`'s text: `150000 100000` for 1.5 cores, `max 100000` for none.
pub fn cpu_max(millicores: Option<u32>) -> String {
    match millicores {
        Some(m) => format!(
            "{} {CPU_PERIOD_USEC}",
            u64::from(m) * CPU_PERIOD_USEC / 1000
        ),
        None => format!("max {CPU_PERIOD_USEC}"),
    }
}

/// The `oom_kill` count of a `memory.events` text (`None` when it has none).
pub fn oom_kills(memory_events: &str) -> Option<u64> {
    memory_events.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The `oom_kill` count of the cgroup at `leaf` (`None` without the memory controller).
pub fn oom_kills_of(leaf: &Path) -> Option<u64> {
    oom_kills(&std::fs::read_to_string(leaf.join("memory.events")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fake cgroup directory (a tempdir, no kernel behind it): the files [`plan`] and
    /// [`enable`] read and write.
    fn fake_cgroup(dir: &Path, controllers: &str, procs: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("cgroup.controllers"), controllers).expect("write");
        std::fs::write(dir.join("cgroup.subtree_control"), "").expect("write");
        std::fs::write(dir.join("cgroup.procs"), procs).expect("write");
        dir.to_path_buf()
    }

    const ME: u32 = 4242;

    fn limits(memory: bool, cpu: bool, pids: bool) -> Limits {
        Limits {
            memory: memory.then_some(512 << 20),
            cpu_millicores: cpu.then_some(1500),
            pids: pids.then_some(32),
        }
    }

    #[test]
    fn controllers_the_subtree_has_are_enabled_for_its_leaves_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let own = fake_cgroup(root.path(), "cpu memory pids hugetlb", "4242\n999\n");
        let subtree = fake_cgroup(&own.join("steward-1-0"), "memory pids", "");
        let controllers = enable(&own, &subtree, false, ME);
        assert!(controllers.has("memory") && controllers.has("pids"));
        assert!(!controllers.has("cpu"));
        // Written in the subtree (ours); own's file untouched, no process moved.
        assert_eq!(read(&subtree.join("cgroup.subtree_control")), "+pids");
        assert_eq!(read(&own.join("cgroup.subtree_control")), "");
        assert!(!own.join(SELF_LEAF).exists());
        assert_eq!(controllers.why_not(&limits(true, false, true)), None);
        let why = controllers.why_not(&limits(true, true, true)).expect("cpu");
        assert_eq!(
            why,
            format!(
                "the cpu controller is not enabled for the children of {} (it is not delegated to steward, so steward leaves its cgroup.subtree_control alone)",
                own.display()
            )
        );
    }

    #[test]
    fn a_hierarchy_without_the_controllers_names_what_it_has() {
        let root = tempfile::tempdir().expect("tempdir");
        let own = fake_cgroup(root.path(), "hugetlb\n", "");
        let subtree = fake_cgroup(&own.join("steward-1-0"), "", "");
        // Even delegated: what `own` lacks cannot be enabled by anyone below it.
        let controllers = enable(&own, &subtree, true, ME);
        assert_eq!(controllers, {
            let mut c = Controllers::default();
            for name in CONTROLLERS {
                c.missing.push((
                    name,
                    Missing::NotAvailable {
                        at: own.display().to_string(),
                        controllers: "hugetlb".into(),
                    },
                ));
            }
            c
        });
        assert_eq!(
            controllers.why_not(&limits(true, false, false)).as_deref(),
            Some(
                format!(
                    "the memory controller is not available in {} (controllers: hugetlb)",
                    own.display()
                )
                .as_str()
            )
        );
        assert_eq!(
            controllers.why_not(&limits(true, true, true)),
            Some(format!(
                "the memory, cpu and pids controllers are not available in {} (controllers: hugetlb)",
                own.display()
            ))
        );
        assert_eq!(controllers.why_not(&Limits::default()), None);
        let empty = fake_cgroup(&root.path().join("bare"), "", "");
        let none = enable(&empty, &subtree, false, ME);
        assert!(
            none.why_not(&limits(false, false, true))
                .is_some_and(|w| w.ends_with("(controllers: none)"))
        );
        assert!(!own.join(SELF_LEAF).exists(), "nothing to enable: no move");
    }

    #[test]
    fn a_delegated_cgroup_holding_only_steward_moves_it_and_enables() {
        let root = tempfile::tempdir().expect("tempdir");
        let own = fake_cgroup(root.path(), "cpu memory pids", "4242\n");
        let subtree = fake_cgroup(&own.join("steward-1-0"), "", "");
        let steps = plan(&own, "", true, ME);
        assert_eq!(
            preview(&own, true, ME).why_not(&limits(true, true, true)),
            None
        );
        assert!(steps.iter().all(|(_, s)| *s == Step::MoveSelfAndEnable));
        let controllers = enable(&own, &subtree, true, ME);
        for name in CONTROLLERS {
            assert!(controllers.has(name), "{name}");
        }
        assert_eq!(read(&own.join(SELF_LEAF).join("cgroup.procs")), "4242");
        // A real cgroupfs keeps every `+name`; the fake keeps the last write.
        assert_eq!(read(&own.join("cgroup.subtree_control")), "+pids");
        assert_eq!(read(&subtree.join("cgroup.subtree_control")), "+pids");
    }

    #[test]
    fn a_delegated_cgroup_with_other_processes_is_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let own = fake_cgroup(root.path(), "memory", "4242\n77\n");
        let subtree = fake_cgroup(&own.join("steward-1-0"), "", "");
        let controllers = enable(&own, &subtree, true, ME);
        assert!(!controllers.has("memory"));
        assert!(!own.join(SELF_LEAF).exists());
        assert_eq!(read(&own.join("cgroup.subtree_control")), "");
        let why = controllers
            .why_not(&limits(true, false, false))
            .expect("why");
        assert!(why.contains("holds other processes (77)"), "{why}");
    }

    #[test]
    fn a_failed_move_is_the_reason() {
        let root = tempfile::tempdir().expect("tempdir");
        let own = fake_cgroup(root.path(), "memory", "");
        let subtree = fake_cgroup(&own.join("steward-1-0"), "", "");
        // A file where the leaf's directory would go: the move cannot happen.
        std::fs::write(own.join(SELF_LEAF), "").expect("write");
        let controllers = enable(&own, &subtree, true, ME);
        assert!(!controllers.has("memory"));
        let why = controllers
            .why_not(&limits(true, false, false))
            .expect("why");
        assert!(
            why.starts_with("the memory controller could not be enabled: cannot move steward"),
            "{why}"
        );
        assert_eq!(read(&own.join("cgroup.subtree_control")), "");
    }

    #[test]
    fn delegation_is_the_mark_or_a_namespace_root_of_its_own() {
        assert!(delegation(true, false, Some(INIT_CGROUP_NS)));
        assert!(delegation(false, true, Some(4026532000)));
        assert!(
            !delegation(false, true, Some(INIT_CGROUP_NS)),
            "the host's root"
        );
        assert!(
            !delegation(false, false, Some(4026532000)),
            "below the root"
        );
        assert!(!delegation(false, true, None));
        assert_eq!(namespace_inode("cgroup:[4026531835]"), Some(4026531835));
        assert_eq!(namespace_inode("net:[1]"), None);
    }

    #[test]
    fn limits_are_written_for_the_controllers_the_leaf_has() {
        let root = tempfile::tempdir().expect("tempdir");
        let leaf = root.path();
        std::fs::write(leaf.join("memory.swap.max"), "max").expect("write");
        let mut controllers = Controllers::default();
        controllers.enabled.extend(["memory", "pids"]);
        apply(leaf, &limits(true, true, true), &controllers).expect("written");
        assert_eq!(read(&leaf.join("memory.max")), (512u64 << 20).to_string());
        assert_eq!(read(&leaf.join("memory.swap.max")), "0");
        assert_eq!(read(&leaf.join("pids.max")), "32");
        assert!(
            !leaf.join("cpu.max").exists(),
            "no cpu controller: not written"
        );
        apply(leaf, &Limits::default(), &controllers).expect("lifted");
        assert_eq!(read(&leaf.join("memory.max")), "max");
        assert_eq!(read(&leaf.join("memory.swap.max")), "max");
        assert_eq!(read(&leaf.join("pids.max")), "max");
        let gone = apply(
            &leaf.join("missing"),
            &limits(true, false, false),
            &controllers,
        )
        .expect_err("no such leaf");
        assert!(gone.to_string().contains("memory.max"), "{gone}");
    }

    #[test]
    fn cpu_max_is_a_quota_per_100ms() {
        assert_eq!(cpu_max(Some(1500)), "150000 100000");
        assert_eq!(cpu_max(Some(250)), "25000 100000");
        assert_eq!(cpu_max(Some(10)), "1000 100000");
        assert_eq!(cpu_max(None), "max 100000");
    }

    #[test]
    fn memory_events_give_the_oom_kill_count() {
        let text = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills(text), Some(2));
        assert_eq!(oom_kills("low 0\noom 1\n"), None);
        assert_eq!(oom_kills("oom_kill x\n"), None);
        assert_eq!(oom_kills(""), None);
        assert_eq!(oom_kills_of(Path::new("/nonexistent/leaf")), None);
    }
}
