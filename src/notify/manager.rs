//! steward → its manager: `READY=1` once boot is done, `STATUS=` with the service counts
//! as they change, `STOPPING=1` at shutdown, `RELOADING=1` … `READY=1` around a reload, and
//! `WATCHDOG=1` at half of `WATCHDOG_USEC` when the manager asks for keep-alives.
//!
//! Sending is best-effort by design, as with `sd_notify(3)`: a manager that is gone or a
//! full socket buffer must never slow steward down or stop it, so the socket is
//! non-blocking and a failed send is logged at debug level and forgotten.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::events::EventItem;
use crate::handle::Steward;
use crate::state::ServiceStatus;

/// At most one `STATUS=` per this period: a burst of events (a boot of fifty services)
/// becomes one update with the final counts.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// A connection to the manager's notification socket (`NOTIFY_SOCKET`).
#[derive(Debug)]
pub struct ManagerNotifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Half of `WATCHDOG_USEC`, when the manager asked for keep-alives (and
    /// `WATCHDOG_PID`, if set, is steward's pid).
    watchdog: Option<Duration>,
    /// The last `STATUS=` text sent (with `READY=1` or alone), so that an unchanged one
    /// is not sent again and a changed one always is.
    last_status: Mutex<String>,
}

impl ManagerNotifier {
    /// The notifier for the manager that `NOTIFY_SOCKET` names, or `None` without one (or
    /// when the variable is not a usable socket address; that is logged).
    pub fn from_env() -> Option<ManagerNotifier> {
        let path = std::env::var("NOTIFY_SOCKET").ok()?;
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match ManagerNotifier::connect(&path, watchdog) {
            Ok(notifier) => Some(notifier),
            Err(error) => {
                warn!(notify_socket = %path, %error, "NOTIFY_SOCKET is not usable: the manager gets no notifications");
                None
            }
        }
    }

    /// A notifier for the socket `path` (`@name` for an abstract socket).
    pub fn connect(path: &str, watchdog: Option<Duration>) -> std::io::Result<ManagerNotifier> {
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None if path.starts_with('/') => SocketAddr::from_pathname(path)?,
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "expected an absolute path or @abstract-name",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(ManagerNotifier {
            socket,
            addr,
            watchdog,
            last_status: Mutex::new(String::new()),
        })
    }

    /// The keep-alive period (half of `WATCHDOG_USEC`), if the manager asked for one.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message (`KEY=VALUE` lines); failures are logged and dropped.
    pub fn send(&self, message: &str) {
        if let Err(error) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            debug!(%error, message, "notification to the manager not sent");
        }
    }

    /// `READY=1` with the current counts.
    pub fn ready(&self, steward: &Steward) {
        let line = status_line(steward);
        self.send(&format!("READY=1\nSTATUS={line}"));
        *self.last_status() = line;
    }

    /// `STATUS=` with the current counts, unless the manager has that text already.
    fn update_status(&self, steward: &Steward) {
        let line = status_line(steward);
        let mut last = self.last_status();
        if *last != line {
            self.send(&format!("STATUS={line}"));
            *last = line;
        }
    }

    fn last_status(&self) -> std::sync::MutexGuard<'_, String> {
        self.last_status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `STOPPING=1`: the shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping every service");
    }

    /// `RELOADING=1`: a reload of the config begins (`READY=1` follows when it is done).
    pub fn reloading(&self) {
        self.send("RELOADING=1\nSTATUS=reloading the configuration");
    }

    /// Starts the background work: a `STATUS=` line when the counts change (at most one
    /// per second) and, when asked for, `WATCHDOG=1` at half of `WATCHDOG_USEC`. The task
    /// ends with the runtime's event stream; abort it to stop earlier.
    pub fn spawn(self: Arc<Self>, steward: Steward) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut events = match steward.subscribe_events(None).await {
                Ok(events) => events,
                Err(error) => {
                    warn!(%error, "no STATUS= updates for the manager: cannot follow events");
                    return;
                }
            };
            let mut ping = self.watchdog.map(|every| {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            });
            let mut next_status = tokio::time::Instant::now();
            let mut dirty = false;
            loop {
                tokio::select! {
                    item = events.recv() => match item {
                        Some(EventItem::Event(_) | EventItem::Gap { .. }) => dirty = true,
                        None => return,
                    },
                    _ = tick(&mut ping) => {
                        self.send("WATCHDOG=1");
                        continue;
                    }
                    _ = tokio::time::sleep_until(next_status), if dirty => {
                        dirty = false;
                        next_status = tokio::time::Instant::now() + STATUS_EVERY;
                        self.update_status(&steward);
                    }
                }
            }
        })
    }
}

/// The next watchdog tick; never without a watchdog.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Half of `WATCHDOG_USEC` (systemd's advice), unless `WATCHDOG_PID` names another
/// process or the value is not a positive number of microseconds.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// `3 services: 2 running (2 ready), 1 failed`.
pub fn status_line(steward: &Steward) -> String {
    let (mut total, mut running, mut ready, mut failed, mut other) = (0, 0, 0, 0, 0);
    steward.tables().each_state(|s| {
        total += 1;
        match s.status {
            ServiceStatus::Running => running += 1,
            ServiceStatus::Failed => failed += 1,
            _ => other += 1,
        }
        if s.ready {
            ready += 1;
        }
    });
    let mut line = format!(
        "{total} service{}: {running} running ({ready} ready)",
        if total == 1 { "" } else { "s" }
    );
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    if other > 0 {
        line.push_str(&format!(", {other} other"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_pings_at_half_the_period_for_this_pid_only() {
        assert_eq!(
            watchdog_interval(Some("2000000"), None, 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            watchdog_interval(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(watchdog_interval(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn a_relative_socket_path_is_refused() {
        assert!(ManagerNotifier::connect("run/notify", None).is_err());
    }

    #[test]
    fn messages_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let notifier =
            ManagerNotifier::connect(path.to_str().expect("utf-8 path"), None).expect("connect");
        notifier.send("READY=1");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("steward-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let receiver = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let notifier = ManagerNotifier::connect(&format!("@{name}"), None).expect("connect");
        notifier.stopping();
        let n = receiver.recv(&mut buf).expect("recv");
        assert!(buf[..n].starts_with(b"STOPPING=1\n"));
    }
}
