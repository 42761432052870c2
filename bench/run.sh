#!/usr/bin/env bash
# Compares Voxseal's feature extraction with librosa and kaldi-native-fbank, and its sealing
# with the Go `age` CLI, on this machine. Prints a table with the ratios (docs/performance.md).
#
#   bench/run.sh [--runs N] [--rounds N] [--json FILE]
#
# Needs: cargo, the test venv (scripts/setup.sh --test: librosa, kaldi-native-fbank,
# soundfile), and the Debian packages age, espeak-ng, sox, util-linux (taskset), time.
# Makes, under bench/data/ (gitignored, kept between runs): a 10-minute 16 kHz mono 16-bit
# speech WAV (espeak-ng reading two standard passages, resampled and repeated with sox), and
# its first minute. Made for the run and deleted afterwards: a 60-minute WAV (the 10-minute
# one six times) and a 1 GiB random file on /dev/shm.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
VOXSEAL_LOG_TAG=bench
# shellcheck source=scripts/env.sh
. "$VOXSEAL_ROOT/scripts/env.sh"

runs=5
rounds=3
json="$VOXSEAL_ROOT/bench/data/results.json"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        -h|--help) sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

for tool in cargo age age-keygen espeak-ng sox soxi taskset /usr/bin/time; do
    have "$tool" || die "$tool not found (scripts/setup.sh --test installs the Debian packages)"
done
[[ -x $VOXSEAL_PYTHON ]] || die "no test venv at $VOXSEAL_PYTHON: run scripts/setup.sh --test"

DATA="$VOXSEAL_ROOT/bench/data"
mkdir -p "$DATA"
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm="${TMPDIR:-/tmp}"
SCRATCH="$(mktemp -d "$shm/voxseal-bench.XXXXXX")"
WAV60="$DATA/speech_3600s.wav"
cleanup() { rm -rf "$SCRATCH"; rm -f "$WAV60"; }
trap cleanup EXIT

say "building the release examples (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release -p voxseal-core --examples
EXAMPLES="$CARGO_TARGET_DIR/release/examples"

# --- the speech file -------------------------------------------------------------------
WAV10="$DATA/speech_600s.wav"
WAV1="$DATA/speech_60s.wav"
if [[ ! -s $WAV10 || $(soxi -s "$WAV10" 2>/dev/null || echo 0) != 9600000 ]]; then
    say "making $WAV10 (espeak-ng + sox)"
    cat > "$SCRATCH/a.txt" <<'EOF'
The North Wind and the Sun were disputing which was the stronger, when a traveler came along wrapped in a warm cloak. They agreed that the one who first succeeded in making the traveler take his cloak off should be considered stronger than the other. Then the North Wind blew as hard as he could, but the more he blew the more closely did the traveler fold his cloak around him; and at last the North Wind gave up the attempt. Then the Sun shined out warmly, and immediately the traveler took off his cloak. And so the North Wind was obliged to confess that the Sun was the stronger of the two.
EOF
    cat > "$SCRATCH/b.txt" <<'EOF'
When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow. The rainbow is a division of white light into many beautiful colors. These take the shape of a long round arch, with its path high above, and its two ends apparently beyond the horizon. There is, according to legend, a boiling pot of gold at one end. People look, but no one ever finds it. When a man looks for something beyond his reach, his friends say he is looking for the pot of gold at the end of the rainbow.
EOF
    # Two voices (a lower male US voice, a higher female UK variant), ~88 s together.
    espeak-ng -v en-us -s 165 -p 45 -g 6 -f "$SCRATCH/a.txt" -w "$SCRATCH/a.wav"
    espeak-ng -v en-gb+f3 -s 150 -p 60 -g 8 -f "$SCRATCH/b.txt" -w "$SCRATCH/b.wav"
    # -R -D: repeatable, no dither, so the file is the same byte for byte on every machine
    # with the same espeak-ng and sox.
    sox -R -D "$SCRATCH/a.wav" "$SCRATCH/b.wav" -r 16000 -c 1 -b 16 "$SCRATCH/unit.wav"
    sox -R -D "$SCRATCH/unit.wav" "$SCRATCH/speech.wav" repeat 6 trim 0 600
    mv "$SCRATCH/speech.wav" "$WAV10"
fi
if [[ ! -s $WAV1 || $(soxi -s "$WAV1" 2>/dev/null || echo 0) != 960000 ]]; then
    sox -R -D "$WAV10" "$WAV1" trim 0 60
fi
say "speech: $(soxi -d "$WAV10") $(soxi -r "$WAV10") Hz, sha256 $(sha256sum "$WAV10" | cut -c1-16)..."
say "making the 60-minute file (deleted afterwards)"
sox -R -D "$WAV10" "$WAV60" repeat 5

# --- the big file and a key --------------------------------------------------------------
BIG="$SCRATCH/random_1GiB.bin"
say "making a 1 GiB random file in $SCRATCH (deleted afterwards)"
head -c 1073741824 /dev/urandom > "$BIG"
age-keygen -o "$SCRATCH/key.txt" 2>/dev/null
RECIPIENT="$(age-keygen -y "$SCRATCH/key.txt")"

# --- compare -----------------------------------------------------------------------------
"$VOXSEAL_PYTHON" "$VOXSEAL_ROOT/bench/compare.py" \
    --examples "$EXAMPLES" \
    --wav-10min "$WAV10" --wav-1min "$WAV1" --wav-60min "$WAV60" \
    --big-file "$BIG" --recipient "$RECIPIENT" \
    --runs "$runs" --rounds "$rounds" --json "$json"
