// Package bench measures Porthole against plain OpenSSH on the same machine
// in the same run, so that its figures are ratios rather than absolute times
// that depend on the machine.
//
// Run builds the three binaries, starts a server (`portholed init` and
// `serve`, every role on loopback), enrolls one device with the real agent
// (consent: auto, so no person reads out a support code), and starts an OpenSSH sshd of its own on a free loopback port (a temporary
// host key, authorized_keys and config, `sshd -D -f`). It then measures,
// interleaving the tools so that a busy moment of the shared machine hits
// them alike:
//
//   - Throughput: a file of Options.Size bytes copied up and down with
//     `porthole scp` (SFTP through the relay, end to end) against OpenSSH's
//     `scp` to the local sshd, also stock `scp` through `porthole
//     ssh-config`'s ProxyCommand, and the same with `cat` over an exec
//     channel. Wall time includes each command's connection setup, as a
//     person sees it. The CPU time of the client, the relay (portholed) and
//     the device's side (porthole-agent, or sshd with its children) is
//     taken from /proc and reported per GiB.
//   - Time to shell: `porthole ssh DEVICE -- echo ok` (session request,
//     MQTT wake-up, the device dialing the relay, the end-to-end handshake)
//     against `ssh 127.0.0.1 echo ok`: time to the first output and to the
//     exit, median and p95.
//   - Echo: one byte written to an open interactive session (a terminal on
//     both ends, the remote in raw mode running cat) and read back, median
//     and p95 round trip.
//   - Idle cost: Options.Devices simulated devices (each an MQTT 5 client
//     that behaves as porthole-agent does on the wire: TLS, a signed
//     password, a last will, its cmd subscription, its retained "online",
//     a ping a minute, the agent's reconnect backoff) idle on the embedded
//     broker; the growth of portholed's resident memory per device, against
//     what an idle `ssh -N -R` client costs sshd (PSS of its processes).
//     Then portholed is restarted and the time until every device is back is
//     measured.
//
// Three measurements run only when named (Options.Only): load, fifty
// `porthole ssh DEV -- echo ok` at once; cluster, many interactive
// sessions at once on two server nodes sharing a PostgreSQL database (node
// 1 api, relay and broker; node 2 a relay reaching node 1's broker),
// against as many ssh sessions to the run's sshd: sessions opened per
// second, echo p50/p99 with every session typing, the sessions' spread
// over the relays and CPU per node and per keystroke; and storm-mosquitto,
// Options.Devices simulated devices logging in with passwords to a
// Mosquitto of the run's own (deploy/mosquitto's configuration) that a
// portholed uses as broker.url, then Mosquitto killed and started again
// (the time until every device is back, failed attempts, Mosquitto's CPU
// and memory) and portholed restarted (the time until it has read every
// device's retained state again).
//
// Nothing here runs in `go test ./...` beyond compiling: the measurements
// run from cmd/porthole-bench (bench/run.sh) or the Benchmark functions.
package bench
