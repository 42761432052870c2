#!/usr/bin/env python3
"""Time resampling + features of a non-16 kHz WAV: Voxseal vs librosa vs kaldi-native-fbank.

  .venv/bin/python bench/rate_compare.py FEATURE_TIMING_BINARY FILE.wav [--runs N]

Each side runs pinned to CPU 0 (taskset -c 0), in its own process, once to warm up and then
--runs times (default 5) on samples already in memory; medians are printed as one JSON line.
- ours:    examples/feature_timing FILE.wav N: resample_all to 16 kHz + features::extract.
- librosa: librosa.resample(res_type="soxr_hq", librosa.load's default) to 16 kHz, then the
           melspectrogram / power_to_db / mfcc of bench/compare.py (float32 samples).
- kaldi:   python-soxr's HQ resampler to 16 kHz (kaldi-native-fbank does not resample: it
           refuses other rates), the samples turned into a list (the binding's fast input),
           then OnlineFbank (80 bins, dither 0, snip_edges False), all timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np, soundfile as sf
kind, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
y, sr = sf.read(path, dtype="float32", always_2d=True)
y = np.ascontiguousarray(y.mean(axis=1, dtype=np.float32))
def librosa_run():
    import librosa
    z = librosa.resample(y, orig_sr=sr, target_sr=16000, res_type="soxr_hq")
    S = librosa.feature.melspectrogram(y=z, sr=16000, n_fft=512, win_length=400, hop_length=160,
        n_mels=80, fmin=0, fmax=8000, htk=False, norm="slaney", center=True,
        pad_mode="constant", power=2.0)
    L = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)
    return librosa.feature.mfcc(S=L, n_mfcc=13, dct_type=2, norm="ortho").shape[1]
def kaldi_run():
    import kaldi_native_fbank as knf
    o = knf.FbankOptions()
    o.frame_opts.dither = 0
    o.frame_opts.snip_edges = False
    o.frame_opts.samp_freq = 16000
    o.mel_opts.num_bins = 80
    import soxr
    z = soxr.resample(y, sr, 16000, quality="HQ").tolist()
    f = knf.OnlineFbank(o)
    f.accept_waveform(16000, z)
    f.input_finished()
    return f.num_frames_ready
run = librosa_run if kind == "librosa" else kaldi_run
run()
times = []
for _ in range(runs):
    t = time.perf_counter(); frames = run(); times.append(time.perf_counter() - t)
print(json.dumps({"median_s": sorted(times)[len(times) // 2], "runs": times, "frames": frames}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("wav")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    pin = ["taskset", "-c", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    out = {}
    ours = subprocess.run(pin + [a.binary, a.wav, str(a.runs)], check=True,
                          capture_output=True, text=True).stdout
    out["ours"] = json.loads(ours)
    for kind in ("librosa", "kaldi"):
        res = subprocess.run(pin + [sys.executable, "-c", CHILD, kind, a.wav, str(a.runs)],
                             check=True, capture_output=True, text=True, env=env).stdout
        out[kind] = json.loads(res)
    for kind in ("librosa", "kaldi"):
        out[f"{kind}_over_ours"] = out[kind]["median_s"] / out["ours"]["median_s"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
