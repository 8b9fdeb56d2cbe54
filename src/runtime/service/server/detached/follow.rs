//! The task that follows a detached service's daemon: it rereads the pid file until it
//! names a live process started after the launcher, and, when asked to, polls until that
//! process is gone. Its notices carry the generation of the phase that started it.

use std::path::PathBuf;
use std::time::Duration;

use ractor::ActorRef;

use super::DetachedNotice;
use crate::process::daemon;
use crate::process::pid_file::PidRecord;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::server::ServerMsg;

/// What a follow task watches.
pub(super) struct Follow {
    pub(super) server: ActorRef<ServerMsg>,
    pub(super) run: Generation,
    pub(super) service: String,
    /// The pid file to reread until it names the daemon.
    pub(super) path: Option<PathBuf>,
    pub(super) known: Option<PidRecord>,
    pub(super) not_before: Option<u64>,
    /// Report the known daemon's disappearance (else stop once it is found).
    pub(super) watch_exit: bool,
    pub(super) poll: Duration,
}

/// Rereads the pid file until it names the daemon (→ `DaemonFound`), then, with
/// `watch_exit`, polls until the daemon is gone (→ `DaemonGone`).
pub(super) async fn follow(mut f: Follow) {
    let notify = |notice| f.server.cast(ServerMsg::Detached(notice)).is_ok();
    loop {
        match (&f.known, &f.path) {
            (Some(record), _) => {
                if !daemon::is_running(record) {
                    notify(DetachedNotice::DaemonGone { run: f.run });
                    return;
                }
            }
            (None, Some(path)) => {
                if let Ok(record) = daemon::find(&f.service, path, f.not_before) {
                    let found = DetachedNotice::DaemonFound {
                        run: f.run,
                        record: record.clone(),
                    };
                    if !notify(found) || !f.watch_exit {
                        return;
                    }
                    f.known = Some(record);
                }
            }
            (None, None) => return,
        }
        tokio::time::sleep(f.poll).await;
    }
}
