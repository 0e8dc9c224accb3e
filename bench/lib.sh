# Helpers the bench scripts share (source it). Reads GNU time's `-v` report.

# wall_seconds FILE: the elapsed wall time in seconds.
wall_seconds() {
  grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}

# peak_rss_kib FILE: the maximum resident set size in KiB.
peak_rss_kib() {
  grep "Maximum resident set size" "$1" | awk '{print $NF}'
}

# summary N...: "median M, min A, max B" of the numbers given.
summary() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "median %s, min %s, max %s", a[int((NR+1)/2)], a[1], a[NR]}'
}

# measure STEP TOOL CMD...: run CMD under /usr/bin/time -v (its output to $MEASUREMENTS.out) and
# append {"step", "tool", "wall_s", "rss_kib"} as one JSON line to $MEASUREMENTS. Fails, with
# the end of CMD's output, if CMD fails.
measure() {
  local step=$1 tool=$2
  shift 2
  /usr/bin/time -v -o "$MEASUREMENTS.time" "$@" >"$MEASUREMENTS.out" 2>&1 \
    || { tail -20 "$MEASUREMENTS.out" "$MEASUREMENTS.time" >&2; return 1; }
  printf '{"step": "%s", "tool": "%s", "wall_s": %s, "rss_kib": %s}\n' "$step" "$tool" \
    "$(wall_seconds "$MEASUREMENTS.time")" "$(peak_rss_kib "$MEASUREMENTS.time")" >>"$MEASUREMENTS"
}

# last_measure: the last measurement, as "W s, R MiB".
last_measure() {
  tail -1 "$MEASUREMENTS" | python3 -c 'import json,sys; m=json.load(sys.stdin); print("%s s, %d MiB" % (m["wall_s"], m["rss_kib"] // 1024))'
}
