//! Sealing benchmark: [`voxseal_core::sealing::seal::seal_to_writer`] (age to one X25519 recipient, plus
//! the SHA-256 of the ciphertext that sealing records) of 64 MiB into `io::sink()`.
//!
//! `cargo bench -p voxseal-core --bench seal`; criterion reports the throughput. bench/run.sh
//! compares with the Go `age` CLI on a 1 GiB file.

use std::hint::black_box;
use std::io;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxseal_core::sealing::seal::seal_to_writer;

const SIZE: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

/// Incompressible-looking bytes (xorshift64*); their value does not matter to the cipher.
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn seal(c: &mut Criterion) {
    let plaintext = data(SIZE);
    let recipient = age::x25519::Identity::generate().to_public();
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("seal_to_writer_64MiB_to_sink", |b| {
        b.iter(|| {
            let (written, _, sealed) =
                seal_to_writer(io::sink(), std::slice::from_ref(&recipient), |w| {
                    for chunk in black_box(&plaintext).chunks(CHUNK) {
                        w.write_all(chunk)?;
                    }
                    Ok(plaintext.len())
                })
                .expect("sealing into a sink cannot fail");
            black_box((written, sealed))
        })
    });
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
