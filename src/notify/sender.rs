//! Whose datagram is it: the sender check of the per-service notify socket, like systemd's
//! `NotifyAccess=all` limited to the service's own processes.
//!
//! The kernel stamps every datagram with the sender's pid (`SO_PASSCRED` on the socket),
//! so the check cannot be fooled by what the datagram says. A sender belongs to the service
//! when it is the main process, is in the main process's process group (every service
//! process leads its own group), or descends from the main process (a `setsid` child of a
//! shell line). Everything else — another service, a stranger who found the socket name in
//! `/proc/*/environ` — is ignored.
//!
//! One limit, shared with systemd before cgroups: the sender must still exist when steward
//! reads the datagram (a process that sends and exits at once may be gone). A cgroup check
//! (where steward places services in cgroups) can extend [`sender_belongs_to_service`].

/// Parent chains longer than this are not followed (a loop guard; real trees are shallow).
const MAX_DEPTH: usize = 256;

/// True when the process `sender` belongs to the service whose main process is
/// `main_pid` (see the module doc for the rule).
pub fn sender_belongs_to_service(sender: u32, main_pid: u32) -> bool {
    if sender == 0 || main_pid == 0 {
        return false;
    }
    if sender == main_pid {
        return true;
    }
    let Some(first) = stat_of(sender) else {
        return false;
    };
    if first.pgrp == main_pid {
        return true;
    }
    let mut parent = first.ppid;
    for _ in 0..MAX_DEPTH {
        if parent == main_pid {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        match stat_of(parent) {
            Some(stat) => parent = stat.ppid,
            None => return false,
        }
    }
    false
}

/// The two fields of `/proc/PID/stat` the check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    pgrp: u32,
}

fn stat_of(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `pid (comm) state ppid pgrp …`: the command may hold spaces and parentheses, so the
/// fields are read after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { ppid, pgrp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(
            parse_stat("42 (my (odd) cmd) S 7 42 42 0 -1"),
            Some(Stat { ppid: 7, pgrp: 42 })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_belongs_to_itself_and_its_parent_but_not_to_a_stranger() {
        let me = std::process::id();
        assert!(sender_belongs_to_service(me, me));
        let parent = stat_of(me).expect("own stat").ppid;
        assert!(sender_belongs_to_service(me, parent), "a descendant");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        assert!(
            !sender_belongs_to_service(me, child.id()),
            "a parent does not belong to its child"
        );
        assert!(sender_belongs_to_service(child.id(), me), "a child does");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!sender_belongs_to_service(0, me));
        assert!(!sender_belongs_to_service(me, 0));
    }
}
