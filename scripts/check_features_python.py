#!/usr/bin/env python3
"""Compare a Voxseal feature file with librosa's features for the same audio.

Usage:
  .venv/bin/python scripts/check_features_python.py FEATURES.safetensors AUDIO.wav
      [--max-log-mel-diff DB] [--max-mfcc-diff X] [--show-metadata]

FEATURES.safetensors: written by Voxseal: tensors log_mel [frames, 80] f32 and
mfcc [frames, 13] f32, plus string metadata. AUDIO.wav: the 16 kHz mono audio it
came from. The reference is recomputed with librosa (float64, the parameters in
tests/fixtures/features/README.md) and one JSON line is printed on stdout:
  {"frames": N, "log_mel_max_abs_diff": D1, "mfcc_max_abs_diff": D2}
(the reference is rounded to float32 before the difference, so a perfect file
gives 0; a diff is null when Voxseal's output holds NaN or inf).

Exit codes: 0 ok; 1 shapes differ (or, when a --max-* limit is given, a limit is
            exceeded or the file holds NaN/inf);
            2 bad input (missing tensor, not 16 kHz mono, unreadable file).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np

SR = 16000
N_MELS = 80
N_MFCC = 13


def reference_features(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log-mel [frames, 80] and MFCC [frames, 13] in float64; same as
    tests/fixtures/features/make_reference.py (keep the two in step)."""
    import librosa

    y = np.asarray(y, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large")
        mel = librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=512, win_length=400, hop_length=160, window="hann",
            center=True, pad_mode="constant", power=2.0,
            n_mels=N_MELS, fmin=0.0, fmax=8000.0, htk=False, norm="slaney",
            dtype=np.float64,
        )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC, dct_type=2, norm="ortho", lifter=0)
    return log_mel.T, mfcc.T


def fail(code: int, msg: str, **extra) -> int:
    print(f"check_features_python: {msg}", file=sys.stderr)
    print(json.dumps({"error": msg, **extra}))
    return code


def max_abs_diff(got: np.ndarray, ref64: np.ndarray) -> float | None:
    """Max |got - ref| with the reference rounded to float32 first (the best a
    float32 output can do), so a perfect file gives exactly 0. None (JSON null)
    when Voxseal's output holds NaN or inf."""
    if got.size == 0:
        return 0.0
    d = np.abs(got.astype(np.float64) - ref64.astype(np.float32).astype(np.float64))
    return float(np.max(d)) if np.all(np.isfinite(d)) else None


def main() -> int:
    ap = argparse.ArgumentParser(description="Compare Voxseal features with librosa's.")
    ap.add_argument("features", help="Voxseal .safetensors file (log_mel, mfcc)")
    ap.add_argument("wav", help="the 16 kHz mono audio it was computed from")
    ap.add_argument("--max-log-mel-diff", type=float, default=None, metavar="DB",
                    help="exit 1 if the log-mel max abs diff exceeds this")
    ap.add_argument("--max-mfcc-diff", type=float, default=None, metavar="X",
                    help="exit 1 if the MFCC max abs diff exceeds this")
    ap.add_argument("--show-metadata", action="store_true",
                    help="print the file's metadata to stderr")
    args = ap.parse_args()

    import soundfile as sf
    from safetensors import safe_open
    from safetensors.numpy import load_file

    try:
        tensors = load_file(args.features)
        with safe_open(args.features, framework="np") as f:
            metadata = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - report any parse error as bad input
        return fail(2, f"cannot read {args.features}: {e}")
    if args.show_metadata:
        print(json.dumps(metadata, indent=1, sort_keys=True), file=sys.stderr)
    missing = [k for k in ("log_mel", "mfcc") if k not in tensors]
    if missing:
        return fail(2, f"missing tensor(s) {missing}; have {sorted(tensors)}")

    try:
        y, sr = sf.read(args.wav, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001
        return fail(2, f"cannot read {args.wav}: {e}")
    if sr != SR:
        return fail(2, f"{args.wav} is {sr} Hz, expected {SR}")
    if y.shape[1] != 1:
        return fail(2, f"{args.wav} has {y.shape[1]} channels, expected mono")

    ref_log_mel, ref_mfcc = reference_features(y[:, 0])
    got_log_mel, got_mfcc = tensors["log_mel"], tensors["mfcc"]
    if got_log_mel.shape != ref_log_mel.shape or got_mfcc.shape != ref_mfcc.shape:
        return fail(
            1, "shape mismatch",
            log_mel_shape=list(got_log_mel.shape), expected_log_mel_shape=list(ref_log_mel.shape),
            mfcc_shape=list(got_mfcc.shape), expected_mfcc_shape=list(ref_mfcc.shape),
        )

    result = {
        "frames": int(ref_log_mel.shape[0]),
        "log_mel_max_abs_diff": max_abs_diff(got_log_mel, ref_log_mel),
        "mfcc_max_abs_diff": max_abs_diff(got_mfcc, ref_mfcc),
    }
    print(json.dumps(result))

    over = []
    limits = (("log_mel_max_abs_diff", args.max_log_mel_diff),
              ("mfcc_max_abs_diff", args.max_mfcc_diff))
    any_limit = any(limit is not None for _, limit in limits)
    for key, limit in limits:
        if any_limit and result[key] is None:
            over.append(f"{key}: non-finite values in {args.features}")
        elif limit is not None and result[key] > limit:
            over.append(f"{key}={result[key]} > {limit}")
    if over:
        print("check_features_python: " + "; ".join(over), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
