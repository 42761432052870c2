//! `voxseal-netem`: an emulated home uplink between two network namespaces (see the crate docs).
//!
//!   voxseal-netem --name vx1 --profile dsl [--up-kbit N] [--down-kbit N] [--rtt-ms N]
//!                 [--jitter-ms N] [--loss-pct F] [--forward PORT]... [--expose PORT]...
//!
//! `--forward PORT`: 127.0.0.1:PORT in A reaches 127.0.0.1:PORT in B across the link.
//! `--expose PORT`: the same, and 127.0.0.1:PORT in the namespace voxseal-netem runs in reaches
//! it too, connecting from inside A (for a program that cannot run inside A).
//!
//! Creates namespaces `<name>a` and `<name>b` (replacing stale ones of those names), prints
//! `ready`, then reads commands on stdin: `down` and `up` (an outage: every packet dropped both
//! ways), `profile NAME` (another profile from now on), `stats` (one JSON line of counters),
//! `quit`. On `quit` or the end of stdin it removes both namespaces and exits.

use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use voxseal_uplink::link::{self, Counters};
use voxseal_uplink::{Profile, forward, sys};

const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

struct Args {
    name: String,
    profile: Profile,
    forward: Vec<u16>,
    expose: Vec<u16>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut name, mut profile) = (None, None::<Profile>);
    let (mut forward, mut expose) = (Vec::new(), Vec::new());
    let mut overrides = Vec::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--name" if value.len() <= 12 && value.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                name = Some(value)
            }
            "--profile" => {
                profile = Some(Profile::named(&value).ok_or(format!("no profile {value}"))?)
            }
            "--forward" => forward.push(value.parse().map_err(|_| format!("port {value}"))?),
            "--expose" => expose.push(value.parse().map_err(|_| format!("port {value}"))?),
            "--up-kbit" | "--down-kbit" | "--rtt-ms" | "--jitter-ms" | "--loss-pct" => {
                overrides.push((flag, value))
            }
            _ => return Err(format!("unknown or bad argument {flag} {value}")),
        }
    }
    let mut profile = profile.ok_or("--profile dsl|wifi|hotspot is required")?;
    for (flag, value) in overrides {
        let bad = || format!("{flag} {value}");
        match flag.as_str() {
            "--up-kbit" => profile.up_kbit = value.parse().map_err(|_| bad())?,
            "--down-kbit" => profile.down_kbit = value.parse().map_err(|_| bad())?,
            "--rtt-ms" => profile.rtt_ms = value.parse().map_err(|_| bad())?,
            "--jitter-ms" => profile.jitter_ms = value.parse().map_err(|_| bad())?,
            _ => profile.loss_pct = value.parse().map_err(|_| bad())?,
        }
    }
    let name = name.ok_or("--name (up to 12 letters and digits) is required")?;
    Ok(Args {
        name,
        profile,
        forward,
        expose,
    })
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Creates the TUN device `dev` in namespace `ns` with address `addr`/30, up, and `lo` up.
fn tun_in(ns: &str, dev: &str, addr: Ipv4Addr) -> Result<std::fs::File, String> {
    let (ns2, dev2) = (ns.to_owned(), dev.to_owned());
    let tun =
        std::thread::spawn(move || sys::enter_netns(&ns2).and_then(|()| sys::create_tun(&dev2)))
            .join()
            .map_err(|_| "TUN thread panicked".to_owned())?
            .map_err(|e| format!("TUN {dev} in {ns}: {e}"))?;
    ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
    ip(&["-n", ns, "link", "set", dev, "up"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(tun)
}

/// What the running link shares with its control loop.
struct Control {
    down: Arc<AtomicBool>,
    shapes: [Arc<Mutex<link::Shape>>; 2],
    counters: [Arc<Counters>; 2],
}

fn setup(args: &Args, ns_a: &str, ns_b: &str) -> Result<Control, String> {
    for ns in [ns_a, ns_b] {
        let _ = ip(&["netns", "del", ns]);
        ip(&["netns", "add", ns])?;
    }
    let tun_a = tun_in(ns_a, "vxa", ADDR_A)?;
    let tun_b = tun_in(ns_b, "vxb", ADDR_B)?;
    let control = Control {
        down: Arc::new(AtomicBool::new(false)),
        shapes: [true, false].map(|up| Arc::new(Mutex::new(args.profile.shape(up)))),
        counters: [Arc::new(Counters::default()), Arc::new(Counters::default())],
    };
    for (i, (from, to)) in [(&tun_a, &tun_b), (&tun_b, &tun_a)].into_iter().enumerate() {
        let from = from.try_clone().map_err(|e| e.to_string())?;
        let to = to.try_clone().map_err(|e| e.to_string())?;
        let (shape, down) = (control.shapes[i].clone(), control.down.clone());
        let counters = control.counters[i].clone();
        let seed = i as u64 + 1;
        std::thread::spawn(move || link::run(from, to, shape, down, counters, seed));
    }
    let (a, b) = (Some(ns_a.to_owned()), Some(ns_b.to_owned()));
    for &port in args.forward.iter().chain(&args.expose) {
        let b_side = SocketAddr::from((ADDR_B, port));
        forward::forward(b.clone(), ns_b.to_owned(), b_side, forward::loopback(port))
            .map_err(|e| format!("listening on {b_side} in {ns_b}: {e}"))?;
        forward::forward(a.clone(), ns_a.to_owned(), forward::loopback(port), b_side)
            .map_err(|e| format!("listening on 127.0.0.1:{port} in {ns_a}: {e}"))?;
    }
    for &port in &args.expose {
        let b_side = SocketAddr::from((ADDR_B, port));
        forward::forward(None, ns_a.to_owned(), forward::loopback(port), b_side)
            .map_err(|e| format!("listening on 127.0.0.1:{port} here: {e}"))?;
    }
    Ok(control)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("voxseal-netem: {e}");
            std::process::exit(2);
        }
    };
    let (ns_a, ns_b) = (format!("{}a", args.name), format!("{}b", args.name));
    let cleanup = || {
        for ns in [&ns_a, &ns_b] {
            let _ = ip(&["netns", "del", ns]);
        }
    };
    let control = match setup(&args, &ns_a, &ns_b) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("voxseal-netem: {e}");
            cleanup();
            std::process::exit(1);
        }
    };
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("down") => control.down.store(true, Ordering::Relaxed),
            Ok("up") => control.down.store(false, Ordering::Relaxed),
            Ok("stats") => {
                let [up, down] = &control.counters;
                println!(
                    "{}",
                    serde_json::json!({"up": up.json(), "down": down.json()})
                );
            }
            Ok(cmd) if cmd.starts_with("profile ") => match Profile::named(&cmd[8..]) {
                Some(p) => {
                    for (shape, up) in control.shapes.iter().zip([true, false]) {
                        *shape.lock().unwrap_or_else(|e| e.into_inner()) = p.shape(up);
                    }
                }
                None => eprintln!("voxseal-netem: no profile {:?}", &cmd[8..]),
            },
            Ok("quit") | Err(_) => break,
            Ok(other) => eprintln!("voxseal-netem: unknown command {other:?}"),
        }
    }
    cleanup();
}
