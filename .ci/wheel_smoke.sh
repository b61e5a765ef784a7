#!/usr/bin/env bash
# Wheel smoke test: build the wheel, install it into a fresh venv, and run what a wheel user runs,
# from an empty folder outside the repository. MNIST comes the way it comes to a user (pooch, into
# an empty cache, checked by SHA-256), from a mirror on loopback that serves the repository's copy,
# since CI has no internet.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

python -m pip wheel --no-deps --quiet -w "$work/dist" "$repo"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/fmsim-*.whl
export PATH="$work/venv/bin:$PATH"

port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python -m http.server --bind 127.0.0.1 --directory "$repo/data" "$port" >/dev/null 2>&1 &
server=$!
unset FMSIM_MNIST
export FMSIM_DATA="$work/cache" FMSIM_MNIST_URL="http://127.0.0.1:$port/mnist/"

mkdir "$work/empty" && cd "$work/empty"
test "$(python -c 'import fmsim, os; print(os.path.dirname(fmsim.__file__))')" != "$repo/fmsim"
fmsim --version
for _ in 1 2 3 4 5 6 7 8 9 10; do fmsim data --fetch >/dev/null 2>&1 && break; sleep 0.5; done
fmsim data
fmsim demo --quick
fmsim run fig1b --help >/dev/null
python -m fmsim.experiments.resnet_scaling --help >/dev/null
fmsim report --quick --quiet | tee "$work/report.log"
test -s data/quick/report.md
if grep -qE "\| (disagrees|fails) \|" data/quick/report.md; then
    echo "wheel smoke test: a claim disagrees or fails:" >&2
    grep -E "\| (disagrees|fails) \|" data/quick/report.md >&2
    exit 1
fi
echo "wheel smoke test passed: $(tail -1 "$work/report.log")"
