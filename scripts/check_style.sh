#!/usr/bin/env bash
# Fails when a file strays from the project's style: C++ and BPF C by clang-format (.clang-format,
# bpf/.clang-format), Python by ruff (ruff.toml: lint, and the formatter's layout). Fix with
#   git ls-files '*.cc' '*.h' '*.c' | xargs clang-format -i && python3 -m ruff check --fix . && python3 -m ruff format .
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.cc' '*.h' '*.c' | xargs -0 clang-format --dry-run --Werror
python3 -m ruff check -q .
python3 -m ruff format -q --check .
echo "style: clang-format and ruff clean"
