//! Running a service as another user (`user:` and `group:`, DESIGN §2 and §10).
//!
//! The user and its groups are looked up in steward, before the fork: the lookups read
//! `/etc/passwd` and `/etc/group` (or NSS), which allocates and takes locks, and neither is
//! allowed in the forked child. The child then only makes raw credential syscalls
//! (`setgroups`, `setgid`, `setuid`) and, after them, sets `PR_SET_PDEATHSIG`: the kernel
//! clears the parent-death signal when a process changes its credentials, so the order is
//! what keeps a switched-user service bound to die with steward.
//!
//! Only root may switch users. A steward that is not root refuses a `user:` other than its
//! own before anything is spawned, with a reason that says what to change.

use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

/// A user to run a service as, looked up in steward before the fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The login name (for `USER` and `LOGNAME`).
    pub name: String,
    /// The user id the child switches to.
    pub uid: u32,
    /// The primary group id (the user's own, or `group:`).
    pub gid: u32,
    /// Supplementary groups, as `initgroups` would set them; resolved in steward because
    /// `initgroups` reads the group database and is not allowed after fork.
    pub groups: Vec<u32>,
    /// The home directory (for `HOME`).
    pub home: PathBuf,
}

impl ResolvedUser {
    /// The variables a login as this user would set: `HOME`, `USER` and `LOGNAME`.
    pub fn identity_env(&self) -> [(String, String); 3] {
        [
            ("HOME".to_string(), self.home.to_string_lossy().into_owned()),
            ("USER".to_string(), self.name.clone()),
            ("LOGNAME".to_string(), self.name.clone()),
        ]
    }

    /// True when running as this user needs no credential change from `euid`/`egid`.
    pub fn is_current(&self, euid: u32, egid: u32) -> bool {
        self.uid == euid && self.gid == egid
    }
}

/// Looks up `user` (a name or a numeric uid) and `group` (a name or a numeric gid; default
/// the user's primary group), and checks that this steward may switch to them.
///
/// `Err` says what to fix: an unknown user or group, or a steward that is not root and
/// would have to switch to someone else.
pub fn resolve_user(user: &str, group: Option<&str>) -> Result<ResolvedUser, String> {
    let resolved = lookup_user(user, group)?;
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    match switch_refusal(euid, egid, &resolved) {
        Some(reason) => Err(reason),
        None => Ok(resolved),
    }
}

/// Looks the user and group up without checking whether steward may switch to them.
pub fn lookup_user(user: &str, group: Option<&str>) -> Result<ResolvedUser, String> {
    let user = user.trim();
    let found = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(user),
    }
    .map_err(|e| format!("cannot look up user `{user}`: {e}"))?;
    let Some(found) = found else {
        return Err(format!("unknown user `{user}`: create it or fix `user`"));
    };
    let gid = match group.map(str::trim) {
        None => found.gid,
        Some(group) => {
            let looked_up = match group.parse::<u32>() {
                Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
                Err(_) => Group::from_name(group),
            }
            .map_err(|e| format!("cannot look up group `{group}`: {e}"))?;
            match looked_up {
                Some(g) => g.gid,
                None => return Err(format!("unknown group `{group}`: create it or fix `group`")),
            }
        }
    };
    let groups = supplementary_groups(&found, gid)?;
    Ok(ResolvedUser {
        name: found.name,
        uid: found.uid.as_raw(),
        gid: gid.as_raw(),
        groups,
        home: found.dir,
    })
}

/// The user's groups from the group database (what `initgroups` would set), plus `gid`.
fn supplementary_groups(user: &User, gid: Gid) -> Result<Vec<u32>, String> {
    let name = std::ffi::CString::new(user.name.as_bytes())
        .map_err(|_| format!("user name `{}` contains a NUL byte", user.name))?;
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, gid)
        .map_err(|e| format!("cannot list the groups of user `{}`: {e}", user.name))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    Ok(groups)
}

/// Why a steward running as `euid`/`egid` cannot run a service as `user`, or `None` when
/// it can (it is root, or it already is that user).
pub fn switch_refusal(euid: u32, egid: u32, user: &ResolvedUser) -> Option<String> {
    if euid == 0 || user.is_current(euid, egid) {
        return None;
    }
    let who = if user.uid == euid {
        format!("`{}` with group {}", user.name, user.gid)
    } else {
        format!("`{}`", user.name)
    };
    Some(format!(
        "steward runs as uid {euid} and cannot switch to {who}: run steward as root or remove `user`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn someone(uid: u32, gid: u32) -> ResolvedUser {
        ResolvedUser {
            name: "postgres".into(),
            uid,
            gid,
            groups: vec![gid],
            home: "/var/lib/postgresql".into(),
        }
    }

    #[test]
    fn root_is_found_by_name_and_by_number() {
        let by_name = lookup_user("root", None).expect("root exists");
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert!(by_name.groups.contains(&0));
        let by_number = lookup_user("0", Some("0")).expect("uid 0 exists");
        assert_eq!(by_number.name, "root");
        assert_eq!(
            by_name.identity_env()[1],
            ("USER".to_string(), "root".to_string())
        );
    }

    #[test]
    fn unknown_user_and_group_say_what_to_fix() {
        assert_eq!(
            lookup_user("steward-no-such-user", None),
            Err("unknown user `steward-no-such-user`: create it or fix `user`".to_string())
        );
        assert_eq!(
            lookup_user("root", Some("steward-no-such-group")),
            Err("unknown group `steward-no-such-group`: create it or fix `group`".to_string())
        );
    }

    #[test]
    fn only_root_may_switch_to_someone_else() {
        assert_eq!(switch_refusal(0, 0, &someone(105, 110)), None);
        assert_eq!(switch_refusal(1000, 1000, &someone(1000, 1000)), None);
        assert_eq!(
            switch_refusal(1000, 1000, &someone(105, 110)).as_deref(),
            Some(
                "steward runs as uid 1000 and cannot switch to `postgres`: run steward as root or remove `user`"
            )
        );
        assert!(
            switch_refusal(1000, 1000, &someone(1000, 110))
                .is_some_and(|r| r.contains("with group 110"))
        );
    }
}
