#!/bin/bash
# power-cut, the board's half (the host cuts the power): after a cut, check that the store loaded
# with every acknowledged object whole and that every pod runs again; then stream applies while
# pods churn, printing `ACK name` once each apply is acknowledged, until the host kills the board.
# Kernel arguments: coracle_board.cycle=N, coracle_board.expect=CYCLE:COUNT,... (acknowledged
# pc-CYCLE-1..COUNT), coracle_board.final=1 (verify only, then power off).
source /opt/coracle-board/lib.sh

arg() {
  sed -n "s/.*coracle_board\.$1=\([^ ]*\).*/\1/p" /proc/cmdline
}
cycle=$(arg cycle)
expect=$(arg expect)
final=$(arg final)
[ -n "$cycle" ] || fatal arguments "no coracle_board.cycle on the kernel command line"

if ! wait_daemon 300; then
  fatal "cycle$cycle-store-loaded" "coracled not active: $(journalctl -b -u coracled -n 8 --no-pager | tr '\n' ' ' | cut -c1-600)"
fi
pass "cycle$cycle-store-loaded"

if [ -n "$expect" ]; then
  listing=$(coracle get deployments -o json) || fatal "cycle$cycle-list" "coracle get deployments failed"
  # One jq over the listing (not one per object: the count grows by every cycle's applies).
  declare -A stored=()
  while read -r name got; do
    stored[$name]=$got
  done < <(jq -r '.items[] | select(.metadata.name | startswith("pc-"))
    | "\(.metadata.name) \(.metadata.annotations["board/seq"]) \(.metadata.annotations["board/payload"] | length)"' <<<"$listing")
  total=0
  missing=()
  for entry in ${expect//,/ }; do
    c=${entry%%:*}
    n=${entry##*:}
    for s in $(seq 1 "$n"); do
      total=$((total + 1))
      got=${stored[pc-$c-$s]:-}
      [ "$got" = "$s 512" ] || missing+=("pc-$c-$s(${got:-absent})")
    done
  done
  pods=$(coracle get pods -o json) || fatal "cycle$cycle-list-pods" "coracle get pods failed"
  for name in steady-1 steady-2; do
    jq -e --arg n "$name" 'any(.items[]; .metadata.name == $n)' <<<"$pods" >/dev/null || missing+=("pod/$name(absent)")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    pass "cycle$cycle-acked-objects" "$total acknowledged applies and the steady pods read back whole"
  else
    fail "cycle$cycle-acked-objects" "lost or torn: ${missing[*]:0:20}"
  fi
  figure "cycle${cycle}_acked_objects" "$total"

  # Torn files: every object file the store kept must be whole JSON. Only the files written
  # since the last check that passed (a marker on the board's disk, set before that scan began)
  # can have changed, and one jq per file over the whole store grows with every cycle.
  if [ -d /var/lib/coracle/objects ]; then
    marker=/var/lib/coracle-board/objects-checked
    mkdir -p "${marker%/*}"
    touch "$marker.next"
    newer=()
    [ -e "$marker" ] && newer=(-newer "$marker")
    torn=$(find /var/lib/coracle/objects -name '*.json' -type f "${newer[@]}" \
      -exec sh -c 'for f; do jq empty "$f" >/dev/null 2>&1 || echo "$f"; done' _ {} +)
    checked=$(find /var/lib/coracle/objects -name '*.json' -type f "${newer[@]}" | wc -l)
    if [ -z "$torn" ]; then
      mv "$marker.next" "$marker" && sync
      pass "cycle$cycle-no-torn-files" "$checked files written since the last check"
    else
      fail "cycle$cycle-no-torn-files" "$(echo $torn | cut -c1-300)"
    fi
  fi

  # Every pod returns to Running (a pod deleted just before the cut may still be going away).
  all_running() {
    coracle get pods -o json | jq -e '[.items[] | select(.metadata.deletionTimestamp == null)
      | .status.phase == "Running" and ((.status.containerStatuses // []) | length > 0 and all(.ready))] | all' >/dev/null
  }
  if wait_until 400 all_running; then
    pass "cycle$cycle-pods-running" "$(coracle get pods --no-headers | wc -l) pods Running"
  else
    fail "cycle$cycle-pods-running" "$(coracle get pods --no-headers 2>&1 | awk '{print $1, $3}' | tr '\n' ' ' | cut -c1-400)"
  fi
  pass verify-done
fi
[ "$final" = 1 ] && finish

if [ "$cycle" = 1 ]; then
  out=$(load_image 2>&1) || fatal image-load "$out"
  out=$(apply_sleepers steady 2 2>&1) || fatal apply-steady "$out"
fi

# Pods churn: churn-1..3 are created and deleted at random while the applies stream.
(
  while :; do
    n=$((RANDOM % 3 + 1))
    # Printed once acknowledged, to read the churn back from the serial log.
    if coracle get pod "churn-$n" >/dev/null 2>&1; then
      coracle delete pod "churn-$n" >/dev/null 2>&1 && echo "CHURN deleted churn-$n"
    else
      out=$(apply_sleeper churn "churn-$n" 2>&1) && echo "CHURN created churn-$n" || echo "CHURN create-failed churn-$n $out"
    fi
    sleep 1
  done
) &

payload=$(head -c 384 /dev/urandom | base64 -w0)
payload=${payload:0:512}
for s in $(seq 1 5000); do
  name=pc-$cycle-$s
  # Retried until acknowledged, so the acknowledged names run 1..N without gaps.
  until coracle apply -f - >/dev/null 2>&1 <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  annotations:
    board/seq: "$s"
    board/payload: "$payload"
spec:
  replicas: 0
  selector:
    matchLabels: {app: $name}
  template:
    metadata:
      labels: {app: $name}
    spec:
      containers:
      - name: c
        image: busybox:board
        command: ["sleep", "1000000"]
YAML
  do
    sleep 0.2
  done
  echo "ACK $name"
done
fail never-cut "5000 applies and the host never cut the power"
finish
