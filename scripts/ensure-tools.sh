#!/usr/bin/env bash
# Make sure the command-line tools the project needs are on PATH.
#
# usage: scripts/ensure-tools.sh <debian-package>:<command>[,<command>...] ...
#        (a <command> starting with / is a file the package installs, e.g. a header)
#
# A missing command is installed from its Debian package when we run as root and
# apt-get exists; otherwise we stop with one line saying how to install it.
set -euo pipefail
missing_pkgs=()
for spec in "$@"; do
    pkg=${spec%%:*}
    IFS=',' read -r -a cmds <<< "${spec#*:}"
    for cmd in "${cmds[@]}"; do
        if [[ $cmd == /* ]] && [ -e "$cmd" ]; then continue; fi
        if [[ $cmd == /* ]] || ! command -v "$cmd" >/dev/null 2>&1; then
            missing_pkgs+=("$pkg")
            break
        fi
    done
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "qmac: installing Debian package(s): ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
    exit 0
fi
echo "qmac: missing tool(s); install with: sudo apt-get install ${missing_pkgs[*]}" >&2
exit 1
