#!/usr/bin/env bash
# Installs what selfheal's tests run against: Debian's prometheus,
# prometheus-alertmanager and etcd-server (the kube-apiserver itself is
# built by scripts/k8slab.sh, see the Makefile), and chromium, the headless
# browser the status page test (e2e/statuspage_test.go) drives. Package
# scripts must not start the services, so a policy-rc.d that denies every
# start is in place during the install only.
set -euo pipefail

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v etcd >/dev/null || need+=(etcd-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "deps: prometheus, prometheus-alertmanager, etcd and chromium are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  added=1
fi
trap '[ $added = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
echo "deps: installing ${need[*]} (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
prometheus --version 2>&1 | head -1
prometheus-alertmanager --version 2>&1 | head -1
/usr/bin/chromium --version 2>&1 | head -1
