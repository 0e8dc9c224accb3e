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
