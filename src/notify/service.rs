//! service → steward: the notify socket steward opens for one service (`readiness:
//! { notify: true }` or `watchdog:`), and the datagrams read from it.
//!
//! **Where it lives.** An abstract Unix socket (Linux), named
//! `@steward/<steward pid>/<n>/<service id>` (`n` counts the sockets this steward opened):
//! nothing on disk to clean up or to leave behind after a crash, no 108-byte path limit
//! to hit under a deep `state_dir`, and no file permissions to arrange for a service that
//! runs as another `user:`. The service gets the name in `NOTIFY_SOCKET` (with the `@`,
//! as systemd writes abstract names). Anyone in the same network namespace can send to
//! an abstract socket, which is why every datagram's sender is checked
//! ([`super::sender`]); a service that moves itself into another network namespace cannot
//! reach it. The socket exists while the service's actors do: it closes (and the name is
//! free) when the service is removed or its actors restart.
//!
//! **Reading.** `SO_PASSCRED` makes the kernel attach the sender's pid to each datagram.
//! The control buffer has room for the credentials only, so descriptors a sender passes
//! (`FDSTORE=1`) are discarded by the kernel, never leaked into steward. A datagram longer
//! than [`MAX_DATAGRAM`] is dropped.

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};
use tokio::io::Interest;

pub use super::message::MAX_DATAGRAM;

/// Sockets opened so far by this process: part of each name, so two runtimes in one
/// process (or a service redefined while its old socket closes) never collide.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// The longest abstract name (`sun_path` is 108 bytes, the first one the NUL).
const MAX_NAME: usize = 107;

/// One datagram as received: who sent it and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sender's pid as the kernel saw it (0 when unknown: not in steward's pid
    /// namespace).
    pub pid: u32,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
}

/// A service's notify socket, bound and ready to read.
#[derive(Debug)]
pub struct ServiceNotifySocket {
    socket: tokio::net::UnixDatagram,
    /// The value of `NOTIFY_SOCKET` for the service: `@steward/…`.
    address: String,
}

impl ServiceNotifySocket {
    /// Opens the socket for `service`. Must run inside the tokio runtime.
    pub fn open(service: &str) -> std::io::Result<ServiceNotifySocket> {
        let mut last_error = None;
        // A name taken by someone else (it is guessable) just moves on to the next number.
        for _ in 0..8 {
            let n = OPENED.fetch_add(1, Ordering::Relaxed);
            let name = socket_name(std::process::id(), n, service);
            match bind(&name) {
                Ok(socket) => {
                    return Ok(ServiceNotifySocket {
                        socket,
                        address: format!("@{name}"),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free socket name")))
    }

    /// The value of `NOTIFY_SOCKET` (`@steward/4242/0/web`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The next datagram. Datagrams that are too long are skipped (logged at debug).
    pub async fn recv(&self) -> std::io::Result<Datagram> {
        loop {
            let received = self
                .socket
                .async_io(Interest::READABLE, || receive(&self.socket))
                .await?;
            if let Some(datagram) = received {
                return Ok(datagram);
            }
        }
    }
}

/// `steward/<pid>/<n>/<service>`, the service id cut (at a character boundary) so the
/// name fits an abstract address.
fn socket_name(pid: u32, n: u64, service: &str) -> String {
    let mut name = format!("steward/{pid}/{n}/");
    for c in service.chars() {
        if name.len() + c.len_utf8() > MAX_NAME {
            break;
        }
        name.push(c);
    }
    name
}

fn bind(name: &str) -> std::io::Result<tokio::net::UnixDatagram> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let socket = UnixDatagram::bind_addr(&addr)?;
    setsockopt(&socket, sockopt::PassCred, &true).map_err(std::io::Error::from)?;
    socket.set_nonblocking(true)?;
    tokio::net::UnixDatagram::from_std(socket)
}

/// One `recvmsg`: `Ok(None)` for a datagram that is skipped (too long).
fn receive(socket: &tokio::net::UnixDatagram) -> std::io::Result<Option<Datagram>> {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_TRUNC | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut pid = 0;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmCredentials(creds) = cmsg {
                pid = u32::try_from(creds.pid()).unwrap_or(0);
            }
        }
    }
    let len = msg.bytes;
    if len > MAX_DATAGRAM || msg.flags.contains(MsgFlags::MSG_TRUNC) {
        tracing::debug!(pid, len, "notify datagram too long; dropped");
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    Ok(Some(Datagram { pid, text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_an_abstract_address() {
        assert_eq!(socket_name(42, 3, "web"), "steward/42/3/web");
        let long = "x".repeat(300);
        let name = socket_name(4_194_304, u64::MAX, &long);
        assert_eq!(name.len(), MAX_NAME);
    }

    #[tokio::test]
    async fn a_datagram_arrives_with_the_senders_pid() {
        let socket = ServiceNotifySocket::open("unit-test").expect("open");
        assert!(
            socket.address().starts_with("@steward/"),
            "{}",
            socket.address()
        );
        let name = socket.address().trim_start_matches('@');
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let sender = UnixDatagram::unbound().expect("unbound");
        sender
            .send_to_addr(b"READY=1\nSTATUS=up", &addr)
            .expect("send");
        let datagram = socket.recv().await.expect("recv");
        assert_eq!(datagram.pid, std::process::id());
        assert_eq!(datagram.text, "READY=1\nSTATUS=up");

        // A datagram over the limit is skipped; the next one is read.
        sender
            .send_to_addr(&vec![b'x'; MAX_DATAGRAM + 10], &addr)
            .expect("send long");
        sender.send_to_addr(b"WATCHDOG=1", &addr).expect("send");
        let datagram = socket.recv().await.expect("recv");
        assert_eq!(datagram.text, "WATCHDOG=1");
    }
}
