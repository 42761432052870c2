#!/usr/bin/env python3
"""Voxseal's feature extraction and sealing against librosa, kaldi-native-fbank and Go age.

Run it through bench/run.sh, which builds the Rust examples and makes the input files:

  bench/compare.py --examples DIR --wav-10min F --wav-1min F [--wav-60min F] \
      --big-file F --recipient age1... [--runs 5] [--json OUT]

What is timed (each: one warm-up run, then --runs timed runs, median reported):
  ours      examples/feature_timing: voxseal_core::dsp::features::extract (log-mel + MFCC)
            on the whole file in memory; file loading not timed.
  librosa   melspectrogram + power_to_db ("log-mel"), mfcc(S=log_mel) ("MFCC") and the two
            back to back ("together"), on float32 samples, one BLAS/OpenMP/numba thread.
  kaldi     kaldi-native-fbank OnlineFbank, 80 bins, dither 0, 25 ms / 10 ms frames,
            snip_edges=False; accept_waveform(whole file) + input_finished(). The samples are
            converted to a Python list before timing (pybind11 copies a list far faster than an
            ndarray); the copy into a std::vector inside accept_waveform is still timed. The
            same call with the ndarray itself is timed too and shown, but the aim is judged on
            the list figure (the stricter one for us).
  All three feature runs are pinned to CPU 0 with `taskset -c 0`. The three are measured
  --rounds times in turn (ours, librosa, kaldi, ours, ...) so that a burst of load from
  elsewhere hits one round rather than one tool; each figure reported is the median over the
  rounds of the per-round medians, and the per-round ratios are printed too.
  sealing   examples/seal_file (voxseal_core::sealing::seal::seal_to_writer: age + SHA-256 of the
            ciphertext, the hash on a second thread) vs `age -r R -o /dev/null FILE`, both on
            the same file, wall time of the whole process, not pinned, runs alternated; also
            `seal_file --no-hash` (voxseal's age encryptor alone on one thread: the same work
            as Go age) and `seal_file --age-crate` (the age crate's encryptor, used before).
  memory    peak RSS (/usr/bin/time %M) of examples/feature_stream_rss (the streaming
            write_safetensors path) on 1, 10 and 60 minutes of audio, and of feature_timing
            (in-memory extract, which holds the whole clip and its features) for contrast.

Prints a table; --json also writes every number to a file.
"""

from __future__ import annotations

import os

# Before numpy (and so librosa / numba) is imported anywhere: one thread each.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PIN = ["taskset", "-c", "0"]
THREAD_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                               "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed_runs(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


# --- workers (run in a pinned child process) ---------------------------------------------

def worker_librosa(wav: str, runs: int) -> dict:
    import warnings

    import librosa
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(wav, dtype="float32")
    assert sr == 16000 and y.ndim == 1, "expected 16 kHz mono"

    def log_mel():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = librosa.feature.melspectrogram(
                y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80,
                fmin=0, fmax=8000, htk=False, norm="slaney", center=True,
                pad_mode="constant", power=2.0)
        return librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=80)

    lm = log_mel()

    def mfcc():
        return librosa.feature.mfcc(S=lm, n_mfcc=13, dct_type=2, norm="ortho")

    def together():
        return librosa.feature.mfcc(S=log_mel(), n_mfcc=13, dct_type=2, norm="ortho")

    res = {
        "log_mel_runs": timed_runs(log_mel, runs),
        "mfcc_runs": timed_runs(mfcc, runs),
        "together_runs": timed_runs(together, runs),
        "frames": int(lm.shape[1]),
        "versions": {"librosa": librosa.__version__, "numpy": np.__version__},
    }
    for k in ("log_mel", "mfcc", "together"):
        res[f"{k}_s"] = median(res[f"{k}_runs"])
    return res


def worker_kaldi(wav: str, runs: int) -> dict:
    import kaldi_native_fbank as knf
    import soundfile as sf

    y, sr = sf.read(wav, dtype="float32")
    assert sr == 16000 and y.ndim == 1, "expected 16 kHz mono"
    samples = y.tolist()

    def opts():
        o = knf.FbankOptions()
        o.frame_opts.samp_freq = 16000
        o.frame_opts.frame_length_ms = 25
        o.frame_opts.frame_shift_ms = 10
        o.frame_opts.dither = 0.0
        o.frame_opts.snip_edges = False
        o.mel_opts.num_bins = 80
        return o

    frames = []

    def fbank(data):
        f = knf.OnlineFbank(opts())
        f.accept_waveform(16000, data)
        f.input_finished()
        frames.append(f.num_frames_ready)
        return f

    f = fbank(samples)
    dim = len(f.get_frame(0))
    out = timed_runs(lambda: fbank(samples), runs)
    # The same with the ndarray itself, which the binding converts element by element.
    nd = timed_runs(lambda: fbank(y), runs)
    return {"runs": out, "median_s": median(out), "frames": frames[0], "bins": dim,
            "ndarray_runs": nd, "ndarray_median_s": median(nd),
            "version": getattr(knf, "__version__", "?")}


# --- driver ------------------------------------------------------------------------------

def run_json(cmd: list[str], env: dict | None = None) -> dict:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, check=True, capture_output=True, text=True, env=full_env)
    return json.loads(p.stdout.strip().splitlines()[-1])


def worker(kind: str, wav: str, runs: int) -> dict:
    cmd = PIN + [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
                 "--wav-10min", wav, "--runs", str(runs)]
    return run_json(cmd, THREAD_ENV)


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def peak_rss_kib(cmd: list[str]) -> tuple[int, dict]:
    """Peak RSS of `cmd` in KiB (GNU time's %M) and its JSON output."""
    fmt_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"voxseal-rss-{os.getpid()}.txt"
    try:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(fmt_file)] + cmd,
                           check=True, capture_output=True, text=True)
        rss = int(fmt_file.read_text().strip().splitlines()[-1])
    finally:
        fmt_file.unlink(missing_ok=True)
    return rss, json.loads(p.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["librosa", "kaldi"], help=argparse.SUPPRESS)
    ap.add_argument("--examples", type=Path, help="directory of the release examples")
    ap.add_argument("--wav-10min", required=True)
    ap.add_argument("--wav-1min")
    ap.add_argument("--wav-60min")
    ap.add_argument("--big-file")
    ap.add_argument("--recipient")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    if a.worker == "librosa":
        print(json.dumps(worker_librosa(a.wav_10min, a.runs)))
        return 0
    if a.worker == "kaldi":
        print(json.dumps(worker_kaldi(a.wav_10min, a.runs)))
        return 0
    for need in ("examples", "wav_1min", "big_file", "recipient"):
        if getattr(a, need) is None:
            ap.error(f"--{need.replace('_', '-')} is required")
    ex = a.examples
    results: dict = {
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                    "affinity_cpus": len(os.sched_getaffinity(0)),
                    "python": platform.python_version()},
        "runs": a.runs,
    }

    # Features -----------------------------------------------------------------------------
    rounds = []
    for r in range(a.rounds):
        log(f"features round {r + 1}/{a.rounds}: ours, librosa, kaldi-native-fbank "
            "(each pinned to CPU 0)")
        ours = run_json(PIN + [str(ex / "feature_timing"), a.wav_10min, str(a.runs)])
        lib = worker("librosa", a.wav_10min, a.runs)
        kal = worker("kaldi", a.wav_10min, a.runs)
        rounds.append({"ours": ours, "librosa": lib, "kaldi": kal,
                       "librosa_over_ours": lib["together_s"] / ours["median_s"],
                       "kaldi_over_ours": kal["median_s"] / ours["median_s"]})
    ours = dict(rounds[0]["ours"], median_s=median([x["ours"]["median_s"] for x in rounds]))
    lib = dict(rounds[0]["librosa"])
    for k in ("log_mel_s", "mfcc_s", "together_s"):
        lib[k] = median([x["librosa"][k] for x in rounds])
    kal = dict(rounds[0]["kaldi"], median_s=median([x["kaldi"]["median_s"] for x in rounds]),
               ndarray_median_s=median([x["kaldi"]["ndarray_median_s"] for x in rounds]))
    results["features"] = {"ours": ours, "librosa": lib, "kaldi": kal, "rounds": rounds}

    # Sealing ------------------------------------------------------------------------------
    size = os.path.getsize(a.big_file)
    age = shutil.which("age") or "age"
    age_version = subprocess.run([age, "--version"], capture_output=True,
                                 text=True).stdout.strip()
    seal_cmd = [str(ex / "seal_file"), a.big_file, a.recipient, "/dev/null"]
    age_cmd = [age, "-r", a.recipient, "-o", "/dev/null", a.big_file]
    log(f"sealing {size} bytes: ours, then Go age {age_version}")
    bare_cmd = seal_cmd + ["--no-hash"]
    crate_cmd = seal_cmd + ["--age-crate"]
    for cmd in (seal_cmd, age_cmd, bare_cmd, crate_cmd):
        wall(cmd)  # warm-ups (also bring the file into the page cache)
    ours_seal, age_seal, bare_seal, crate_seal = [], [], [], []
    for _ in range(a.runs):  # alternate, so that drift in machine load hits all alike
        ours_seal.append(wall(seal_cmd))
        age_seal.append(wall(age_cmd))
        bare_seal.append(wall(bare_cmd))
        crate_seal.append(wall(crate_cmd))
    inner = run_json(seal_cmd)
    results["sealing"] = {
        "bytes": size,
        "ours_runs": ours_seal, "ours_s": median(ours_seal),
        "ours_gb_per_s": size / median(ours_seal) / 1e9,
        "ours_inner": inner,
        "age_runs": age_seal, "age_s": median(age_seal),
        "age_gb_per_s": size / median(age_seal) / 1e9,
        "age_version": age_version,
        "no_hash_runs": bare_seal, "no_hash_s": median(bare_seal),
        "no_hash_gb_per_s": size / median(bare_seal) / 1e9,
        "age_crate_runs": crate_seal, "age_crate_s": median(crate_seal),
        "age_crate_gb_per_s": size / median(crate_seal) / 1e9,
    }

    # Memory -------------------------------------------------------------------------------
    mem = {}
    for label, wav in (("1min", a.wav_1min), ("10min", a.wav_10min), ("60min", a.wav_60min)):
        if not wav:
            continue
        log(f"memory: streaming write_safetensors, {label}")
        rss, out = peak_rss_kib([str(ex / "feature_stream_rss"), wav])
        mem[f"stream_{label}"] = {"peak_rss_kib": rss, **out}
    for label, wav in (("1min", a.wav_1min), ("10min", a.wav_10min)):
        log(f"memory: in-memory extract, {label}")
        rss, out = peak_rss_kib([str(ex / "feature_timing"), wav, "1"])
        mem[f"extract_{label}"] = {"peak_rss_kib": rss, "frames": out["frames"]}
    results["memory"] = mem

    # Report -------------------------------------------------------------------------------
    o = ours["median_s"]
    r_lib = lib["together_s"] / o
    r_kal = kal["median_s"] / o
    s = results["sealing"]
    r_seal = s["ours_gb_per_s"] / s["age_gb_per_s"]
    r_enc = s["no_hash_gb_per_s"] / s["age_gb_per_s"]
    results["ratios"] = {"librosa_over_ours": r_lib, "kaldi_over_ours": r_kal,
                         "ours_over_age_throughput": r_seal,
                         "encryptor_over_age_throughput": r_enc,
                         "librosa_log_mel_over_ours": lib["log_mel_s"] / o}
    results["aims"] = {"librosa_5x": r_lib >= 5, "kaldi_15x": r_kal >= 15,
                       "seal_ge_age": r_seal >= 1, "encrypt_ge_age": r_enc >= 1}

    m = results["machine"]
    print(f"\nMachine: {m['cpu']}, {m['nproc']} CPUs; median of {a.runs} runs after a warm-up, "
          f"median over {a.rounds} rounds")
    print(f"Features, {ours['audio_s']:.0f} s of 16 kHz audio, one core (taskset -c 0):")
    print(f"  {'what':44} {'median':>10} {'frames':>7} {'vs ours':>9}")
    rows = [
        ("voxseal extract (log-mel + MFCC)", o, ours["frames"], None),
        ("librosa log-mel (melspectrogram+power_to_db)", lib["log_mel_s"], lib["frames"],
         lib["log_mel_s"] / o),
        ("librosa mfcc(S=log_mel)", lib["mfcc_s"], lib["frames"], None),
        ("librosa log-mel + MFCC", lib["together_s"], lib["frames"], r_lib),
        ("kaldi-native-fbank fbank (80 bins)", kal["median_s"], kal["frames"], r_kal),
        ("  the same, passing the ndarray (slower copy)", kal["ndarray_median_s"],
         kal["frames"], kal["ndarray_median_s"] / o),
    ]
    for name, t, fr, ratio in rows:
        rs = f"{ratio:8.1f}x" if ratio else ""
        print(f"  {name:44} {t * 1e3:8.1f}ms {fr:7d} {rs:>9}")
    per_round = ", ".join(f"{x['librosa_over_ours']:.1f}x/{x['kaldi_over_ours']:.1f}x"
                          for x in rounds)
    print(f"  per round, librosa/ours and kaldi/ours: {per_round}")
    print(f"\nSealing {s['bytes'] / 2**30:.2f} GiB to one X25519 recipient, output /dev/null:")
    print(f"  {'voxseal seal_to_writer (age + SHA-256)':40} {s['ours_s']:6.3f} s  "
          f"{s['ours_gb_per_s']:5.2f} GB/s")
    print(f"  {'Go age ' + s['age_version']:40} {s['age_s']:6.3f} s  "
          f"{s['age_gb_per_s']:5.2f} GB/s")
    print(f"  {'voxseal AgeWriter alone (no SHA-256)':40} {s['no_hash_s']:6.3f} s  "
          f"{s['no_hash_gb_per_s']:5.2f} GB/s")
    print(f"  {'the age crate encryptor (no SHA-256)':40} {s['age_crate_s']:6.3f} s  "
          f"{s['age_crate_gb_per_s']:5.2f} GB/s")
    print(f"  ours / age throughput: {r_seal:.2f} sealing, {r_enc:.2f} encryption alone")
    print("\nPeak RSS (KiB):")
    for k, v in mem.items():
        extra = f"  {v['audio_s']:.0f} s audio" if "audio_s" in v else f"  {v['frames']} frames"
        print(f"  {k:16} {v['peak_rss_kib']:8d}{extra}")
    print("\nAims:")
    print(f"  log-mel + MFCC >= 5x librosa:            {r_lib:5.1f}x  "
          f"{'met' if r_lib >= 5 else 'NOT met'}")
    print(f"  log-mel + MFCC >= 15x kaldi-native-fbank: {r_kal:5.1f}x  "
          f"{'met' if r_kal >= 15 else 'NOT met'}")
    print(f"  sealing (+ SHA-256) >= Go age:            {r_seal:5.2f}x  "
          f"{'met' if r_seal >= 1 else 'NOT met'}")
    print(f"  age encryption alone >= Go age:           {r_enc:5.2f}x  "
          f"{'met' if r_enc >= 1 else 'NOT met'}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
