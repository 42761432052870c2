#!/usr/bin/env bash
# A private PulseAudio server for headless capture tests (no sound card needed).
#
#   eval "$(scripts/pulse.sh)"     start it (if not running) and export its env
#   scripts/pulse.sh start         same as no argument: prints the export lines
#   scripts/pulse.sh env           print the export lines only (no start, no check)
#   scripts/pulse.sh status        exit 0 if the server answers, 1 if not
#   scripts/pulse.sh stop          stop the server (by its pid file) and remove its socket
#
# The server has one sink, a null sink named voxseal_null; its monitor
# (voxseal_null.monitor) is the default source. So whatever is played into it
#   espeak-ng --stdout "hello" | paplay --device=voxseal_null
# is what a recorder using the default input hears. Processes with the printed
# env talk to this server only: PULSE_SERVER points at its socket, and
# ALSA_CONFIG_PATH adds a private config that makes ALSA's `default` PCM the
# pulse plugin (libasound2-plugins) on that socket, so cpal's ALSA host captures
# from it. Nothing system-wide and nothing in $HOME is touched.
#
# Everything lives in VOXSEAL_PULSE_DIR (default ${XDG_RUNTIME_DIR}/voxseal-pulse,
# or /tmp/voxseal-pulse-$UID without XDG_RUNTIME_DIR), created 0700: the
# socket, pid file, cookie, startup script, ALSA config and the server log
# (pulse.log). Running it again while the server is up takes milliseconds and
# prints the same lines. Progress goes to stderr; stdout holds only the exports.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=pulse

usage() { sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

uid=${EUID:-$(id -u)}
if [[ -n ${VOXSEAL_PULSE_DIR:-} ]]; then
    dir=$VOXSEAL_PULSE_DIR
elif [[ -n ${XDG_RUNTIME_DIR:-} ]]; then
    dir=$XDG_RUNTIME_DIR/voxseal-pulse
else
    dir=/tmp/voxseal-pulse-$uid
fi
SINK=voxseal_null
socket=$dir/native
pidfile=$dir/pid
# The stock top-level ALSA config; ours is read after it, so it wins.
alsa_conf=/usr/share/alsa/alsa.conf

print_env() {
    printf 'export PULSE_SERVER=%q\n' "unix:$socket"
    printf 'export PULSE_RUNTIME_PATH=%q\n' "$dir"
    printf 'export PULSE_STATE_PATH=%q\n' "$dir/state"
    printf 'export PULSE_COOKIE=%q\n' "$dir/cookie"
    printf 'export PULSE_CLIENTCONFIG=%q\n' "$dir/client.conf"
    printf 'export PULSE_SINK=%q\n' "$SINK"
    printf 'export PULSE_SOURCE=%q\n' "$SINK.monitor"
    printf 'export ALSA_CONFIG_PATH=%q\n' "$alsa_conf:$dir/asoundrc"
}

# Runs a command with this server's env (and nothing inherited that points elsewhere).
with_env() {
    env PULSE_SERVER="unix:$socket" PULSE_RUNTIME_PATH="$dir" PULSE_STATE_PATH="$dir/state" \
        PULSE_COOKIE="$dir/cookie" PULSE_CLIENTCONFIG="$dir/client.conf" "$@"
}

# True when the server answers on our socket (fast: one round trip, bounded).
answers() {
    [[ -S $socket ]] && with_env timeout 5 pactl info >/dev/null 2>&1
}

server_pid() {
    local pid
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    # The pid file may be stale and the pid reused: only ever act on a pulseaudio.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == pulseaudio ]] || return 1
    printf '%s\n' "$pid"
}

make_dir() {
    if [[ -e $dir && ! -O $dir ]]; then
        die "$dir exists but belongs to someone else; set VOXSEAL_PULSE_DIR"
    fi
    mkdir -p "$dir" "$dir/state"
    chmod 0700 "$dir" "$dir/state"
}

write_configs() {
    # Startup script (-n -F: no system default.pa, so no udev/ALSA card detection,
    # no D-Bus or X11 modules, no suspend-on-idle).
    cat >"$dir/default.pa" <<EOF
.fail
load-module module-native-protocol-unix socket=$socket auth-anonymous=1 auth-cookie-enabled=0
load-module module-null-sink sink_name=$SINK rate=48000 channels=2 sink_properties=device.description=Voxseal-null-sink
set-default-sink $SINK
set-default-source $SINK.monitor
EOF
    # Clients never start a server of their own.
    cat >"$dir/client.conf" <<EOF
autospawn = no
default-server = unix:$socket
EOF
    # ALSA: default PCM/ctl through the pulse plugin, on this server explicitly.
    cat >"$dir/asoundrc" <<EOF
pcm.!default {
    type pulse
    server "unix:$socket"
    hint {
        show on
        description "Voxseal test PulseAudio server"
    }
}
ctl.!default {
    type pulse
    server "unix:$socket"
}
EOF
}

# Loads the null sink again if someone unloaded it, and (re)sets the defaults.
ensure_sink() {
    if ! with_env pactl list short sinks 2>/dev/null | cut -f2 | grep -qx "$SINK"; then
        say "null sink missing; loading it again"
        with_env pactl load-module module-null-sink "sink_name=$SINK" rate=48000 channels=2 \
            sink_properties=device.description=Voxseal-null-sink >/dev/null
        with_env pactl set-default-sink "$SINK"
        with_env pactl set-default-source "$SINK.monitor"
    fi
}

start() {
    have pulseaudio || die "pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    have pactl || die "pactl is not installed (apt-get install pulseaudio-utils)"
    [[ -r $alsa_conf ]] || die "$alsa_conf not found: is libasound2 installed?"
    if ! compgen -G '/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so' >/dev/null; then
        say "warning: ALSA's pulse plugin is missing (apt-get install libasound2-plugins): ALSA clients will not reach the server"
    fi
    make_dir
    # Serialize concurrent starts (parallel test runners).
    exec 9>"$dir/lock"
    flock -w 30 9 || die "timed out waiting for $dir/lock"
    if answers; then
        ensure_sink
        print_env
        return 0
    fi
    local pid
    if pid=$(server_pid); then
        say "pulseaudio $pid is not answering; stopping it"
        stop_pid "$pid"
    fi
    rm -f "$socket" "$pidfile"
    write_configs
    local t0=$SECONDS
    # As root, pulseaudio only warns ("not intended to be run as root") and runs.
    # --realtime/--high-priority=no: no rtkit over D-Bus; --disallow-exit: clients
    # cannot `pactl exit` it; --exit-idle-time=-1: never exits when idle.
    # -D returns once the daemon is initialised (or failed).
    if ! with_env pulseaudio -D -n -F "$dir/default.pa" --system=false \
        --exit-idle-time=-1 --disallow-exit --use-pid-file=yes \
        --realtime=no --high-priority=no --log-level=notice \
        --log-target="file:$dir/pulse.log" </dev/null >/dev/null 2>>"$dir/pulse.log" 9>&-; then
        tail -n 20 "$dir/pulse.log" >&2 || true
        die "pulseaudio failed to start (log: $dir/pulse.log)"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        answers && break
        sleep 0.1
    done
    answers || die "pulseaudio started but does not answer on $socket (log: $dir/pulse.log)"
    ensure_sink
    say "pulseaudio $(server_pid || echo '?') up on $socket in $((SECONDS - t0)) s"
    print_env
}

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "pulseaudio $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

stop() {
    [[ -d $dir ]] || { say "not running (no $dir)"; return 0; }
    exec 9>"$dir/lock"
    flock -w 30 9 || die "timed out waiting for $dir/lock"
    local pid
    if pid=$(server_pid); then
        stop_pid "$pid"
        say "stopped pulseaudio $pid"
    else
        say "not running"
    fi
    rm -f "$socket" "$pidfile"
}

case "${1:-start}" in
    start) start ;;
    env) print_env ;;
    status)
        if answers; then
            say "running: pid $(server_pid || echo '?'), socket $socket"
        else
            say "not running"
            exit 1
        fi
        ;;
    stop) stop ;;
    -h | --help) usage ;;
    *)
        usage >&2
        die "unknown command: $1"
        ;;
esac
