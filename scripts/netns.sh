# Network namespaces for the demo (sourced by demo.sh): each device lives
# in a namespace of its own, behind a NAT namespace, as an appliance sits
# behind a home router. Devices can reach the server; nothing can reach
# them. Needs root, ip(8) and nft(8).
#
#   host (server) 10.N.0.1 ── $PH-nat 10.N.0.2 ─┬─ 10.N.1.1 ── $PH-dev1 10.N.1.2
#                                               └─ 10.N.2.1 ── $PH-dev2 10.N.2.2
#
# The prefix PH (default "ph") names every namespace and link, and N
# (PH_NET, default random in 20-219) the addresses, so two demos (or the
# demo and its test) can run at once.

PH=${PH:-ph}
PH_NET=${PH_NET:-$((RANDOM % 200 + 20))}
PH_SERVER_IP=10.$PH_NET.0.1

# device_ip I: the address of device I (1, 2, ...).
device_ip() { echo "10.$PH_NET.$1.2"; }

# netns_supported: root, ip and nft, and namespaces that can be made.
netns_supported() {
  [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v nft >/dev/null || return 1
  ip netns add "$PH-probe" 2>/dev/null || return 1
  ip netns del "$PH-probe"
}

# netns_up N: the NAT namespace and N device namespaces ($PH-dev1 ...).
netns_up() {
  local n=$1 i
  ip netns add "$PH-nat"
  ip link add "$PH-host" type veth peer name wan netns "$PH-nat"
  ip addr add "$PH_SERVER_IP/24" dev "$PH-host"
  ip link set "$PH-host" up
  ip -n "$PH-nat" addr add "10.$PH_NET.0.2/24" dev wan
  ip -n "$PH-nat" link set wan up
  ip -n "$PH-nat" link set lo up
  ip netns exec "$PH-nat" sysctl -qw net.ipv4.ip_forward=1
  # Outbound from the devices is masqueraded as the router's address; the
  # router forwards nothing that starts outside: no inbound path at all.
  ip netns exec "$PH-nat" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname != "wan" oifname "wan" accept
    iifname "wan" reject with tcp reset
  }
}
NFT
  # The host knows the way to the devices' network (through the router),
  # so that trying it shows the router refusing, rather than no route.
  ip route add "10.$PH_NET.0.0/16" via "10.$PH_NET.0.2" dev "$PH-host"
  for i in $(seq 1 "$n"); do
    ip netns add "$PH-dev$i"
    ip link add "lan$i" netns "$PH-nat" type veth peer name eth0 netns "$PH-dev$i"
    ip -n "$PH-nat" addr add "10.$PH_NET.$i.1/24" dev "lan$i"
    ip -n "$PH-nat" link set "lan$i" up
    ip -n "$PH-dev$i" addr add "10.$PH_NET.$i.2/24" dev eth0
    ip -n "$PH-dev$i" link set eth0 up
    ip -n "$PH-dev$i" link set lo up
    ip -n "$PH-dev$i" route add default via "10.$PH_NET.$i.1"
  done
}

# netns_down: delete everything netns_up made (safe to run more than once).
netns_down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PH-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$PH-host" 2>/dev/null || true
}
