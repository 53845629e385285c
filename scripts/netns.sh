# Network namespaces for the demo (sourced by demo.sh): each device lives
# in a namespace of its own, behind a NAT namespace, as an appliance sits
# behind a home router; the engineer sits behind a second one, as on an
# office network. Both routers let out only TCP to port 443 (UDP and every
# other port are dropped), as hotel, hospital and corporate networks do:
# Porthole must serve everything on one HTTPS port. Devices and the
# engineer can reach the server on 443; nothing can reach them. Needs
# root, ip(8) and nft(8).
#
#   host (server) 10.N.0.1 ─── $PH-nat 10.N.0.2 ─┬─ 10.N.1.1 ── $PH-dev1 10.N.1.2
#                                                └─ 10.N.2.1 ── $PH-dev2 10.N.2.2
#   host 10.N.100.1 ────────── $PH-enat 10.N.100.2 ── 10.N.101.1 ── $PH-eng 10.N.101.2
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

# nat_rules: a home or office router's nftables: outbound masqueraded as
# the router's address, only TCP to port 443 let out, nothing that starts
# outside let in.
nat_rules() {
  cat <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname != "wan" oifname "wan" tcp dport 443 accept
    iifname != "wan" oifname "wan" meta l4proto tcp reject with tcp reset
    iifname "wan" reject with tcp reset
  }
}
NFT
}

# router NS HOSTLINK HOSTIP ROUTERIP: a router namespace whose wan faces the
# host over a veth pair.
router() {
  local ns=$1 link=$2 hostip=$3 routerip=$4
  ip netns add "$ns"
  ip link add "$link" type veth peer name wan netns "$ns"
  ip addr add "$hostip/24" dev "$link"
  ip link set "$link" up
  ip -n "$ns" addr add "$routerip/24" dev wan
  ip -n "$ns" link set wan up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$hostip"
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  nat_rules | ip netns exec "$ns" nft -f -
}

# behind ROUTERNS NS LAN NET: namespace NS on the router's LAN 10.N.NET.0/24.
behind() {
  local rns=$1 ns=$2 lan=$3 net=$4
  ip netns add "$ns"
  ip link add "$lan" netns "$rns" type veth peer name eth0 netns "$ns"
  ip -n "$rns" addr add "10.$PH_NET.$net.1/24" dev "$lan"
  ip -n "$rns" link set "$lan" up
  ip -n "$ns" addr add "10.$PH_NET.$net.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "10.$PH_NET.$net.1"
}

# netns_up N: the devices' router and N device namespaces ($PH-dev1 ...),
# and the engineer's router and namespace ($PH-eng).
netns_up() {
  local n=$1 i
  router "$PH-nat" "$PH-host" "$PH_SERVER_IP" "10.$PH_NET.0.2"
  # The host knows the way to the devices' network (through the router),
  # so that trying it shows the router refusing, rather than no route.
  ip route add "10.$PH_NET.0.0/16" via "10.$PH_NET.0.2" dev "$PH-host"
  for i in $(seq 1 "$n"); do
    behind "$PH-nat" "$PH-dev$i" "lan$i" "$i"
  done
  router "$PH-enat" "$PH-host2" "10.$PH_NET.100.1" "10.$PH_NET.100.2"
  behind "$PH-enat" "$PH-eng" lan0 101
  ip route add "10.$PH_NET.101.0/24" via "10.$PH_NET.100.2" dev "$PH-host2"
}

# netns_down: delete everything netns_up made (safe to run more than once).
netns_down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PH-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$PH-host" 2>/dev/null || true
  ip link del "$PH-host2" 2>/dev/null || true
}
