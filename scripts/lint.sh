#!/usr/bin/env bash
# Lint every RTL file with Verilator (-Wall).  Each module is linted as its own top so
# that unused-parameter and width warnings inside leaf modules are not hidden.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(rtl/*.v rtl/*.sv)
if [ ${#files[@]} -eq 0 ]; then echo "lint: no RTL files yet"; exit 0; fi
status=0
for f in "${files[@]}"; do
    top=$(basename "${f%.*}")
    if ! verilator --lint-only -Wall -Irtl rtl/lint_waivers.vlt "$f" --top-module "$top" 2>&1; then
        status=1
    fi
done
[ $status -eq 0 ] && echo "lint: ${#files[@]} files clean (verilator -Wall)"
exit $status
