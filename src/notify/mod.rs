//! systemd's notification protocol (`sd_notify`), the direction steward speaks it: to its
//! own manager.
//!
//! The protocol is one datagram per message on the Unix socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract name when it starts with `@`), each a few `KEY=VALUE` lines:
//! `READY=1`, `STATUS=…`, `STOPPING=1`, `RELOADING=1`, `WATCHDOG=1`. systemd's
//! `Type=notify` units use it to learn when a daemon is up, what it is doing, and that it
//! still makes progress (`WatchdogSec=`, passed in `WATCHDOG_USEC`).
//!
//! steward is such a daemon under systemd (`deploy/systemd/steward.service`): see
//! [`manager::ManagerNotifier`]. Its own socket is never passed on to the services
//! ([`MANAGER_VARS`] are removed from what they inherit).
//!
//! The other direction, service → steward, is [`service`]: a service with
//! `readiness: { notify: true }` or `watchdog:` gets a socket of its own in
//! `NOTIFY_SOCKET`; [`message`] reads what it says and [`sender`] checks who said it.

pub mod manager;
pub mod message;
pub mod sender;
pub mod service;

pub use manager::ManagerNotifier;
pub use message::NotifyMessage;
pub use sender::sender_belongs_to_service;
pub use service::ServiceNotifySocket;

/// The variables by which a manager talks to steward; services never inherit them.
pub const MANAGER_VARS: &[&str] = &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];
