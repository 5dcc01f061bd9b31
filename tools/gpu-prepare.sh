#!/usr/bin/env bash
# gpu-prepare.sh — run on a machine WITH the reference folder, before a GPU session: copies the
# reference files the GPU checks read into .gpu/reference (git-ignored), small enough to travel with
# the working tree to a GPU machine that cannot see ../shared (tools/gpu-check.sh reads it there).
#
#   bash tools/gpu-prepare.sh [--build DIR]
#
# What it copies: tiny-sd15 (fp32 files only) and TAESD; the golden text-encoder, UNet, VAE and
# TAESD tensors of tiny-sd15; the four StreamDiffusion CFG cases (none, self, initialize, full),
# slimmed to what test_stream reads (each call's input frame, skip flag and output, and the
# metadata: the per-step debug tensors are dropped). Exactly the cases tools/gpu-tests.txt lists,
# and the files gpu-check.sh's own `sdstream stream` runs read.
# Then it proves the folder complete: with a build (DIR, default build, else build-gc), every test
# of tools/gpu-tests.txt runs its listed cases on the CPU against .gpu/reference (a missing file is
# a failure there, as everywhere). Source: $SD_REFERENCE_DIR, default ../shared/reference.
# Exit status: 0 when copied and verified; 1 otherwise (including "nothing to verify with").
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
SRC=${SD_REFERENCE_DIR:-../shared/reference}
DST=.gpu/reference
BUILD=""
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu-prepare: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ ! -d "$SRC/models/tiny-sd15" ]; then
    echo "gpu-prepare: no reference folder at $SRC (set SD_REFERENCE_DIR)" >&2
    exit 1
fi
SRC=$(cd "$SRC" && pwd)
grep -qx '/.gpu/' .gitignore || { echo "gpu-prepare: .gitignore lacks /.gpu/ (it must not be committed)" >&2; exit 1; }

STREAM_CASES="sd15_i2i_none_batch sd15_i2i_self_batch_d0.5 sd15_i2i_initialize_batch_d1.0 sd15_i2i_full_batch"
FILES="
models/tiny-sd15/model_index.json
models/tiny-sd15/scheduler/scheduler_config.json
models/tiny-sd15/text_encoder/config.json
models/tiny-sd15/text_encoder/model.safetensors
models/tiny-sd15/tokenizer/merges.txt
models/tiny-sd15/tokenizer/special_tokens_map.json
models/tiny-sd15/tokenizer/tokenizer_config.json
models/tiny-sd15/tokenizer/vocab.json
models/tiny-sd15/unet/config.json
models/tiny-sd15/unet/diffusion_pytorch_model.safetensors
models/tiny-sd15/vae/config.json
models/tiny-sd15/vae/diffusion_pytorch_model.safetensors
models/taesd/config.json
models/taesd/diffusion_pytorch_model.safetensors
golden/text_encoder/tiny-sd15.safetensors
golden/unet/tiny-sd15_b1.safetensors
golden/unet/tiny-sd15_b4.safetensors
golden/unet/tiny-sd15_b2_24x32.safetensors
golden/vae/tiny-sd15_encode_128x128.safetensors
golden/vae/tiny-sd15_encode_64x96.safetensors
golden/vae/tiny-sd15_decode_128x128.safetensors
golden/vae/tiny-sd15_decode_64x96.safetensors
golden/vae/taesd_encode_128x128.safetensors
golden/vae/taesd_encode_64x96.safetensors
golden/vae/taesd_decode_128x128.safetensors
golden/vae/taesd_decode_64x96.safetensors
"

rm -rf "$DST" .gpu/deps.tar.xz
mkdir -p "$DST" || exit 1
for f in $FILES; do
    if ! mkdir -p "$DST/$(dirname "$f")" || ! cp "$SRC/$f" "$DST/$f"; then
        echo "gpu-prepare: cannot copy $SRC/$f" >&2
        exit 1
    fi
done

# the stream goldens, slimmed (Python's standard library only)
# shellcheck disable=SC2086 # one argument per case
python3 - "$SRC/golden/stream" "$DST" $STREAM_CASES <<'PY' || { echo "gpu-prepare: slimming the stream goldens failed" >&2; exit 1; }
import json, os, re, struct, sys, zlib

src, dst, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
keep = re.compile(r"^call\d+\.(input_u8|skipped|output)$")  # what tests/test_stream.c reads

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        return header, f.read()

def write(path, meta, tensors):  # tensors: [(name, dtype, shape, bytes)], the safetensors layout
    header, offset = {"__metadata__": meta}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))

os.makedirs(os.path.join(dst, "golden/stream"), exist_ok=True)
for case in cases:
    header, data = read(os.path.join(src, case + ".safetensors"))
    meta = header.pop("__metadata__")
    names = sorted((n for n in header if keep.match(n)), key=lambda n: header[n]["data_offsets"][0])
    calls = int(meta["n_calls"])
    want = {f"call{k}.{t}" for k in range(calls) for t in ("output", "skipped")}
    if meta["mode"] == "img2img":
        want |= {f"call{k}.input_u8" for k in range(calls)}
    missing = want - set(names)
    if missing:
        sys.exit(f"{case}: golden lacks {sorted(missing)[:3]}")
    tensors = []
    for n in names:
        b, e = header[n]["data_offsets"]
        tensors.append((n, header[n]["dtype"], header[n]["shape"], data[b:e]))
    write(os.path.join(dst, "golden/stream", case + ".safetensors"), meta, tensors)
PY

cat > "$DST/README.md" <<EOF
# .gpu/reference — made by tools/gpu-prepare.sh from $SRC on $(date -u +%Y-%m-%d)

The reference files the GPU checks read (tools/gpu-tests.txt, tools/gpu-check.sh); a subset of
../shared/reference with the same paths. golden/stream/*.safetensors are slimmed copies (only
callK.input_u8, callK.skipped, callK.output and the metadata). Git-ignored: made again whenever
needed.
EOF
# shellcheck disable=SC2094 # SHA256SUMS is left out of the list it is written from
(cd "$DST" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)

# ---- the build's own dependencies, for a GPU machine whose image lacks them ----
# That machine cannot install packages. Its image (CUDA, Python, CMake) may lack cJSON, stb,
# libwebsockets, libturbojpeg, libcurl's -dev files...: carried here as this machine's Debian
# headers and the shared libraries sdstream loads (ldd's closure, less glibc's own), in
# .gpu/deps.tar.xz. gpu-check.sh builds against them only when the system's own are not found,
# and at run time lends only the libraries the system lacks. OpenBLAS is not carried (35 MB):
# sdstream calls one function of it (openblas_set_num_threads, cpu_backend.c), so a stub with
# that function stands in when the system has none; no BLAS code runs either way.
DEPS_SRC=""
for d in "$BUILD" build build-gc; do [ -n "$d" ] && [ -x "$d/sdstream" ] && { DEPS_SRC=$d/sdstream; break; }; done
if [ -z "$DEPS_SRC" ]; then
    echo "gpu-prepare: no built sdstream to read the libraries from (cmake --build build first)" >&2
    exit 1
fi
TMPD=$(mktemp -d)
D=$TMPD/deps
mkdir -p "$D/include" "$D/lib" "$D/src"
ARCH=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
for p in libcap-dev libcjson-dev libcurl4-openssl-dev libopenblas-pthread-dev libpng-dev libssl-dev libstb-dev \
    libturbojpeg0-dev libwebsockets-dev zlib1g-dev; do
    files=$(dpkg -L "$p" 2>/dev/null | grep '^/usr/include/.*\.h$') || { echo "gpu-prepare: package $p is not installed" >&2; exit 1; }
    for f in $files; do
        rel=${f#/usr/include/}
        rel=${rel#"$ARCH"/}
        rel=${rel#openblas-pthread/}
        mkdir -p "$D/include/$(dirname "$rel")" && cp -L "$f" "$D/include/$rel"
    done
done
for lib in $(ldd "$DEPS_SRC" | awk '/=> \//{print $3}'); do
    base=$(basename "$lib")
    case $base in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libresolv.so* | libgcc_s.so* | libstdc++.so* | \
        libopenblas* | libgfortran* | libquadmath* | libcublas* | libcudart* | libcuda.so* | libnv*) continue ;;
    esac
    cp -L "$lib" "$D/lib/$base"
done
# the names the linker looks for, for the libraries sdstream links directly
(cd "$D/lib" && for so in libcjson.so.1 libstb.so.0 libpng16.so.16 libturbojpeg.so.0 libwebsockets.so.17 libcurl.so.4 \
    libssl.so.3 libcrypto.so.3 libz.so.1; do
    [ -f "$so" ] || { echo "gpu-prepare: $so is not among sdstream's libraries" >&2; exit 1; }
    ln -sf "$so" "${so%%.so*}.so"
done && ln -sf libpng16.so libpng.so) || exit 1
cat > "$D/src/openblas_stub.c" <<'STUB'
/* The one OpenBLAS function sdstream calls (cpu_backend.c keeps OpenBLAS's own threads off); a
 * stand-in where the system has no OpenBLAS. No BLAS routine is called anywhere. */
void openblas_set_num_threads(int num_threads);
void openblas_set_num_threads(int num_threads) { (void)num_threads; }
STUB
echo "Debian $(cat /etc/debian_version 2>/dev/null) headers and libraries of sdstream's dependencies, for tools/gpu-check.sh" > "$D/README"
tar -C "$TMPD" -cf - deps | xz -9 -T2 > .gpu/deps.tar.xz || exit 1
rm -rf "$TMPD"

SIZE_KB=$(du -sk .gpu | cut -f1)
REPO_KB=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
echo "gpu-prepare: $DST holds $(find "$DST" -type f | wc -l) files; .gpu (with deps.tar.xz, $(($(du -k .gpu/deps.tar.xz | cut -f1) / 1024)) MiB) $((SIZE_KB / 1024)) MiB; with the repo's tracked files ($((REPO_KB / 1024)) MiB) $(((SIZE_KB + REPO_KB) / 1024)) MiB of the 64 MiB a device call carries"
if [ "$SIZE_KB" -gt $((54 * 1024)) ]; then
    echo "gpu-prepare: .gpu is over the 54 MiB kept for it (64 MiB in all with the repo): take files out" >&2
    exit 1
fi

# prove it complete: the listed cases, on the CPU, against this folder only
if [ -z "$BUILD" ]; then
    for d in build build-gc; do [ -x "$d/test_unet" ] && { BUILD=$d; break; }; done
fi
if [ -z "$BUILD" ] || [ ! -x "$BUILD/test_unet" ]; then
    echo "gpu-prepare: NOT VERIFIED: no build with the tests (cmake --build build, or --build DIR)" >&2
    exit 1
fi
fail=0
while read -r name cases; do
    case $name in test_*) ;; *) continue ;; esac
    [ "$cases" = all ] && cases=""
    log=$(mktemp)
    if (cd "$BUILD" && SD_REFERENCE_DIR="$ROOT/$DST" SDSTREAM_TEST_BACKEND=cpu SD_TEST_CASES="$cases" "./$name") > "$log" 2>&1; then
        echo "gpu-prepare: verified $name ${cases:-(all cases)}: $(tail -1 "$log")"
    else
        echo "gpu-prepare: $name ${cases:-(all cases)} FAILED against $DST:" >&2
        grep -E "FAIL|missing" "$log" | head -5 >&2
        fail=1
    fi
    rm -f "$log"
done < tools/gpu-tests.txt
[ $fail -eq 0 ] && echo "gpu-prepare: $DST is complete for tools/gpu-tests.txt; carry it: run(carry=[\".gpu\"], command=\"bash tools/gpu-check.sh\")"
exit $fail
