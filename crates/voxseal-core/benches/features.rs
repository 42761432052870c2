//! Feature extraction benchmarks: [`voxseal_core::dsp::features::extract`] (in memory) and the
//! streaming [`voxseal_core::dsp::features::write_safetensors`] path (three passes over a replayable
//! source, as when sealing), on 60 s of synthetic speech at 16 kHz.
//!
//! `cargo bench -p voxseal-core --bench features`. Throughput is in samples (16,000 a second of
//! audio). bench/run.sh compares with librosa and kaldi-native-fbank on a real 10-minute file.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxseal_core::capture::audio::{SyntheticKind, SyntheticSource};
use voxseal_core::dsp::features::{FeatureParams, extract, write_safetensors};
use voxseal_core::dsp::pcm::MemoryPcm;

const RATE: u32 = 16_000;
const SECONDS: usize = 60;

fn features(c: &mut Criterion) {
    let n = SECONDS * RATE as usize;
    let samples = SyntheticSource::generate(SyntheticKind::Speech, RATE, n);
    let params = FeatureParams::default();
    let mut group = c.benchmark_group("features_60s_speech");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);

    group.bench_function("extract", |b| {
        b.iter(|| extract(black_box(&samples), &params))
    });

    let pcm = MemoryPcm::new(samples.clone(), RATE);
    let meta = BTreeMap::new();
    group.bench_function("write_safetensors_streaming", |b| {
        b.iter(|| {
            write_safetensors(black_box(&pcm), &params, &meta, &mut io::sink())
                .expect("writing to a sink cannot fail")
        })
    });
    group.finish();
}

criterion_group!(benches, features);
criterion_main!(benches);
