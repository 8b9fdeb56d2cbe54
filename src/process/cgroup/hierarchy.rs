//! Finding the cgroup v2 hierarchy steward may create cgroups in, and where steward itself
//! sits in it.
//!
//! The unified hierarchy is the mount of type `cgroup2` in `/proc/self/mountinfo`:
//! `/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one (v1
//! controllers beside a controller-less v2 tree), the namespace's own root in a container
//! with a cgroup namespace. steward's own cgroup is the `0::` line of `/proc/self/cgroup`
//! (under systemd: its unit's cgroup, the one `Delegate=yes` hands over). Nothing here
//! writes anything: [`find`] only says where steward *would* create its subtree, or why it
//! cannot.

use std::path::{Path, PathBuf};

/// Where steward stands in the unified hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The mount point of the `cgroup2` file system.
    pub mount: PathBuf,
    /// steward's own cgroup as a directory under `mount`.
    pub own: PathBuf,
}

/// Finds the unified hierarchy and steward's own cgroup in it, or says in words why there
/// is none (the reason shown in the status and the boot log).
pub fn find() -> Result<Hierarchy, String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    locate(&cgroup, &mountinfo)
}

/// [`find`] on the two files' contents.
pub(crate) fn locate(cgroup: &str, mountinfo: &str) -> Result<Hierarchy, String> {
    let own = cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("steward is in no cgroup v2 hierarchy (/proc/self/cgroup has no `0::` line)")?;
    // A process whose cgroup was removed shows " (deleted)"; nothing can be created there.
    if own.ends_with(" (deleted)") {
        return Err(format!("steward's own cgroup {own} was removed"));
    }
    let mut mounts = mountinfo.lines().filter_map(cgroup2_mount).peekable();
    if mounts.peek().is_none() {
        return Err("no cgroup v2 hierarchy is mounted (cgroup v1 only)".into());
    }
    for (root, point) in mounts {
        // The mount shows the hierarchy from `root` down; steward's path must lie below it.
        let relative = if root == "/" {
            Some(own.trim_start_matches('/'))
        } else {
            own.strip_prefix(root.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(|rest| rest.trim_start_matches('/'))
        };
        if let Some(relative) = relative {
            let dir = Path::new(&point).join(relative);
            return Ok(Hierarchy {
                mount: PathBuf::from(point),
                own: dir,
            });
        }
    }
    Err(format!(
        "steward's own cgroup {own} is not visible in any mounted cgroup v2 hierarchy"
    ))
}

/// `(root, mount point)` of a `cgroup2` line of mountinfo (octal escapes decoded).
fn cgroup2_mount(line: &str) -> Option<(String, String)> {
    let (before, after) = line.split_once(" - ")?;
    if after.split_whitespace().next()? != "cgroup2" {
        return None;
    }
    let mut fields = before.split_whitespace();
    let root = fields.nth(3)?;
    let point = fields.next()?;
    Some((unescape(root), unescape(point)))
}

/// Decodes mountinfo's `\040`-style octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn a_hybrid_host_uses_the_unified_mount() {
        let found = locate("4:memory:/x\n0::/\n", HYBRID).expect("found");
        assert_eq!(found.mount, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(found.own, PathBuf::from("/sys/fs/cgroup/unified/"));
    }

    #[test]
    fn a_systemd_unit_sits_below_the_mount() {
        let mountinfo = "35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let found = locate("0::/system.slice/steward.service\n", mountinfo).expect("found");
        assert_eq!(
            found.own,
            PathBuf::from("/sys/fs/cgroup/system.slice/steward.service")
        );
    }

    #[test]
    fn a_mount_of_a_subtree_maps_the_path_below_its_root() {
        let mountinfo = "35 24 0:30 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let found = locate("0::/kubepods/pod1/c1\n", mountinfo).expect("found");
        assert_eq!(found.own, PathBuf::from("/sys/fs/cgroup/c1"));
        let elsewhere = locate("0::/kubepods/pod10\n", mountinfo).expect_err("not below");
        assert!(elsewhere.contains("not visible"), "{elsewhere}");
    }

    #[test]
    fn v1_only_and_missing_lines_say_why() {
        let v1 = "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert!(locate("0::/\n", v1).expect_err("v1").contains("v1 only"));
        assert!(
            locate("4:memory:/\n", HYBRID)
                .expect_err("no 0::")
                .contains("no `0::` line")
        );
        assert!(
            locate("0::/gone (deleted)\n", HYBRID)
                .expect_err("deleted")
                .contains("removed")
        );
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let mountinfo = "35 24 0:30 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
        let found = locate("0::/a\n", mountinfo).expect("found");
        assert_eq!(found.own, PathBuf::from("/mnt/cg two/a"));
    }
}
