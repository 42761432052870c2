//! Seals a file with [`voxseal_core::seal::seal_to_writer`] (age, one X25519 recipient), for
//! comparing throughput with the Go `age` CLI.
//!
//! ```text
//! cargo run --release -p voxseal-core --example seal_file -- INPUT age1... OUTPUT [--age-only]
//! ```
//!
//! Streams INPUT through the age encryptor (and the ciphertext SHA-256 that sealing always
//! computes) into OUTPUT (`/dev/null` works) with 1 MiB buffers. Prints one JSON line:
//! `{"seconds": .., "bytes": .., "gb_per_s": ..}` (bytes = plaintext bytes, GB = 10^9 bytes;
//! seconds from opening INPUT to the last ciphertext byte written). `--age-only` uses the `age`
//! crate's encryptor directly, without the SHA-256, to show what the hash costs.

use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use voxseal_core::keys::parse_recipient;
use voxseal_core::seal::seal_to_writer;

const BUF: usize = 1 << 20;

fn main() -> Result<(), Box<dyn Error>> {
    let usage = "usage: seal_file INPUT RECIPIENT OUTPUT";
    let mut args = std::env::args_os().skip(1);
    let input = PathBuf::from(args.next().ok_or(usage)?);
    let recipient = args.next().ok_or(usage)?;
    let output = PathBuf::from(args.next().ok_or(usage)?);
    let age_only = match args.next() {
        None => false,
        Some(a) if a == "--age-only" => true,
        Some(_) => return Err(usage.into()),
    };
    let recipient = parse_recipient(recipient.to_str().ok_or("recipient is not UTF-8")?)?;

    let t = Instant::now();
    let mut src = File::open(&input)?;
    let dst = BufWriter::with_capacity(BUF, File::create(&output)?);
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
    let (bytes, dst, ciphertext) = if age_only {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))?;
        let mut w = encryptor.wrap_output(dst)?;
        let bytes = copy(&mut w)?;
        (bytes, w.finish()?, None)
    } else {
        let (bytes, dst, sealed) = seal_to_writer(dst, &[recipient], copy)?;
        (bytes, dst, Some(sealed.size))
    };
    dst.into_inner().map_err(|e| e.into_error())?.flush()?;
    let seconds = t.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "seconds": seconds,
        "bytes": bytes,
        "gb_per_s": bytes as f64 / seconds / 1e9,
        "ciphertext_bytes": ciphertext,
        "sha256": !age_only,
    });
    println!("{out}");
    Ok(())
}
