#!/usr/bin/env bash
# System packages the project needs beyond PyPI, installed where we can (Debian/Ubuntu, as root):
#   java      - pycocoevalcap's PTB tokenizer and METEOR (Debian: default-jre-headless)
#   chromium  - the headless-browser test of the interactive maps (optional: the test skips without it)
# Where they cannot be installed this says exactly what will not run; it never fails the build.
set -u

can_apt() { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

if command -v java >/dev/null 2>&1; then
  :
elif can_apt && apt_install default-jre-headless && command -v java >/dev/null 2>&1; then
  echo "setup-system: installed Java (default-jre-headless) for METEOR and the PTB tokenizer"
else
  echo "setup-system: WARNING: no Java; METEOR and the PTB tokenizer (all caption metrics but the" >&2
  echo "  pure-Python ones on pre-tokenized text) cannot run. Install it: apt-get install default-jre-headless" >&2
  echo "  (Debian/Ubuntu) or 'conda install -c conda-forge openjdk'." >&2
fi

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  :
elif [ "${CEN_SKIP_CHROMIUM:-0}" != "1" ] && can_apt && apt_install chromium && command -v chromium >/dev/null 2>&1; then
  echo "setup-system: installed chromium for the headless map rendering test"
else
  echo "setup-system: note: no chromium; the headless-browser map test will be skipped" >&2
fi
exit 0
