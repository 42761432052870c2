#!/usr/bin/env python3
"""Make the resampling fixtures: WAVs at 8, 22.05, 44.1, 48 and 96 kHz and librosa's features.

Run with the test venv:  .venv/bin/python scripts/make_resample_fixtures.py [--out-dir DIR]
                          .venv/bin/python scripts/make_resample_fixtures.py --report
Writes into tests/fixtures/resample/ (or --out-dir), for each case in CASES:
  <case>.wav                 the input, at its own rate, channel count and sample format
  <case>.ref.safetensors     tensors, all f32 [frames, 80] / [frames, 13]:
      log_mel, mfcc                     librosa.load(path, sr=16000, mono=True) (res_type
                                        soxr_hq, librosa's default), then the features of
                                        tests/fixtures/features/make_reference.py
      log_mel_polyphase, mfcc_polyphase the same with res_type="polyphase" (scipy): how far
                                        librosa's own resamplers are apart, the test's bound
      log_mel_soxr_vhq, mfcc_soxr_vhq   the same with res_type="soxr_vhq" (for the record)
  and string metadata: versions, the case's format, and the parameters.

--report prints, per case, the median and max |diff| of the polyphase and soxr_vhq features
against the soxr_hq ones (the numbers in docs/performance.md).

The signal (1.6 s) is synthesised at the file's own rate, so it has content up to that rate's
Nyquist: a speech-like voiced part (the generator of make_reference.py with harmonics up to
0.45 x the rate, /s/-like noise bursts and breath noise up to the Nyquist), then an exponential chirp from
60 Hz to 0.48 x the rate (through the 7-8 kHz top mel bands and, at 44.1 kHz and above, past
16 kHz's Nyquist, where a resampler must cut). Stereo files hold the signal on the left and
0.7 x the signal delayed by 1 ms on the right (librosa averages the channels, so do we).
Deterministic: fixed seeds, samples quantised here (not by libsndfile), metadata keys sorted;
two runs give byte-identical files with the same library versions.
"""

from __future__ import annotations

import argparse
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy
import soundfile as sf
import soxr
import librosa
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests/fixtures/features"))
import make_reference as mr  # noqa: E402  (reference_features, canonicalize_header)

SR = 16000
# name: (rate, channels, soundfile subtype)
CASES = {
    "r8000_mono_pcm16": (8000, 1, "PCM_16"),
    "r22050_stereo_pcm24": (22050, 2, "PCM_24"),
    "r44100_mono_float": (44100, 1, "FLOAT"),
    "r44100_stereo_pcm16": (44100, 2, "PCM_16"),
    "r48000_mono_pcm16": (48000, 1, "PCM_16"),
    "r48000_stereo_pcm32": (48000, 2, "PCM_32"),
    "r96000_mono_pcm24": (96000, 1, "PCM_24"),
}
BOUND_RES = ("polyphase", "soxr_vhq")


def speech(sr: int, duration: float) -> np.ndarray:
    """make_reference.speechlike's voiced signal at rate `sr`, harmonics up to 0.45 sr."""
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    f0 = 140.0 - 40.0 * np.cos(2.0 * np.pi * t / duration) + 1.5 * np.sin(2.0 * np.pi * 5.5 * t)
    phase = 2.0 * np.pi * np.cumsum(f0) / sr
    syl = t * 4.0
    idx = np.floor(syl).astype(int)
    frac = syl - idx
    a = mr.VOWELS[idx % len(mr.VOWELS)]
    b = mr.VOWELS[(idx + 1) % len(mr.VOWELS)]
    w = (0.5 - 0.5 * np.cos(np.pi * np.clip((frac - 0.6) / 0.4, 0.0, 1.0)))[:, None]
    formants = a * (1.0 - w) + b * w
    top = min(0.45 * sr, 20000.0)
    y = np.zeros(n)
    for k in range(1, int(top // 100.0) + 1):
        fk = k * f0
        taper = np.clip((top - fk) / 500.0, 0.0, 1.0)
        taper = 0.5 - 0.5 * np.cos(np.pi * taper)
        if not np.any(taper > 0):
            continue
        gain = np.ones(n)
        for i in range(3):
            fi, bi = formants[:, i], mr.BANDWIDTHS[i]
            gain *= fi**2 / np.sqrt((fi**2 - fk**2) ** 2 + (bi * fk) ** 2)
        for fi, bi in mr.HIGH_FORMANTS:
            # a floor keeps the harmonics above the formants at a speech-like level
            gain *= np.maximum(fi**2 / np.sqrt((fi**2 - fk**2) ** 2 + (bi * fk) ** 2), 0.05)
        y += (taper * gain / k) * np.sin(k * phase)
    y *= 0.1 + 0.9 * np.sin(np.pi * 4.0 * t) ** 2
    y /= np.max(np.abs(y))
    # /s/-like bursts: differenced noise, most energy towards the Nyquist.
    hiss = np.diff(mr.white_noise(n + 1, 0.0, seed=3), n=1)
    hiss /= np.sqrt(np.mean(hiss**2))
    for start, length in [(0.2, 0.08), (0.7, 0.06)]:
        a0, m = int(round(start * sr)), int(round(length * sr))
        win = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(m) / m)
        y[a0 : a0 + m] += mr.db_to_amp(-26.0) * win * hiss[a0 : a0 + m]
    # Breath: white noise up to the Nyquist under the voiced part, so that every mel band,
    # the top ones included, sits well above the -80 dB floor in every speech frame.
    y += mr.db_to_amp(-40.0) * mr.white_noise(n, 0.0, seed=4) * (0.2 + np.sin(np.pi * 4.0 * t) ** 2)
    return y


def chirp(sr: int, duration: float) -> np.ndarray:
    """Exponential sweep 60 Hz -> 0.48 sr with 20 ms raised-cosine fades."""
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    f1, f2 = 60.0, 0.48 * sr
    k = np.log(f2 / f1) / duration
    y = np.sin(2.0 * np.pi * f1 * (np.exp(k * t) - 1.0) / k)
    nf = int(0.02 * sr)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(nf) / nf)
    y[:nf] *= ramp
    y[-nf:] *= ramp[::-1]
    return y


def signal(sr: int, channels: int) -> np.ndarray:
    """[n, channels] float64 in [-1, 1)."""
    y = np.concatenate([speech(sr, 1.0) * mr.db_to_amp(-6.0), chirp(sr, 0.6) * mr.db_to_amp(-12.0)])
    y += mr.white_noise(len(y), -70.0, seed=1)
    if channels == 1:
        return y[:, None]
    d = int(round(0.001 * sr))
    right = 0.7 * np.concatenate([np.zeros(d), y[:-d]])
    return np.stack([y, right], axis=1)


def write_wav(path: Path, x: np.ndarray, sr: int, subtype: str) -> None:
    """Quantise here so libsndfile's conversion never decides a byte."""
    if subtype == "FLOAT":
        data = x.astype(np.float32)
        write_float_wav(path, data, sr)
    else:
        bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}[subtype]
        q = np.clip(np.rint(x * 2.0 ** (bits - 1)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        # libsndfile takes int32 data and keeps its top `bits` bits
        data = q.astype(np.int64) << (32 - bits) if bits < 32 else q.astype(np.int64)
        data = data.astype(np.int32)
        sf.write(path, data, sr, subtype=subtype, format="WAV")
    back, _ = sf.read(path, dtype="int32" if subtype != "FLOAT" else "float32", always_2d=True)
    assert np.array_equal(back, data), path


def write_float_wav(path: Path, data: np.ndarray, sr: int) -> None:
    """A plain IEEE-float WAV (libsndfile would add a PEAK chunk holding the time of writing)."""
    frames, channels = data.shape
    body = data.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * channels * 4, channels * 4, 32)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def features(path: Path, res_type: str) -> tuple[np.ndarray, np.ndarray]:
    y, sr = librosa.load(path, sr=SR, mono=True, res_type=res_type)
    assert sr == SR
    return mr.reference_features(y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "tests/fixtures/resample")
    ap.add_argument("--report", action="store_true", help="print the inter-resampler bounds")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    versions = {
        "librosa": librosa.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "soundfile": sf.__version__,
        "soxr": soxr.__version__,
    }
    for name, (rate, channels, subtype) in CASES.items():
        wav = args.out_dir / f"{name}.wav"
        write_wav(wav, signal(rate, channels), rate, subtype)
        tensors = {}
        with warnings.catch_warnings():
            # no silent fallbacks inside librosa (e.g. to audioread when soundfile fails)
            warnings.simplefilter("error", UserWarning)
            warnings.simplefilter("error", FutureWarning)
            for res in ("soxr_hq",) + BOUND_RES:
                log_mel, mfcc = features(wav, res)
                suffix = "" if res == "soxr_hq" else f"_{res}"
                tensors[f"log_mel{suffix}"] = np.ascontiguousarray(log_mel, dtype=np.float32)
                tensors[f"mfcc{suffix}"] = np.ascontiguousarray(mfcc, dtype=np.float32)
        frames = tensors["log_mel"].shape[0]
        metadata = {
            **versions,
            **{k: str(v) for k, v in mr.PARAMS.items()},
            **{k: str(v) for k, v in mr.DB_PARAMS.items()},
            **{("mfcc_norm" if k == "norm" else k): str(v) for k, v in mr.MFCC_PARAMS.items()},
            "reference": "librosa.load(path, sr=16000, mono=True) (res_type soxr_hq)",
            "source": wav.name,
            "source_rate": str(rate),
            "source_channels": str(channels),
            "source_subtype": subtype,
            "frames": str(frames),
        }
        ref = args.out_dir / f"{name}.ref.safetensors"
        save_file(tensors, str(ref), metadata=metadata)
        mr.canonicalize_header(ref)
        line = f"{name}: {frames} frames"
        if args.report:
            for res in BOUND_RES:
                for t in ("log_mel", "mfcc"):
                    d = np.abs(tensors[f"{t}_{res}"].astype(np.float64) - tensors[t])
                    line += f"; {res} {t} median {np.median(d):.3f} max {d.max():.2f}"
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
