#!/bin/sh
# Builds backends/example out of tree against an installed tuplecast, then
# runs the conformance suite on the result.  ctest runs it
# (backend_example_out_of_tree, tests/backend/CMakeLists.txt):
#   out_of_tree.sh CMAKE GENERATOR BUILD_DIR EXAMPLE_SRC CONFORMANCE C_FLAGS LINK_FLAGS
# The build tree's plugin-dev component (the plugin headers, the support
# library and tuplecast-support.pc) is installed into a temporary prefix, the
# example's sources are copied to a temporary directory (so they cannot reach
# the rest of the tree by a relative path), and the copy is configured with
# only that prefix to find tuplecast by.  C_FLAGS and LINK_FLAGS are the
# build's own (sanitizers included), so the plugin's fingerprint matches.
set -eu
cmake=$1 generator=$2 build=$3 src=$4 conformance=$5 cflags=${6-} ldflags=${7-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cmake" --install "$build" --prefix "$tmp/prefix" --component plugin-dev
cp -R "$src" "$tmp/example"
pc=$(dirname "$(find "$tmp/prefix" -name tuplecast-support.pc)")
PKG_CONFIG_PATH=$pc "$cmake" -S "$tmp/example" -B "$tmp/build" -G "$generator" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_C_FLAGS="$cflags" -DCMAKE_MODULE_LINKER_FLAGS="$ldflags"
"$cmake" --build "$tmp/build"
"$conformance" "$tmp/build/example.so" example:
