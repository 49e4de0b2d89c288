#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) for lisp_app: the system packages its demo and its tests drive
# (Open vSwitch, FRR, Mininet, tshark, ...) and a virtualenv (.venv) holding lisp_app with its test extra.
# Idempotent: run it as often as you like. Used by the README's commands and by .ci/run.
#
#   scripts/setup.sh            system packages + .venv with lisp_app[test]
#   VENV=/path scripts/setup.sh another virtualenv location
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

# openvswitch-switch: the forwarding core (userspace datapath); frr: the ALT core in tests and demo;
# mininet: demo topologies; tshark: wire-format oracle; ethtool + iputils-ping: a fresh image lacks them,
# and without ethtool's offload settings TCP through the userspace datapath stalls; clang, llvm,
# libbpf-dev and bpftool: the classic RFC 9300 data path (lisp_app/dataplane/bpf/*.c, compiled and
# attached to the uplink when the controller starts, lisp_app.classic).
# build-essential ... libcap-dev: what the interop tests need to build Open Overlay Router from
# ../shared/peers (tests/integration/oor.py).
apt_pkgs="openvswitch-switch frr mininet tshark tcpdump iperf3 ethtool iputils-ping iproute2 socat
          python3-venv python3-dev clang llvm libbpf-dev bpftool
          build-essential libconfuse-dev libzmq3-dev libxml2-dev gengetopt libcap-dev"
missing=""
for p in $apt_pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    # policy-rc.d: package scripts must not start system daemons (OVS, FRR) in the root namespace;
    # our tests and demo start their own per-namespace daemons.
    prc=/usr/sbin/policy-rc.d
    created_prc=0
    if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' > $prc; chmod +x $prc; created_prc=1; fi
    apt-get install -y -q --no-install-recommends $missing
    [ $created_prc = 1 ] && rm -f $prc
fi

# The Python side: a virtualenv on Debian's Python 3.11 with lisp_app and its test extra (editable,
# so tests see the checkout).
py=${PYTHON:-/usr/bin/python3}
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e "$here[test]"
# Mininet's Python API is packaged only by Debian (python3-mininet files in dist-packages): link that
# one package into the virtualenv rather than exposing every system package.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -e "$site/mininet" ] || ln -s /usr/lib/python3/dist-packages/mininet "$site/mininet"
"$venv/bin/python" -c 'import mininet.net' || { echo "setup.sh: mininet does not import" >&2; exit 1; }
echo "setup.sh: ready (virtualenv: $venv)"
