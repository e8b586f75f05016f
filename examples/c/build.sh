#!/usr/bin/env bash
# Build examples/c/tlc_score against onnxruntime's C API, taking every part
# from the package registries, into examples/c/build/ (gitignored; downloads are cached there).
#
#   examples/c/build.sh            # then: examples/c/build/tlc_score model.onnx < texts.txt
#
# Where the parts come from (Linux x64; see README.md beside this file for other platforms):
#   libonnxruntime.so.$ORT_VERSION  the `onnxruntime` wheel on PyPI (onnxruntime/capi/), via
#                                   `pip download`; it has no headers and no unversioned links
#   onnxruntime_c_api.h, ..._cxx_*  the npm package com.github.asus4.onnxruntime (its iOS
#                                   framework's headers: plain C/C++ headers of onnxruntime
#                                   $HEADERS_ORT, API version 29; older headers than the library
#                                   are fine, the API is backward compatible)
#   libortextensions.so             the npm package com.github.asus4.onnxruntime-extensions
#                                   (onnxruntime-extensions 0.14.0 built with no Python inside;
#                                   the PyPI wheel's library needs libpython)
# Both npm packages are a community repackaging (MIT) of Microsoft's releases for Unity.
#
# Settings (environment): ORT_VERSION (the onnxruntime wheel to take the library from; a
# program linked against one version refuses another, so build against the one you ship),
# PYTHON (runs pip; default python3), CC, BUILD (default examples/c/build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ORT_VERSION=${ORT_VERSION:-1.32.0}
NPM_VERSION=0.4.9          # com.github.asus4.onnxruntime{,-extensions}
HEADERS_ORT=1.29.0         # the onnxruntime release those packages repackage
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}
BUILD=${BUILD:-$here/build}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "build.sh: written for Linux x86_64; on $(uname -s)-$(uname -m) see" \
          "examples/c/README.md for where the parts come from" >&2; exit 2 ;;
esac
for tool in "$CC" npm tar "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "build.sh: needs $tool" >&2; exit 2; }
done

dl=$BUILD/downloads
mkdir -p "$dl" "$BUILD/include"

# 1. libonnxruntime from the PyPI wheel (any Python's wheel holds the same library).
lib=libonnxruntime.so.$ORT_VERSION
if [ ! -f "$BUILD/$lib" ]; then
  wheel=$(ls "$dl"/onnxruntime-"$ORT_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then  # into a scratch folder first: an interrupted download is not kept
    rm -rf "$dl/part" && mkdir "$dl/part"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$dl/part" \
      "onnxruntime==$ORT_VERSION"
    mv "$dl"/part/onnxruntime-"$ORT_VERSION"-*.whl "$dl/"
    wheel=$(ls "$dl"/onnxruntime-"$ORT_VERSION"-*.whl | head -n 1)
  fi
  "$PYTHON" - "$wheel" "$lib" "$BUILD" <<'PY'
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"onnxruntime/capi/{name}") as src, \
        open(f"{out}/{name}.part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$BUILD/$lib.part" "$BUILD/$lib"
fi
# The wheel has only the versioned file: the linker wants libonnxruntime.so, the loader the
# soname libonnxruntime.so.1.
ln -sf "$lib" "$BUILD/libonnxruntime.so.1"
ln -sf "$lib" "$BUILD/libonnxruntime.so"

# 2. Headers and libortextensions.so from npm (npm pack: the tarball only, no scripts run).
fetch_npm() {  # name -> path of its tarball in $dl
  local tgz=$dl/$1-$NPM_VERSION.tgz
  if [ ! -f "$tgz" ]; then
    rm -rf "$dl/part" && mkdir "$dl/part"
    (cd "$dl/part" && npm pack --silent "$1@$NPM_VERSION" >/dev/null)
    mv "$dl/part/$1-$NPM_VERSION.tgz" "$tgz"
  fi
  echo "$tgz"
}
headers=package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers
if [ ! -f "$BUILD/include/onnxruntime_c_api.h" ]; then
  tar --no-same-owner -xzf "$(fetch_npm com.github.asus4.onnxruntime)" -C "$BUILD/include" \
    --strip-components=7 --wildcards "$headers/*.h"
fi
if [ ! -f "$BUILD/libortextensions.so" ]; then
  tar --no-same-owner -xzf "$(fetch_npm com.github.asus4.onnxruntime-extensions)" -C "$BUILD" \
    --strip-components=4 package/Plugins/Linux/x64/libortextensions.so
fi

# 3. Compile. rpath $ORIGIN: the program finds libonnxruntime.so.1 beside itself, wherever the
#    folder is moved; it looks for libortextensions.so there too (see tlc_score.c).
"$CC" -std=c11 -O2 -Wall -Wextra -I"$BUILD/include" -o "$BUILD/tlc_score" \
  "$here/tlc_score.c" -L"$BUILD" -lonnxruntime -Wl,-rpath,'$ORIGIN'
echo "built $BUILD/tlc_score (onnxruntime $ORT_VERSION, headers $HEADERS_ORT," \
  "onnxruntime-extensions 0.14.0)"
