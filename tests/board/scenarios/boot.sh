#!/bin/bash
# boot: coracled comes up at boot as the systemd service, turns active only once it sent READY=1
# (Type=notify), and `coracle` reaches it on the default socket. Figures: kernel start to READY.
source /opt/coracle-board/lib.sh

# Up to 240 s: an emulated board loading the store is slow, and TimeoutStartSec is longer.
wait_until 240 bash -c '[ "$(systemctl is-active coracled)" != activating ]'
state=$(systemctl is-active coracled)
if [ "$state" = active ]; then
  pass started-at-boot
else
  api=$(coracle version >/dev/null 2>&1 && echo "answering" || echo "not answering")
  fatal started-at-boot "systemctl is-active coracled says '$state' (API $api; $(systemctl show -p StatusText coracled)); journal: $(journalctl -b -u coracled -n 4 --no-pager -o cat | tr '\n' ' ' | cut -c1-500)"
fi

type=$(systemctl show -p Type --value coracled)
[ "$type" = notify ] && pass unit-type-notify || fail unit-type-notify "Type=$type"

# ActiveEnterTimestampMonotonic is CLOCK_MONOTONIC, which starts with the kernel.
ready_us=$(systemctl show -p ActiveEnterTimestampMonotonic --value coracled)
exec_us=$(systemctl show -p ExecMainStartTimestampMonotonic --value coracled)
if [ "${ready_us:-0}" -gt 0 ] && [ "${exec_us:-0}" -gt 0 ] && [ "$ready_us" -ge "$exec_us" ]; then
  pass ready-timestamps
  figure boot_kernel_to_ready_ms $((ready_us / 1000))
  figure boot_exec_to_ready_ms $(((ready_us - exec_us) / 1000))
else
  fail ready-timestamps "ActiveEnter=$ready_us ExecMainStart=$exec_us"
fi

[ -S /run/coracle/coracle.sock ] && pass default-socket || fail default-socket "/run/coracle/coracle.sock is not a socket"
version=$(coracle version 2>&1)
if [ $? -eq 0 ] && grep -qi 'server' <<<"$version"; then
  pass ctl-version "$(echo "$version" | tr '\n' ' ' | cut -c1-160)"
else
  fail ctl-version "$(echo "$version" | tr '\n' ' ' | cut -c1-300)"
fi
check ctl-get-pods coracle get pods

# Active only after READY=1: restart and watch. While the daemon starts the unit must say
# "activating"; the first time it says "active", the API must already answer.
systemctl restart --no-block coracled
saw_activating=no
api_at_active=unknown
deadline=$(($(date +%s) + 120))
while [ "$(date +%s)" -lt "$deadline" ]; do
  state=$(systemctl is-active coracled)
  case "$state" in
    activating) saw_activating=yes ;;
    active)
      if [ "$saw_activating" = yes ]; then
        coracle version >/dev/null 2>&1 && api_at_active=yes || api_at_active=no
        break
      fi
      ;;
  esac
  sleep 0.05
done
if [ "$saw_activating" = yes ] && [ "$api_at_active" = yes ]; then
  pass active-after-ready "activating until READY=1, API answering when active"
else
  fail active-after-ready "saw activating=$saw_activating, API answered at active=$api_at_active, last state=$state"
fi
restart_ready_us=$(systemctl show -p ActiveEnterTimestampMonotonic --value coracled)
restart_exec_us=$(systemctl show -p ExecMainStartTimestampMonotonic --value coracled)
[ "${restart_ready_us:-0}" -gt "${restart_exec_us:-0}" ] &&
  figure restart_exec_to_ready_ms $(((restart_ready_us - restart_exec_us) / 1000))

finish
