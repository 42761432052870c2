//! The encrypted spool reader (`SpoolReader::open` + `read_pcm` to the end).
//!
//! Raw mode: the input is a spool file read with the harness's key (a spool's key exists only in
//! memory and cannot be chosen, so this exercises the header parser and every refusal path).
//! Structured mode: valid spools of several lengths made by the real `SpoolWriter`, then edited
//! (bit flips, cuts, inserted/deleted bytes, duplicated/dropped/swapped records, trailing
//! bytes); the reader must return exactly the original samples when nothing changed and must
//! refuse every file that changed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use voxseal_core::project::ids::TakeId;
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_core::capture::spool::{CHUNK_SAMPLES, SpoolTake, SpoolWriter};
use voxseal_fuzz::encode::{Input, SpoolInput, apply_spool_op};

struct Base {
    take: SpoolTake,
    bytes: Vec<u8>,
    samples: Vec<f32>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    bases: Vec<Base>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = voxseal_fuzz::scratch_dir();
        let bases = [
            0,
            1,
            1000,
            CHUNK_SAMPLES,
            CHUNK_SAMPLES + 1,
            2 * CHUNK_SAMPLES + 3,
        ]
        .into_iter()
        .map(|n| {
            let samples: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
            let mut w = SpoolWriter::create(dir.path(), &TakeId::generate(), 16_000).unwrap();
            w.write(&samples).unwrap();
            let take = w.finish().unwrap();
            let bytes = std::fs::read(take.path()).unwrap();
            Base {
                take,
                bytes,
                samples,
            }
        })
        .collect();
        Fixture { _dir: dir, bases }
    })
}

const BUF_SIZES: [usize; 4] = [1, 7, 4096, CHUNK_SAMPLES + 3];

/// Reads to the end; `Ok(samples)` or `Err` at the first error.
fn read_to_end(take: &SpoolTake, buf_sel: u8, limit: usize) -> Result<Vec<f32>, std::io::Error> {
    let mut r = take.open()?;
    let mut buf = vec![0f32; BUF_SIZES[buf_sel as usize % BUF_SIZES.len()]];
    let mut out = Vec::new();
    loop {
        let n = r.read_pcm(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        assert!(n <= buf.len());
        out.extend_from_slice(&buf[..n]);
        assert!(out.len() <= limit, "more samples than the file can hold");
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut inp = Input::new(data);
    if inp.u8() % 2 == 0 {
        let buf_sel = inp.u8();
        let file = inp.rest();
        let base = &f.bases[0];
        voxseal_fuzz::put(base.take.path(), file);
        if let Ok(samples) = read_to_end(&base.take, buf_sel, file.len() / 4) {
            // Only the harness's own file verifies under its key.
            assert_eq!(file, &base.bytes[..], "a foreign spool file authenticated");
            assert_eq!(samples, base.samples);
        }
        return;
    }
    let s = SpoolInput::decode(&mut inp);
    let base = &f.bases[s.base as usize % f.bases.len()];
    let mut bytes = base.bytes.clone();
    for op in &s.ops {
        apply_spool_op(&mut bytes, *op);
        if bytes.len() > 1 << 20 {
            return;
        }
    }
    voxseal_fuzz::put(base.take.path(), &bytes);
    let result = read_to_end(&base.take, s.buf, bytes.len() / 4);
    if bytes == base.bytes {
        let samples = result.expect("an unchanged spool must read back");
        assert!(
            samples == base.samples,
            "an unchanged spool read back different samples"
        );
    } else if let Ok(samples) = result {
        panic!(
            "an altered spool was accepted ({} bytes instead of {}, {} samples)",
            bytes.len(),
            base.bytes.len(),
            samples.len()
        );
    }
});
