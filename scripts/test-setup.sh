#!/usr/bin/env bash
# What the tests need besides Node (issue 12, item 11): Debian packages for the engine build
# (cmake, g++, make, git), nginx, prometheus (promtool and a real scraper), ffmpeg (video/audio
# parts), openssl and curl (TLS), gettext-base (envsubst, the nginx entrypoint), wrk (benchmarks),
# chromium (the playground page driven by playwright-core: tests/playground-browser.test.ts).
# `npm test` runs this first (pretest) and `.ci/run` calls it too. Missing packages are installed
# with apt-get when running as root; otherwise it stops at once with the exact command to run.
set -euo pipefail
packages=(cmake g++ make git nginx prometheus ffmpeg openssl curl gettext-base wrk chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts these services on install where it can; the tests run their own instances.
    (service nginx stop || true) >/dev/null 2>&1
    (service prometheus stop || true) >/dev/null 2>&1
  else
    echo "test-setup: the tests need these Debian packages, missing here: ${missing[*]}" >&2
    echo "test-setup: run as root:  sudo sh -c '$cmd'" >&2
    exit 1
  fi
fi
