//! The two Linux calls the emulator needs that std does not offer: entering a network namespace
//! (setns) and creating a TUN device (TUNSETIFF). Everything unsafe in this package is here.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// Moves the calling thread into the network namespace `name` (`/var/run/netns/<name>`, as made
/// by `ip netns add`). Sockets and TUN devices the thread creates afterwards belong to it.
pub fn enter_netns(name: &str) -> io::Result<()> {
    let ns = File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: setns takes a valid open descriptor of a namespace file (held open by `ns` for the
    // duration of the call) and a namespace type; it only changes the calling thread's namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the TUN device `name` (no packet information header) in the calling thread's network
/// namespace; it exists as long as the returned file is open. Reads return one IP packet.
pub fn create_tun(name: &str) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // struct ifreq: the interface name (IFNAMSIZ = 16 bytes, NUL-terminated), then a union whose
    // first member here is the flags (short); 40 bytes in all on Linux.
    let mut ifreq = [0u8; 40];
    let bytes = name.as_bytes();
    if bytes.len() >= 16 || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a TUN name has at most 15 bytes",
        ));
    }
    ifreq[..bytes.len()].copy_from_slice(bytes);
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as i16;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq; `ifreq` is a 40-byte buffer laid out as
    // one (name, then flags), alive and exclusively borrowed for the duration of the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, ifreq.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}
