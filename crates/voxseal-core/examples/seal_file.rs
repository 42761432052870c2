//! Seals a file with [`voxseal_core::sealing::seal::seal_to_writer`] (age, one X25519 recipient), for
//! comparing throughput with the Go `age` CLI.
//!
//! ```text
//! cargo run --release -p voxseal-core --example seal_file -- INPUT age1... OUTPUT [MODE]
//! ```
//!
//! Streams INPUT through the age encryptor (and the ciphertext SHA-256 that sealing always
//! computes) into OUTPUT (`/dev/null` works), reading 64 KiB (one age chunk) at a time; sealing writes OUTPUT in
//! whole age chunks, as it does in the outbox. Prints one JSON line:
//! `{"seconds": .., "bytes": .., "gb_per_s": ..}` (bytes = plaintext bytes, GB = 10^9 bytes;
//! seconds from opening INPUT to the last ciphertext byte written). MODE:
//! - none: sealing as the outbox does it, [`seal_to_writer`]: [`AgeWriter`] plus the ciphertext's
//!   SHA-256 on a second thread;
//! - `--no-hash`: [`AgeWriter`] alone on one thread, the same work as the Go CLI;
//! - `--age-crate`: the `age` crate's own encryptor (RustCrypto's ChaCha20-Poly1305, 64 KiB
//!   buffered writes), which sealing used before.

use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use voxseal_core::sealing::age_writer::AgeWriter;
use voxseal_core::sealing::keys::parse_recipient;
use voxseal_core::sealing::seal::seal_to_writer;

/// Read size: one age chunk; larger reads were slower (docs/performance.md, "Notes moved from
/// the code").
const BUF: usize = voxseal_core::sealing::age_writer::CHUNK;

fn main() -> Result<(), Box<dyn Error>> {
    let usage = "usage: seal_file INPUT RECIPIENT OUTPUT [--no-hash | --age-crate]";
    let mut args = std::env::args_os().skip(1);
    let input = PathBuf::from(args.next().ok_or(usage)?);
    let recipient = args.next().ok_or(usage)?;
    let output = PathBuf::from(args.next().ok_or(usage)?);
    let mode = args.next();
    let mode = match mode.as_ref().map(|m| m.to_str()) {
        None => "seal",
        Some(Some("--no-hash")) => "age_writer",
        Some(Some("--age-crate")) => "age_crate",
        Some(_) => return Err(usage.into()),
    };
    let recipient = parse_recipient(recipient.to_str().ok_or("recipient is not UTF-8")?)?;

    let t = Instant::now();
    let mut src = File::open(&input)?;
    let dst = File::create(&output)?;
    let mut buf = vec![0u8; BUF];
    let mut copy = |w: &mut dyn Write| -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            w.write_all(&buf[..n])?;
            total += n as u64;
        }
    };
    let (bytes, dst, ciphertext) = match mode {
        "age_crate" => {
            let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))?;
            let mut w = encryptor.wrap_output(BufWriter::with_capacity(BUF, dst))?;
            let bytes = copy(&mut w)?;
            let dst = w.finish()?.into_inner().map_err(|e| e.into_error())?;
            (bytes, dst, None)
        }
        "age_writer" => {
            let mut w = AgeWriter::new(dst, &[recipient])?;
            let bytes = copy(&mut w)?;
            (bytes, w.finish()?, None)
        }
        _ => {
            let (bytes, dst, sealed) = seal_to_writer(dst, &[recipient], copy)?;
            (bytes, dst, Some(sealed.size))
        }
    };
    drop(dst);
    let seconds = t.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "seconds": seconds,
        "bytes": bytes,
        "gb_per_s": bytes as f64 / seconds / 1e9,
        "ciphertext_bytes": ciphertext,
        "mode": mode,
        "sha256": mode == "seal",
    });
    println!("{out}");
    Ok(())
}
