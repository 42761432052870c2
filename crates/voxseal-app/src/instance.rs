//! One app per data directory. A second launch (a `voxseal://` link clicked while the app runs)
//! hands its link to the running app and exits, so two upload workers never share one queue.
//!
//! The first app holds an exclusive lock on `<data>/app.lock` for as long as it runs (the OS
//! drops it when the process dies, so a crash leaves nothing stale) and listens on a loopback
//! port. `<data>/app.instance` (owner-only) names the port and a random token: only a process
//! that can read the data directory can hand over a link.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest message a second launch may send (a link is at most 2,048 bytes).
const MAX_MESSAGE: u64 = 4096;
/// How long either side waits for the other on the socket.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a second launch keeps trying while the first is still starting.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// What claiming the data directory found.
pub enum Claim {
    /// This process is the app for the directory; keep the guard for as long as it runs.
    First(InstanceGuard),
    /// Another app runs on the directory and took the link (or was asked to come forward).
    HandedOver,
}

/// Held by the running app: the lock and the listener's thread.
pub struct InstanceGuard {
    _lock: File,
}

/// Why the directory could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The lock or the handover file could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The other app holds the lock but did not answer.
    #[error(
        "Voxseal is already running for {0} but does not answer: close it (or end its process) \
         and start Voxseal again"
    )]
    NoAnswer(PathBuf),
}

/// Claims `data_dir` for this process. When another app holds it, hands `link` (or, without a
/// link, a request to show its window) to that app and returns [`Claim::HandedOver`]. The first
/// app calls `on_message` on a background thread with each link handed to it (`None`: just show
/// the window).
pub fn claim(
    data_dir: &Path,
    link: Option<&str>,
    on_message: impl Fn(Option<String>) + Send + 'static,
) -> Result<Claim, InstanceError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| InstanceError::Io { path, source }
    };
    voxseal_core::store::fsutil::create_private_dir(data_dir).map_err(io_err(data_dir))?;
    let lock_path = data_dir.join("app.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {
            listen(data_dir, on_message)?;
            Ok(Claim::First(InstanceGuard { _lock: lock }))
        }
        Err(TryLockError::WouldBlock) => hand_over(data_dir, link).map(|()| Claim::HandedOver),
        Err(TryLockError::Error(e)) => Err(io_err(&lock_path)(e)),
    }
}

fn info_path(data_dir: &Path) -> PathBuf {
    data_dir.join("app.instance")
}

/// Binds a loopback port, publishes it with a fresh token, and serves handovers on a thread.
fn listen(
    data_dir: &Path,
    on_message: impl Fn(Option<String>) + Send + 'static,
) -> Result<(), InstanceError> {
    let info = info_path(data_dir);
    let io_err = |source| InstanceError::Io {
        path: info.clone(),
        source,
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err)?;
    let port = listener.local_addr().map_err(io_err)?.port();
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(|e| io_err(io::Error::other(e.to_string())))?;
    let token = hex::encode(raw);
    voxseal_core::store::fsutil::write_atomic(&info, format!("{port} {token}\n").as_bytes(), true)
        .map_err(io_err)?;
    std::thread::Builder::new()
        .name("voxseal-instance".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(message) = receive(stream, &token) {
                    on_message(message);
                }
            }
        })
        .map_err(io_err)?;
    Ok(())
}

/// Reads one handover: `<token> [link]\n`. Answers `ok` and returns the message when the token
/// matches and the link is one the app accepts; anything else is answered `refused`.
fn receive(stream: TcpStream, token: &str) -> Option<Option<String>> {
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_MESSAGE))
        .read_line(&mut line)
        .ok()?;
    let message = parse_message(line.trim_end_matches(['\r', '\n']), token);
    let answer: &[u8] = if message.is_some() {
        b"ok\n"
    } else {
        b"refused\n"
    };
    (&stream).write_all(answer).ok()?;
    message
}

/// The link a handover line carries (`Some(None)`: no link, show the window), if its token is
/// `token` and its link looks like an enrollment link.
fn parse_message(line: &str, token: &str) -> Option<Option<String>> {
    let (given, link) = line.split_once(' ').unwrap_or((line, ""));
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return None;
    }
    match link {
        "" => Some(None),
        l if is_enroll_link(l) => Some(Some(l.to_owned())),
        _ => None,
    }
}

/// What the app accepts as a link at start: `voxseal://enroll?…`, at most 2,048 bytes.
pub fn is_enroll_link(link: &str) -> bool {
    link.starts_with("voxseal://enroll?") && link.len() <= 2048 && !link.contains(char::is_control)
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sends `link` to the app that holds the directory, retrying while it is still starting (its
/// lock is taken before its port is published).
fn hand_over(data_dir: &Path, link: Option<&str>) -> Result<(), InstanceError> {
    let deadline = Instant::now() + HANDOVER_WAIT;
    loop {
        if let Some(Ok(())) = try_hand_over(data_dir, link) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(InstanceError::NoAnswer(data_dir.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One attempt: `None` when the handover file is missing or unreadable.
fn try_hand_over(data_dir: &Path, link: Option<&str>) -> Option<io::Result<()>> {
    let info = std::fs::read_to_string(info_path(data_dir)).ok()?;
    let (port, token) = info.trim().split_once(' ')?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse::<u16>().ok()?));
    Some((|| {
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        writeln!(stream, "{token} {}", link.unwrap_or(""))?;
        let mut answer = String::new();
        BufReader::new(stream.take(16)).read_line(&mut answer)?;
        match answer.trim() {
            "ok" => Ok(()),
            other => Err(io::Error::other(format!(
                "the running app answered {other:?}"
            ))),
        }
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const LINK: &str = "voxseal://enroll?broker=https%3A%2F%2Fb.example&code=abc";

    fn first(dir: &Path) -> (InstanceGuard, mpsc::Receiver<Option<String>>) {
        let (tx, rx) = mpsc::channel();
        let claim = claim(dir, None, move |m| drop(tx.send(m))).unwrap();
        let Claim::First(guard) = claim else {
            panic!("the first app must get the directory");
        };
        (guard, rx)
    }

    #[test]
    fn a_second_launch_hands_its_link_to_the_running_app() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (_guard, rx) = first(&data);
        let second = claim(&data, Some(LINK), |_| {
            panic!("the second app must not listen")
        });
        assert!(matches!(second, Ok(Claim::HandedOver)));
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.as_deref(), Some(LINK));
        // Without a link the running app is asked to show itself.
        assert!(matches!(claim(&data, None, |_| ()), Ok(Claim::HandedOver)));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), None);
    }

    #[test]
    fn the_directory_is_free_again_when_the_app_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (guard, _rx) = first(dir.path());
        drop(guard);
        let (_again, _rx) = first(dir.path());
    }

    #[test]
    fn other_directories_are_other_apps() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, _ra) = first(&dir.path().join("a"));
        let (_b, _rb) = first(&dir.path().join("b"));
    }

    #[test]
    fn handovers_without_the_token_or_with_a_foreign_link_are_refused() {
        let token = "00ff".repeat(16);
        assert_eq!(
            parse_message(&format!("{token} {LINK}"), &token),
            Some(Some(LINK.into()))
        );
        assert_eq!(parse_message(&token, &token), Some(None));
        let wrong = "11ff".repeat(16);
        for line in [
            format!("{wrong} {LINK}"),
            LINK.to_owned(),
            String::new(),
            format!("{token} https://evil.example/"),
            format!("{token} voxseal://enroll?{}", "a".repeat(3000)),
        ] {
            assert_eq!(parse_message(&line, &token), None, "{line:.80}");
        }
    }

    #[test]
    fn a_wrong_token_on_the_socket_is_answered_refused_and_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (_guard, rx) = first(dir.path());
        let info = std::fs::read_to_string(info_path(dir.path())).unwrap();
        let port: u16 = info.split_whitespace().next().unwrap().parse().unwrap();
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        writeln!(s, "{} {LINK}", "0".repeat(64)).unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        assert_eq!(answer, "refused\n");
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_handover_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_guard, _rx) = first(dir.path());
        let mode = std::fs::metadata(info_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
