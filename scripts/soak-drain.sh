#!/usr/bin/env bash
# The drain proof (issue 12, item 1): run the SIGTERM tests of tests/fault-stack.test.ts N times in
# a row while another end-to-end file runs beside them in a loop; stop at the first failure.
#   scripts/soak-drain.sh [N=30] [BESIDE=tests/load-stack.test.ts]
# Bounded: every vitest run has a 600 s timeout; the side loop ends with the main one.
set -u
n=${1:-30}
beside=${2:-tests/load-stack.test.ts}
cd "$(dirname "$0")/.."
log=${SOAK_LOG:-/tmp/soak-drain}
mkdir -p "$log"
rm -f "$log/stop"
# The side runs work in their own copy of the tree: two vitest runs compiling into one dist/ at
# once would read each other's half-written files.
side_tree="$log/side-tree"
rm -rf "$side_tree" && mkdir -p "$side_tree"
tar --exclude=./node_modules --exclude=./dist --exclude=./.git -cf - . | tar -xf - -C "$side_tree"
ln -s "$PWD/node_modules" "$side_tree/node_modules"
(
  cd "$side_tree" || exit 1
  for i in $(seq 1 "$n"); do
    [ -e "$log/stop" ] && break
    timeout 600 npx vitest run "$beside" >"$log/beside-$i.log" 2>&1 &
    echo $! >"$log/side.pid"
    wait $! || echo "beside run $i: rc=$?"
  done
) &
side=$!
stop() { touch "$log/stop"; kill "$(cat "$log/side.pid" 2>/dev/null)" 2>/dev/null; wait "$side" 2>/dev/null; }
trap 'stop; exit 130' INT TERM
pass=0
for i in $(seq 1 "$n"); do
  if timeout 600 npx vitest run tests/fault-stack.test.ts -t SIGTERM >"$log/run-$i.log" 2>&1; then
    pass=$((pass + 1)); echo "run $i: pass ($(grep -o 'Duration.*(' "$log/run-$i.log" | head -1))"
  else
    echo "run $i: FAIL (log $log/run-$i.log)"; break
  fi
done
stop
echo "SIGTERM tests: $pass/$n runs passed in a row beside $beside"
[ "$pass" = "$n" ]
