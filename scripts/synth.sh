#!/usr/bin/env bash
# Yosys synthesis estimate of the RTL blocks (`make synth`).
#
# usage: scripts/synth.sh [TOP[:PARAM=VALUE[,PARAM=VALUE...]] ...]
#   default tops: requant_pipeline requant_pipeline:LANES=1,CHANNELS=8 mac_array
#                 window_engine:LANES=8,H_MAX=16,W_MAX=16 eltwise_engine
#   e.g.          scripts/synth.sh requant_pipeline:LANES=1 mac_array:ROWS=4,COLS=4
#
# A top's sources are rtl/<prefix>_*.v, <prefix> being the top's name up to its first
# underscore (requant_pipeline -> rtl/requant_*.v, mac_array -> rtl/mac_*.v) plus the globs
# of its "// synth-uses: <glob>" lines (window_engine uses requant_*.v); a top whose
# rtl/<top>.v does not exist yet is skipped with a message.  For each top, in
# sim/build/synth/<top>[-<params>]/:
#   synth/mul.ys      word-level multipliers after wreduce ($mul cells and their widths)
#   synth/generic.ys  `synth -flatten`: Yosys internal gates
#   synth/ice40.ys    `synth_ice40 -dsp`: LUT4 / carry / DFF / SB_MAC16 / SB_RAM40_4K
# then synth/report.py prints one table for all tops.  Flows: SYNTH_FLOWS (default
# "generic ice40"; the word-level pass always runs).  With nextpnr-ice40 on PATH (optional)
# and SYNTH_PNR not 0, a top that has a harness synth/fmax_<top>.v (inputs from a shift
# register, outputs XOR-reduced: the block has more ports than the chip has pins) is
# placed and routed on an iCE40 UP5K for an Fmax estimate ("no fit" when it is too big).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PY:-$root/.venv/bin/python}
[ -x "$PY" ] || PY=python3
flows=${SYNTH_FLOWS:-generic ice40}
tops=("$@")
[ ${#tops[@]} -eq 0 ] && tops=(requant_pipeline requant_pipeline:LANES=1,CHANNELS=8 mac_array
                                window_engine:LANES=8,H_MAX=16,W_MAX=16 eltwise_engine)

command -v yosys >/dev/null || { echo "synth: yosys not found (scripts/ensure-tools.sh yosys:yosys)" >&2; exit 1; }

dirs=()
for spec in "${tops[@]}"; do
    top=${spec%%:*}
    params=""
    [[ "$spec" == *:* ]] && params=${spec#*:}
    prefix=${top%%_*}
    if [ ! -f "rtl/$top.v" ]; then
        echo "synth: skipping $top: rtl/$top.v does not exist yet"
        continue
    fi
    files=(rtl/"$prefix"_*.v)
    # blocks built on another prefix's modules name them in a "// synth-uses: <glob>" line
    for glob in $(sed -n 's|^// synth-uses: ||p' "rtl/$top.v"); do files+=(rtl/$glob); done
    tag=$top
    chparam=""
    if [ -n "$params" ]; then
        tag="$top-$(echo "$params" | tr ',=' '-_')"
        IFS=',' read -r -a kvs <<< "$params"
        for kv in "${kvs[@]}"; do
            chparam+="chparam -set ${kv%%=*} ${kv#*=} $top; "
        done
    fi
    out=sim/build/synth/$tag
    rm -rf "$out"; mkdir -p "$out"
    read_cmd="read_verilog -sv $(printf "$root/%s " "${files[@]}"); $chparam hierarchy -check -top $top"
    echo "synth: $tag (${files[*]})"
    for flow in mul $flows; do
        start=$SECONDS
        if ! (cd "$out" && yosys -q -l "$flow.log" -p "$read_cmd; script $root/synth/$flow.ys" >/dev/null); then
            echo "synth: yosys failed for $tag ($flow); see $out/$flow.log" >&2
            exit 1
        fi
        echo "synth:   $flow done in $((SECONDS - start)) s"
    done
    echo "$params" > "$out/params.txt"
    echo "$top" > "$out/top.txt"
    harness=synth/fmax_$top.v
    fits=0
    if [ -f "$out/stat_ice40.json" ]; then
        # UP5K: 5280 LUT4, 8 SB_MAC16, 30 SB_RAM40_4K (the harness adds a few hundred LUTs)
        fits=$("$PY" -c "import json,sys; c=json.load(open(sys.argv[1]))['design']['num_cells_by_type']; print(int(c.get('SB_LUT4',0)) < 4800 and c.get('SB_MAC16',0) <= 8 and c.get('SB_RAM40_4K',0) <= 30)" "$out/stat_ice40.json" | grep -c True || true)
    fi
    if [ "${SYNTH_PNR:-1}" = 1 ] && command -v nextpnr-ice40 >/dev/null && [ -f "$harness" ] && [ "$fits" != 1 ]; then
        echo "synth:   nextpnr-ice40: skipped, $tag does not fit an UP5K"
        echo "too big" > "$out/pnr.skipped"
    elif [ "${SYNTH_PNR:-1}" = 1 ] && command -v nextpnr-ice40 >/dev/null && [ -f "$harness" ]; then
        start=$SECONDS
        fmax_cmd="read_verilog -sv $(printf "$root/%s " "${files[@]}" "$harness"); ${chparam//" $top;"/" fmax_$top;"} hierarchy -check -top fmax_$top"
        if (cd "$out" && yosys -q -l fmax.log -p "$fmax_cmd; script $root/synth/fmax.ys" >/dev/null \
            && timeout 900 nextpnr-ice40 --up5k --package sg48 --json fmax.json --seed 1 \
                --pcf-allow-unconstrained --timing-allow-fail --freq 48 --quiet \
                --log pnr.log >/dev/null 2>&1); then
            echo "synth:   nextpnr-ice40 (UP5K) done in $((SECONDS - start)) s"
        else
            echo "synth:   nextpnr-ice40: $tag does not fit or route on an UP5K (see $out/pnr.log)"
        fi
    fi
    dirs+=("$out")
done
[ ${#dirs[@]} -eq 0 ] && { echo "synth: nothing to synthesize"; exit 0; }
"$PY" synth/report.py "${dirs[@]}"
