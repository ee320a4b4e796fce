#!/bin/sh
# Network namespaces for a distributed vmsbench run on one machine: N namespaces on a
# bridge, namespace i at 10.77.0.(i+2)/24, this side (the coordinator) at 10.77.0.1.
# Needs root, iproute2 (ip, tc) and iptables.
#
#   lab/netns.sh up 4        # create vmsb-0 … vmsb-3
#   ip netns exec vmsb-0 vmsbench agent --coordinator 10.77.0.1:7979 --name rec --listen 10.77.0.2
#   lab/netns.sh rate 1 50mbit   # cap vmsb-1's link at 50 Mbit/s each way (kernel tbf)
#   lab/netns.sh down 4
#
# `rate` puts the kernel's token-bucket filter on both ends of a namespace's veth: what it
# sends and what it receives. Delay, jitter and loss need netem, which many kernels lack;
# the user-space WAN relay of the scenario files models those instead.
set -eu
cmd=${1:?up|down}
n=${2:?number of namespaces (up, down) or a namespace index (rate)}
br=vmsb-br
case "$cmd" in
up)
    ip link add "$br" type bridge
    ip addr add 10.77.0.1/24 dev "$br"
    ip link set "$br" up
    # Docker's FORWARD policy drops bridged traffic when br_netfilter is loaded.
    iptables -I FORWARD -i "$br" -o "$br" -j ACCEPT
    i=0
    while [ "$i" -lt "$n" ]; do
        ip netns add "vmsb-$i"
        ip link add "vmsb-v$i" type veth peer name eth0 netns "vmsb-$i"
        ip link set "vmsb-v$i" master "$br" up
        ip -n "vmsb-$i" addr add "10.77.0.$((i + 2))/24" dev eth0
        ip -n "vmsb-$i" link set eth0 up
        ip -n "vmsb-$i" link set lo up
        i=$((i + 1))
    done
    ;;
down)
    i=0
    while [ "$i" -lt "$n" ]; do
        ip netns del "vmsb-$i" 2>/dev/null || true
        i=$((i + 1))
    done
    ip link del "$br" 2>/dev/null || true
    iptables -D FORWARD -i "$br" -o "$br" -j ACCEPT 2>/dev/null || true
    ;;
rate)
    rate=${3:?a rate, e.g. 50mbit}
    # Both directions: what the namespace sends (its eth0) and what it receives (the
    # bridge's side of its veth). A burst of 64 KiB; a packet waits at most 50 ms.
    tc -n "vmsb-$n" qdisc replace dev eth0 root tbf rate "$rate" burst 64kb latency 50ms
    tc qdisc replace dev "vmsb-v$n" root tbf rate "$rate" burst 64kb latency 50ms
    ;;
*)
    echo "usage: $0 up|down N | rate I RATE" >&2
    exit 2
    ;;
esac
