//! TCP forwarding across the link, so that programs run unchanged: in namespace A, a listener on
//! 127.0.0.1:PORT forwards each connection to B's link address; in namespace B, a listener on the
//! link address forwards it to 127.0.0.1:PORT. Every byte crosses the emulated link once, carried
//! by a TCP connection from A to B that the kernel runs over the TUN devices (retransmissions
//! and all). A port can also be exposed in the emulator's own namespace (a program that cannot
//! run inside A, such as the desktop app under WebDriver): its listener there connects from
//! inside A, so its connections cross the link the same way.

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;

/// Listens on `listen` inside namespace `listen_in` (`None`: the calling thread's) and forwards
/// each connection to `target`, connecting from inside namespace `ns`. Returns once the listener
/// is bound.
pub fn forward(
    listen_in: Option<String>,
    ns: String,
    listen: SocketAddr,
    target: SocketAddr,
) -> io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let entered = listen_in.map_or(Ok(()), |n| crate::sys::enter_netns(&n));
        let listener = entered.and_then(|()| TcpListener::bind(listen));
        let listener = match listener {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        for client in listener.incoming().flatten() {
            let ns = ns.clone();
            thread::spawn(move || {
                // A thread spawned here starts in this thread's namespace; enter it anyway, so
                // the upstream socket's namespace does not depend on that.
                let upstream =
                    crate::sys::enter_netns(&ns).and_then(|()| TcpStream::connect(target));
                match upstream {
                    Ok(upstream) => pipe(client, upstream),
                    Err(_) => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            });
        }
    });
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("listener thread ended")))
}

/// Copies both ways until each side has closed its half; with VOXSEAL_NETEM_LOG set, logs each
/// connection's bytes and duration to stderr when it ends.
fn pipe(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let started = std::time::Instant::now();
    let peer = b.peer_addr().ok();
    let one = thread::spawn(move || copy_half(a, b));
    let back = copy_half(b2, a2);
    let there = one.join().unwrap_or(0);
    if std::env::var_os("VOXSEAL_NETEM_LOG").is_some() {
        eprintln!(
            "voxseal-netem: connection to {peer:?}: {there} bytes there, {back} back, {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

fn copy_half(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let n = io::copy(&mut from, &mut to).unwrap_or(0);
    let _ = to.shutdown(Shutdown::Write);
    n
}

/// The loopback address a forwarded port is reached at in namespace A, and served at in B.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}
