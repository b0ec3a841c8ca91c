#!/usr/bin/env bash
# Installs the SDK from a Tern build tree into a fresh prefix, builds the example plugin against that
# prefix alone, and leaves the plugin in <out>/plugins for the integration tests.
set -euo pipefail
build=$1 source=$2 out=$3
rm -rf "$out"
cmake --install "$build" --component sdk --prefix "$out/sdk"
cmake -S "$source" -B "$out/build" -G Ninja -DCMAKE_PREFIX_PATH="$out/sdk" \
  -DCMAKE_CXX_COMPILER="$(grep -m1 '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" | cut -d= -f2)"
cmake --build "$out/build"
mkdir -p "$out/plugins"
cp "$out/build/tern-add-header.so" "$out/plugins/"
echo "example plugin built against the installed SDK in $out/sdk"
