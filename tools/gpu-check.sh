#!/usr/bin/env bash
# gpu-check.sh — every GPU check of sdstream in one run, for a machine with an NVIDIA GPU:
#
#   bash tools/gpu-check.sh            (from the repository root, or anywhere)
#
# 1. the machine: nvidia-smi, nvcc, the driver; "no GPU found" and exit 1 at once without one
# 2. build: Release, -DSD_CUDA=ON -DSD_CUDA_ARCHS=90 (Hopper) -DSD_GPU_TESTS=ON, -j16, timed; with
#    the system's libraries, else those tools/gpu-prepare.sh carried in .gpu/deps.tar.xz
# 3. op parity: test_backend_ops --backend cuda --require in fp16, bf16 and fp32 (every op of the
#    backend interface against the CPU backend: 1e-2 / 1e-4 relative error, NaN never passes)
# 4. golden tests on CUDA: ctest -L gpu (tools/gpu-tests.txt), reference files from
#    ../shared/reference, else .gpu/reference (tools/gpu-prepare.sh)
# 5. the four StreamDiffusion CFG modes (none, self, initialize, full) through `sdstream stream` on
#    tiny SD 1.5 + TAESD with --backend cuda, each against the same command on the CPU
# 6. compute-sanitizer memcheck --leak-check full on test_unet (CUDA), where it is installed
# 7. sdstream bench --backend cuda on full-size random-weight sd-turbo (img2img, 1 step) and SD 1.5
#    (stream batch t_index 0,16,32,45, cfg none), 512x512, TAESD; GPU memory sampled meanwhile; then
#    an op-by-op profile of the sd-turbo frame (SDSTREAM_PROFILE=1), into bench.txt
# 8. with GPU_CHECK_ANCHOR=1 and devkit/gpu-anchor carried: the Python original timed on the same
#    card (../shared/gpu-anchor, issue 14), gpu_anchor.json in $OUT
#
# Each stage has its own time limit, and all of them together a deadline (GPU_CHECK_BUDGET, default
# 540 s: a device command may run 600 s); a stage that fails or runs out of time is recorded and
# the rest still run; a stage the deadline leaves no time for is NO-TIME, a failure. A second run on
# the same machine reuses the build and the full-size models (GPU_CHECK_MODELS, default
# /tmp/sdstream-gpu-models); GPU_CHECK_SKIP="bench memcheck" leaves stages out; op parity draws its
# inputs from GPU_CHECK_SEED (default 1), so a failure reproduces.
# Logs: $OUT (the device tool's folder; else ./gpu-check-out): summary.txt, bench.txt,
# failures.txt and logs.tar.gz with every stage's full log. The table comes last.
# Exit status 0 only when every stage passed. A person's command, the date, device and driver are
# at the top of summary.txt, for bench/RESULTS.md.
#
# --dry-run-on-cpu: for checking this script on a machine without a GPU: no GPU needed, the CPU
# backend everywhere CUDA would be, small bench sizes. Its results say nothing about a GPU.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
DRY=0
[ "${1:-}" = "--dry-run-on-cpu" ] && DRY=1
if [ $# -gt 0 ] && [ $DRY -eq 0 ]; then
    sed -n '2,30p' "$0"
    exit 2
fi
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}
DEADLINE=$((START + BUDGET))
OUT=${OUT:-$ROOT/gpu-check-out}
WORK=${GPU_CHECK_WORK:-/tmp/sdstream-gpu-check}
LOGS=$WORK/logs
BUILD=$ROOT/build-gpu
JOBS=${GPU_CHECK_JOBS:-16}
BACKEND=cuda
[ $DRY -eq 1 ] && BACKEND=cpu && BUILD=$ROOT/build-gpu-dry && JOBS=${GPU_CHECK_JOBS:-2}
mkdir -p "$OUT" || exit 1
rm -rf "$WORK"
mkdir -p "$LOGS" || exit 1
export PATH="$PATH:/usr/local/cuda/bin"
# cuBLAS is opened at run time (src/backend/cuda/cuda_blas.cu): the toolkit's lib64 beside nvcc, and
# the pip wheel's copy in the image's Python, where the loader's cache has neither
NVCC_BIN=$(command -v nvcc 2> /dev/null || true)
for d in ${NVCC_BIN:+"$(dirname "$NVCC_BIN")/../lib64"} /usr/local/cuda/lib64 \
    $(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2> /dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH

ROWS=()
FAILED=0
# row NAME RESULT KEY: one line of the table. RESULT pass, FAIL, TIMEOUT, or SKIP: not run because
# an earlier stage failed (that one is the FAIL) or the tool is not installed (compute-sanitizer)
row() {
    ROWS+=("$(printf '%-26s %-7s %s' "$1" "$2" "$3")")
    case $2 in pass | SKIP) ;; *) FAILED=1 ;; esac
    echo "== $1: $2 $3"
}
left() { echo $((DEADLINE - $(date +%s))); }
# run_stage LIMIT LOG CMD...: CMD under `timeout`, at most LIMIT s and never past the deadline
# (15 s kept for the summary); output to $LOGS/LOG. Status 124 on a time-out, 125 when no time was left.
run_stage() {
    local limit=$1 log=$2
    shift 2
    local avail=$(($(left) - 15))
    [ "$limit" -gt "$avail" ] && limit=$avail
    if [ "$limit" -lt 5 ]; then
        echo "out of time before this stage" > "$LOGS/$log"
        return 125
    fi
    echo "-- $(date -u +%H:%M:%S) $log (limit ${limit}s): $*" >&2
    timeout --kill-after=5 "$limit" "$@" > "$LOGS/$log" 2>&1
}
verdict() { # status -> pass / FAIL / TIMEOUT / NO-TIME (the deadline came first: not checked, a failure)
    case $1 in 0) echo pass ;; 124 | 137) echo TIMEOUT ;; 125) echo NO-TIME ;; *) echo FAIL ;; esac
}
# GPU_CHECK_SKIP="bench memcheck": stages left out (ops golden cfg bench profile memcheck), e.g. on a
# second run after a fix; each shows as SKIP
wanted() {
    case " ${GPU_CHECK_SKIP:-} " in *" $1 "*) return 1 ;; *) return 0 ;; esac
}

# ---- 1. the machine ----
{
    echo "sdstream gpu-check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-100)"
    echo "command: bash tools/gpu-check.sh $*"
    uname -a
} > "$LOGS/machine.txt"
if [ $DRY -eq 0 ]; then
    if ! command -v nvidia-smi > /dev/null 2>&1 || ! timeout 30 nvidia-smi -L > "$LOGS/gpus.txt" 2>&1 ||
        ! grep -q '^GPU ' "$LOGS/gpus.txt"; then
        echo "no GPU found: $(command -v nvidia-smi > /dev/null 2>&1 && head -c 300 "$LOGS/gpus.txt" || echo 'nvidia-smi is not installed')"
        echo "gpu-check needs an NVIDIA GPU and its driver; nothing was checked"
        exit 1
    fi
    timeout 30 nvidia-smi >> "$LOGS/machine.txt" 2>&1
    GPU=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
else
    GPU="none (--dry-run-on-cpu: the CPU stands in for CUDA)"
fi
NVCC=$(command -v nvcc > /dev/null && nvcc --version | tail -2 | tr '\n' ' ' || echo "nvcc not found")
{
    echo "GPU: $GPU"
    echo "nvcc: $NVCC"
    echo "cmake: $(cmake --version 2>/dev/null | head -1); cc: $(cc --version 2>/dev/null | head -1)"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) cores"
} | tee -a "$LOGS/machine.txt"
row machine pass "$GPU"

# reference files: the whole ../shared/reference when this machine has it, else the carried subset
REF=${SD_REFERENCE_DIR:-}
if [ -z "$REF" ]; then
    if [ -d "$ROOT/../shared/reference/models/tiny-sd15" ]; then REF=$ROOT/../shared/reference
    else REF=$ROOT/.gpu/reference; fi
fi
export SD_REFERENCE_DIR=$REF
echo "reference: $REF" | tee -a "$LOGS/machine.txt"

# ---- 2. build ----
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DSD_GPU_TESTS=ON "-DSD_REFERENCE_DIR=$REF")
if [ $DRY -eq 0 ]; then CMAKE_ARGS+=(-DSD_CUDA=ON -DSD_CUDA_ARCHS=90); else CMAKE_ARGS+=(-DSD_CUDA=OFF); fi
# the carried dependencies (gpu-prepare.sh): headers and libraries to build with, and at run time
# only the libraries the system lacks
use_carried_deps() {
    local d=$WORK/deps
    [ -f "$ROOT/.gpu/deps.tar.xz" ] || { echo "no .gpu/deps.tar.xz (tools/gpu-prepare.sh makes it)"; return 1; }
    tar -C "$WORK" -xJf "$ROOT/.gpu/deps.tar.xz" || return 1
    cc -shared -fPIC -O2 -Wl,-soname,libopenblas.so.0 -o "$d/lib/libopenblas.so.0" "$d/src/openblas_stub.c" || return 1
    ln -sf libopenblas.so.0 "$d/lib/libopenblas.so"
    mkdir -p "$d/active"
    local known
    known=$(ldconfig -p 2>/dev/null)
    for f in "$d"/lib/*.so.*; do
        local so
        so=$(basename "$f")
        grep -qE "^[[:space:]]+$so " <<< "$known" || ln -sf "$f" "$d/active/$so"
    done
    echo "libraries lent at run time (not on this system): $(find "$d/active" -name '*.so*' -printf '%f ' | sort)"
    DEPS_ARGS=("-DCJSON_INCLUDE_DIR=$d/include" "-DCJSON_LIBRARY=$d/lib/libcjson.so"
        "-DCBLAS_INCLUDE_DIR=$d/include" "-DOPENBLAS_LIBRARY=$d/lib/libopenblas.so"
        "-DSTB_INCLUDE_DIR=$d/include" "-DSTB_LIBRARY=$d/lib/libstb.so"
        "-DPNG_PNG_INCLUDE_DIR=$d/include" "-DPNG_LIBRARY=$d/lib/libpng16.so"
        "-DZLIB_INCLUDE_DIR=$d/include" "-DZLIB_LIBRARY=$d/lib/libz.so"
        "-DTURBOJPEG_INCLUDE_DIR=$d/include" "-DTURBOJPEG_LIBRARY=$d/lib/libturbojpeg.so"
        "-DLWS_INCLUDE_DIR=$d/include" "-DLWS_LIBRARY=$d/lib/libwebsockets.so"
        "-DCURL_INCLUDE_DIR=$d/include" "-DCURL_LIBRARY=$d/lib/libcurl.so" -DCURL_NO_CURL_CMAKE=ON
        "-DOPENSSL_INCLUDE_DIR=$d/include" "-DOPENSSL_CRYPTO_LIBRARY=$d/lib/libcrypto.so"
        "-DOPENSSL_SSL_LIBRARY=$d/lib/libssl.so"
        "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$d/lib" "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$d/lib")
    export LD_LIBRARY_PATH=$d/active${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
DEPS_ARGS=()
t0=$(date +%s)
# A build left by an earlier run on this machine is reused (incremental); one made with the carried
# libraries needs them again.
DEPS_NOTE="system libraries"
if [ -f "$BUILD/.gpu-check-carried-deps" ]; then
    use_carried_deps > "$LOGS/deps.txt" 2>&1 && DEPS_NOTE="carried libraries (.gpu/deps.tar.xz)"
fi
run_stage 90 configure.txt cmake -S "$ROOT" -B "$BUILD" "${CMAKE_ARGS[@]}" "${DEPS_ARGS[@]}"
st=$?
# GPU_CHECK_CARRIED_DEPS=1: the carried libraries even where the system has its own (to check them)
[ "${GPU_CHECK_CARRIED_DEPS:-0}" = 1 ] && [ ${#DEPS_ARGS[@]} -eq 0 ] && st=1
if [ $st -ne 0 ] && [ $st -ne 124 ] && [ $st -ne 125 ] && [ ${#DEPS_ARGS[@]} -eq 0 ]; then
    mv "$LOGS/configure.txt" "$LOGS/configure-system.txt"
    if use_carried_deps > "$LOGS/deps.txt" 2>&1; then
        DEPS_NOTE="carried libraries (.gpu/deps.tar.xz)"
        rm -rf "$BUILD"
        run_stage 90 configure.txt cmake -S "$ROOT" -B "$BUILD" "${CMAKE_ARGS[@]}" "${DEPS_ARGS[@]}"
        st=$?
        touch "$BUILD/.gpu-check-carried-deps"
    else
        cat "$LOGS/deps.txt" >> "$LOGS/configure-system.txt"
    fi
fi
if [ $st -eq 0 ]; then
    run_stage 300 build.txt cmake --build "$BUILD" -j "$JOBS"
    st=$?
fi
BUILD_S=$(($(date +%s) - t0))
row build "$(verdict $st)" "${BUILD_S} s configure+build -j$JOBS, $DEPS_NOTE"
BUILT=$([ $st -eq 0 ] && echo 1 || echo 0)

# make-model in the background meanwhile (CPU work; the bench waits for it). The models live
# outside $WORK, which each run empties: a second call on the same machine reuses them.
MM=${GPU_CHECK_MODELS:-/tmp/sdstream-gpu-models}
MM_PID=""
if [ "$BUILT" = 1 ] && wanted bench; then
    mkdir -p "$MM"
    (
        for arch in sd-turbo sd15; do
            if [ -f "$MM/$arch.done" ]; then
                { echo "reusing $MM/$arch from an earlier run"; echo "exit 0"; } > "$LOGS/make-model-$arch.txt"
                continue
            fi
            rm -rf "${MM:?}/$arch"
            nice timeout 200 "$BUILD/sdstream" make-model --arch "$arch" --random --output "$MM/$arch" --threads 8 \
                > "$LOGS/make-model-$arch.txt" 2>&1
            rc=$?
            echo "exit $rc" >> "$LOGS/make-model-$arch.txt"
            [ $rc -eq 0 ] && touch "$MM/$arch.done"
        done
    ) &
    MM_PID=$!
    trap 'pkill -P "$MM_PID" 2> /dev/null; kill "$MM_PID" 2> /dev/null' EXIT
fi

# ---- 3. op parity ----
for dtype in fp16 bf16 fp32; do
    if ! wanted ops; then row "ops $dtype" SKIP GPU_CHECK_SKIP; continue; fi
    if [ "$BUILT" != 1 ]; then row "ops $dtype" SKIP "no build"; continue; fi
    if [ $DRY -eq 0 ]; then
        run_stage 120 "ops-$dtype.txt" "$BUILD/test_backend_ops" --backend cuda --dtype "$dtype" --require --seed "${GPU_CHECK_SEED:-1}"
    else
        run_stage 120 "ops-$dtype.txt" "$BUILD/test_backend_ops"
    fi
    st=$?
    key=$(grep '^summary:' "$LOGS/ops-$dtype.txt" | sed 's/^summary: //' | cut -c1-110)
    [ -n "$key" ] || key=$(grep -m1 -E 'no CUDA GPU|FAIL' "$LOGS/ops-$dtype.txt" | cut -c1-110)
    row "ops $dtype" "$(verdict $st)" "$key"
done

# ---- 4. golden tests on the GPU ----
if ! wanted golden; then
    row "golden (ctest -L gpu)" SKIP GPU_CHECK_SKIP
elif [ "$BUILT" != 1 ]; then
    row "golden (ctest -L gpu)" SKIP "no build"
elif [ $DRY -eq 0 ]; then
    run_stage 240 golden.txt ctest --test-dir "$BUILD" -L gpu -E backend_ops --output-on-failure -j 4
    st=$?
    row "golden (ctest -L gpu)" "$(verdict $st)" "$(grep -E 'tests passed' "$LOGS/golden.txt" | tail -1)"
else # the same tests and cases on the CPU (the gpu label's tests would look for CUDA)
    # shellcheck disable=SC2317 # run through bash -c below
    dry_golden() {
        local fail=0
        while read -r name cases; do
            case $name in test_*) ;; *) continue ;; esac
            [ "$cases" = all ] && cases=""
            (cd "$BUILD" && SDSTREAM_TEST_BACKEND=cpu SD_TEST_CASES="$cases" "./$name") > "$LOGS/golden-$name.txt" 2>&1 ||
                { echo "$name FAILED"; fail=1; }
            echo "$name: $(tail -1 "$LOGS/golden-$name.txt")"
        done < "$ROOT/tools/gpu-tests.txt"
        return "$fail"
    }
    run_stage 300 golden.txt bash -c "$(declare -f dry_golden); ROOT='$ROOT'; BUILD='$BUILD'; LOGS='$LOGS'; dry_golden"
    st=$?
    row "golden (cpu, dry run)" "$(verdict $st)" "$(grep -c ' 0 failed' "$LOGS/golden.txt") of $(grep -c '^test_' "$ROOT/tools/gpu-tests.txt") tests"
fi

# ---- 5. the four CFG modes through the command, GPU against CPU ----
# The golden cases' settings (shared/reference README §2.6): tiny SD 1.5 + TAESD, 128x128, steps
# 32,45, seed 2, their 8 input frames. Output: y4m (8-bit 4:2:0) from each backend, compared by
# ||gpu - cpu|| / ||cpu - 128||: limit 2e-2, the fp16 limit 1e-2 plus both outputs' 8-bit rounding.
cfg_compare() { # a.y4m b.y4m -> "rel max_abs frames", exit 1 when they differ in frame count or size
    python3 - "$1" "$2" << 'PY'
import sys
def frames(path):
    data = open(path, "rb").read()
    end = data.index(b"\n")
    header, rest, out = data[:end].split(), data[end + 1:], []
    w = int([t for t in header if t.startswith(b"W")][0][1:]); h = int([t for t in header if t.startswith(b"H")][0][1:])
    size = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    while rest.startswith(b"FRAME"):
        start = rest.index(b"\n") + 1
        out.append(rest[start:start + size]); rest = rest[start + size:]
    return out
a, b = frames(sys.argv[1]), frames(sys.argv[2])
if len(a) != len(b) or not a or any(len(x) != len(y) for x, y in zip(a, b)):
    print(f"frames differ: {len(a)} vs {len(b)}"); sys.exit(1)
num = den = 0.0; mx = 0
for x, y in zip(a, b):
    for p, q in zip(x, y):
        d = p - q; num += d * d; den += (q - 128) * (q - 128); mx = max(mx, abs(d))
print(f"{(num / den) ** 0.5 if den else float('inf'):.3e} {mx} {len(a)}")
PY
}
# the 8 input frames of those cases, as PNGs, from the golden (Python's standard library only)
extract_frames() {
    python3 - "$REF/golden/stream/sd15_i2i_none_batch.safetensors" "$WORK/frames" << 'PY'
import json, os, struct, sys, zlib
path, out = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n)); data = f.read()
os.makedirs(out, exist_ok=True)
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
for k in range(int(header["__metadata__"]["n_calls"])):
    t = header[f"call{k}.input_u8"]; h, w, _ = t["shape"]; b, e = t["data_offsets"]; rgb = data[b:e]
    raw = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    with open(os.path.join(out, f"frame_{k:02d}.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
print(f"{k + 1} frames of {w}x{h}")
PY
}
extract_frames > "$LOGS/frames.txt" 2>&1
PROMPT="a photo of a cat wearing sunglasses, digital art"
NEG="blurry, low quality"
for mode in none self initialize full; do
    if ! wanted cfg; then row "cfg $mode" SKIP GPU_CHECK_SKIP; continue; fi
    if [ "$BUILT" != 1 ]; then row "cfg $mode" SKIP "no build"; continue; fi
    if [ ! -f "$WORK/frames/frame_00.png" ]; then
        row "cfg $mode" FAIL "no input frames: $(head -c 120 "$LOGS/frames.txt")"
        continue
    fi
    case $mode in
    none) extra=() ;;
    self) extra=(--guidance 1.4 --delta 0.5) ;;
    initialize) extra=(--guidance 1.4 --delta 1.0 --negative-prompt "$NEG") ;;
    full) extra=(--guidance 1.4 --negative-prompt "$NEG") ;;
    esac
    ok=1
    for tag in gpu cpu; do
        be=$BACKEND
        [ $tag = cpu ] && be=cpu
        run_stage 60 "cfg-$mode-$tag.txt" "$BUILD/sdstream" stream --model "$REF/models/tiny-sd15" --taesd "$REF/models/taesd" \
            --prompt "$PROMPT" --input "$WORK/frames" --output "$WORK/cfg-$mode-$tag.y4m" --width 128 --height 128 \
            --t-index-list 32,45 --cfg-type "$mode" --seed 2 --backend "$be" "${extra[@]}"
        st=$?
        [ $st -eq 0 ] || { ok=0; break; }
    done
    if [ $ok = 1 ]; then
        res=$(cfg_compare "$WORK/cfg-$mode-gpu.y4m" "$WORK/cfg-$mode-cpu.y4m" 2>&1)
        rel=$(echo "$res" | awk '{print $1}')
        fps=$(grep -m1 -oE '[0-9.]+ fps' "$LOGS/cfg-$mode-gpu.txt")
        if echo "$res" | grep -qE '^[0-9.e+-]+ [0-9]+ [0-9]+$' && awk -v r="$rel" 'BEGIN { exit !(r < 2e-2) }'; then
            row "cfg $mode" pass "vs cpu: rel $rel, max $(echo "$res" | awk '{print $2}') levels, $(echo "$res" | awk '{print $3}') frames; ${fps:-fps ?}"
        else
            row "cfg $mode" FAIL "vs cpu: $res (limit 2e-2)"
        fi
    else
        row "cfg $mode" "$(verdict $st)" "sdstream stream --backend $be: $(grep -m1 -iE 'error' "$LOGS/cfg-$mode-$tag.txt" | cut -c1-90)"
    fi
done

# ---- 7. benchmarks (before the sanitizer: the timings matter more) ----
MM_WAIT=0
if [ -n "$MM_PID" ]; then
    run_stage 240 make-model-wait.txt bash -c "while kill -0 $MM_PID 2> /dev/null; do sleep 1; done"
    MM_WAIT=$?
fi
SIZES=512 FRAMES=50
[ $DRY -eq 1 ] && SIZES=64 FRAMES=1
bench() { # name arch extra-args...
    local name=$1 arch=$2
    shift 2
    if ! wanted bench; then row "bench $name" SKIP GPU_CHECK_SKIP; return; fi
    if [ "$BUILT" != 1 ]; then row "bench $name" SKIP "no build"; return; fi
    if [ "$MM_WAIT" -ne 0 ]; then
        row "bench $name" "$(verdict "$MM_WAIT")" "make-model had not finished"
        return
    fi
    if ! grep -q '^exit 0' "$LOGS/make-model-$arch.txt" 2> /dev/null; then
        row "bench $name" FAIL "make-model --arch $arch: $(tail -2 "$LOGS/make-model-$arch.txt" 2> /dev/null | tr '\n' ' ' | cut -c1-90)"
        return
    fi
    local mem=$WORK/gpu-mem-$arch.txt sampler=""
    if [ $DRY -eq 0 ]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$mem" 2> /dev/null &
        sampler=$!
    fi
    run_stage 150 "bench-$name.txt" "$BUILD/sdstream" bench --model "$MM/$arch" --taesd "$MM/$arch/taesd" --backend "$BACKEND" \
        --sizes "$SIZES" --frames "$FRAMES" --no-vae --no-scaling "$@"
    local st=$?
    [ -n "$sampler" ] && kill "$sampler" 2> /dev/null
    local peak="" step unet
    [ -s "$mem" ] && peak=", GPU memory peak $(sort -n "$mem" | tail -1) MiB (all processes)"
    # the table's rows: name, size, ms, GFLOP, GFLOP/s, % of peak
    step=$(awk '/^stream (img2img|txt2img) step/ {print $(NF-3) " ms"}' "$LOGS/bench-$name.txt" | tail -1)
    unet=$(awk '/^unet/ {print $(NF-3) " ms"}' "$LOGS/bench-$name.txt" | tail -1)
    row "bench $name" "$(verdict $st)" "step ${step:-?}, unet ${unet:-?} ($SIZES px)$peak"
    { echo "=== bench $name: sdstream bench --model $arch --backend $BACKEND --sizes $SIZES --frames $FRAMES $*"
        cat "$LOGS/bench-$name.txt"
        [ -s "$mem" ] && echo "GPU memory used (nvidia-smi, every 200 ms, all processes): peak $(sort -n "$mem" | tail -1) MiB"; } >> "$OUT/bench.txt"
}
rm -f "$OUT/bench.txt"
bench "sd-turbo 1 step" sd-turbo
bench "sd15 4-step batch" sd15 --t-index-list 0,16,32,45 --cfg-type none

# where a frame's time goes, op by op (SDSTREAM_PROFILE: each op timed after a synchronize, so the
# total is slower than the bench's; the table says which ops to fuse or replace first)
if wanted profile && [ "$BUILT" = 1 ] && [ "$MM_WAIT" -eq 0 ] && grep -q '^exit 0' "$LOGS/make-model-sd-turbo.txt" 2> /dev/null; then
    run_stage 90 profile-sd-turbo.txt env SDSTREAM_PROFILE=1 "$BUILD/sdstream" bench --model "$MM/sd-turbo" \
        --taesd "$MM/sd-turbo/taesd" --backend "$BACKEND" --sizes "$SIZES" --frames 3 --no-vae --no-scaling
    st=$?
    row "op profile sd-turbo" "$(verdict $st)" "in bench.txt"
    { echo "=== op profile, sd-turbo 1 step at $SIZES px (SDSTREAM_PROFILE=1, 3 frames + warm-up)"
        cat "$LOGS/profile-sd-turbo.txt"; } >> "$OUT/bench.txt"
fi

# the Python original on the same card (issue 14; devkit/gpu-anchor from ../shared/gpu-anchor/prepare.sh,
# carried): only when asked, GPU_CHECK_ANCHOR=1, since its ~150 s rarely fit beside the rest
if [ "${GPU_CHECK_ANCHOR:-0}" = 1 ] && [ -f devkit/gpu-anchor/run_anchor.py ] && [ $DRY -eq 0 ]; then
    run_stage 180 anchor.txt env PYTHONUNBUFFERED=1 python3 devkit/gpu-anchor/run_anchor.py --device cuda --size 512 \
        --frames 100 --warmup 10 --parts a,c,d --budget 140
    st=$?
    row "python anchor (a,c,d)" "$(verdict $st)" "gpu_anchor.json in \$OUT"
fi

# ---- 6. compute-sanitizer ----
SAN=$(command -v compute-sanitizer || true)
if ! wanted memcheck; then
    row "memcheck" SKIP GPU_CHECK_SKIP
elif [ $DRY -eq 1 ]; then
    row "memcheck" SKIP "dry run"
elif [ -z "$SAN" ]; then
    row "memcheck" SKIP "compute-sanitizer not installed"
elif [ "$BUILT" != 1 ]; then
    row "memcheck" SKIP "no build"
else
    run_stage 240 memcheck.txt env SDSTREAM_TEST_BACKEND=cuda SD_TEST_CASES=sd15-folder \
        "$SAN" --tool memcheck --leak-check full --error-exitcode 3 "$BUILD/test_unet"
    st=$?
    row "memcheck test_unet" "$(verdict $st)" "$(grep -m1 'ERROR SUMMARY' "$LOGS/memcheck.txt"); $(grep -m1 -E 'LEAK SUMMARY|leaked' "$LOGS/memcheck.txt" | cut -c1-60)"
fi

# ---- results ----
TOTAL=$(($(date +%s) - START))
{
    echo "sdstream gpu-check: $([ $FAILED -eq 0 ] && echo 'every check passed' || echo 'SOME CHECKS FAILED'), ${TOTAL} s"
    head -3 "$LOGS/machine.txt"
    grep -E '^(GPU|nvcc|CPU|reference):' "$LOGS/machine.txt"
    echo
    printf '%-26s %-7s %s\n' check result "key number"
    printf '%s\n' "${ROWS[@]}"
} > "$OUT/summary.txt"
grep -H -E '(^|[^A-Za-z])FAIL|NOT CAUGHT|no CUDA GPU|[Ee]rror:|\*\*\*Failed|Timeout|TIMEOUT|ERROR SUMMARY: [1-9]' "$LOGS"/*.txt 2> /dev/null |
    sed "s|^$LOGS/||" | head -300 > "$OUT/failures.txt"
cp "$OUT/summary.txt" "$LOGS/"
tar -C "$WORK" -czf "$OUT/logs.tar.gz" logs 2> /dev/null
echo
echo "logs: $OUT (summary.txt, bench.txt, failures.txt, logs.tar.gz)"
cat "$OUT/summary.txt"
exit $FAILED
