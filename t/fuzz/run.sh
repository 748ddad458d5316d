#!/bin/sh
# t/fuzz/run.sh - build and run the libFuzzer harnesses for the lib/ parsers.
#
#   t/fuzz/run.sh [BUILDDIR [SECONDS [TARGET...]]]
#
# BUILDDIR (default build/fuzz) receives the objects, one binary per target,
# a working corpus per target (seeded from t/fuzz/corpus/NAME, which is
# never written to), logs and any crash artifacts.  Each target runs for
# SECONDS (default 30) of fuzzing; TARGET... picks some (default: every
# t/fuzz/*.c).
# Needs clang with libFuzzer (clang 14: libclang-rt-14-dev).  Not part of
# make or make check: the caller decides when to spend the time.
#
# Exit status: 0 if every target ran clean; 1 if any crashed, hung, leaked
# or broke an invariant (the log lines naming the problem and the artifact
# are shown); 2 on a build failure.  Run from anywhere: paths are taken
# relative to the repository root.

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=${1:-build/fuzz}
SECS=${2:-30}
[ $# -ge 2 ] && shift 2 || shift $#
# Every harness t/fuzz/NAME.c is a target.
ALL=$(for f in "$here"/*.c; do basename "$f" .c; done)
TARGETS=${*:-$ALL}
CC=${CC:-clang}

case $B in /*) ;; *) B=$root/$B ;; esac
mkdir -p "$B/obj" || exit 2

# Per-target input size limit: big enough for several frames/lines over
# buffer boundaries (8 KiB stream buffer, 32 KiB IPC chunk), small enough
# to fit a socket buffer in one go.
maxlen() {
    case $1 in
    ipc)          echo 70000 ;;
    stream)       echo 40000 ;;
    map)          echo 8192 ;;
    *)            echo 16384 ;;
    esac
}

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-g -O1 -std=gnu11 -Wall -Wextra"
LIBS="-lbsd -ldb -lssl -lcrypto -lunbound -lidn -lcrypt -lopendkim"

# Compile with the project's preprocessor flags (paths may hold blanks).
cc() {
    $CC $CFLAGS -I"$root/lib" -I"$root/t/lib" -I"$here" -isystem /usr/include/bsd \
        -DLIBBSD_OVERLAY -D_GNU_SOURCE -DDEF_DAEMON_DIRECTORY='"/x"' \
        -DDEF_CONFIG_DIRECTORY='"/y"' $SAN "$@"
}

# The library once, instrumented for coverage (fuzzer-no-link).
objs=
for src in "$root"/lib/*.c; do
    o=$B/obj/$(basename "$src" .c).o
    if [ ! -e "$o" ] || [ "$src" -nt "$o" ] || [ -n "$(find "$root/lib" -name '*.h' -newer "$o")" ]; then
        cc -fsanitize=fuzzer-no-link -c "$src" -o "$o" || exit 2
    fi
    objs="$objs $o"
done

for t in $TARGETS; do
    [ -f "$here/$t.c" ] || { echo "run.sh: no harness t/fuzz/$t.c" >&2; exit 2; }
    echo "  CC      fuzz/$t"
    cc -fsanitize=fuzzer "$here/$t.c" $objs $LIBS -o "$B/$t" || exit 2
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

status=0
for t in $TARGETS; do
    work=$B/corpus/$t
    art=$B/artifacts/$t
    log=$B/$t.log
    mkdir -p "$work" "$art"
    dict= seeds=
    [ -f "$here/$t.dict" ] && dict=-dict=$here/$t.dict
    [ -d "$here/corpus/$t" ] && seeds=$here/corpus/$t
    start=$(date +%s)
    "$B/$t" -max_total_time="$SECS" -max_len="$(maxlen "$t")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 $dict \
        -artifact_prefix="$art/" "$work" $seeds >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        printf '%-12s ok    %8s runs %7s exec/s  %s  (%ss)\n' "$t" "${runs:-?}" "${speed:-?}" "$cov" $((end - start))
    else
        printf '%-12s FAIL  exit %d after %ss; log %s\n' "$t" $rc $((end - start)) "$log"
        grep -E 'ERROR|FUZZ|SUMMARY|artifact|Test unit written' "$log" | head -20
        status=1
    fi
done
exit $status
