package agentcmd

import (
	"context"
	"strings"
	"testing"
)

// TestAsCobra: porthole-agent's mistakes and its answers to the shell
// completion scripts are word for word what they were when it was built
// on cobra (these are cobra's outputs). Its help is checked against
// cobra's by packaging/docgen's TestAgentAsCobra.
func TestAsCobra(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		stdout, stderr string
		err            string
	}{
		{[]string{"nothing"}, "", "", "unknown command \"nothing\" for \"porthole-agent\""},
		{[]string{"stauts"}, "", "", "unknown command \"stauts\" for \"porthole-agent\"\n\nDid you mean this?\n\tstatus"},
		{[]string{"enroll", "extra"}, "", "", "unknown command \"extra\" for \"porthole-agent enroll\""},
		{[]string{"replay"}, "", "", "accepts 1 arg(s), received 0"},
		{[]string{"approve", "a", "b"}, "", "", "accepts at most 1 arg(s), received 2"},
		{[]string{"--bogus"}, "", "", "unknown flag: --bogus"},
		{[]string{"-x"}, "", "", "unknown shorthand flag: 'x' in -x"},
		{[]string{"status", "-vx"}, "", "", "unknown shorthand flag: 'x' in -x"},
		{[]string{"run", "--state"}, "", "", "flag needs an argument: --state"},
		{[]string{"request", "--for", "soon"}, "", "", "invalid argument \"soon\" for \"--for\" flag: time: invalid duration \"soon\""},
		{[]string{"replay", "x", "--speed", "fast"}, "", "", "invalid argument \"fast\" for \"--speed\" flag: strconv.ParseFloat: parsing \"fast\": invalid syntax"},
		{[]string{"status", "--json=maybe"}, "", "", "invalid argument \"maybe\" for \"--json\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"},
		{[]string{"--=x"}, "", "", "bad flag syntax: --=x"},
		{[]string{"version", "extra"}, "", "", "unknown command \"extra\" for \"porthole-agent version\""},
		{[]string{"completion", "nothing"}, "Generate the autocompletion script for porthole-agent for the specified shell.\nSee each sub-command's help for details on how to use the generated script.\n\nUsage:\n  porthole-agent completion [command]\n\nAvailable Commands:\n  bash        Generate the autocompletion script for bash\n  fish        Generate the autocompletion script for fish\n  powershell  Generate the autocompletion script for powershell\n  zsh         Generate the autocompletion script for zsh\n\nFlags:\n  -h, --help   help for completion\n\nGlobal Flags:\n  -v, --verbose   log each step to standard error\n\nUse \"porthole-agent completion [command] --help\" for more information about a command.\n", "", ""},
		{[]string{"status", "-vs"}, "", "", "unknown shorthand flag: 's' in -s"},
		{[]string{"help", "run", "extra"}, "run keeps this device connected to its Porthole server's control channel\n(MQTT) until it is stopped (SIGINT or SIGTERM), reconnecting by itself when the\nconnection drops. The device idles there, costing a ping a minute, until the\nserver asks it for a support session.\n\nEvery command is checked before anything is done: it must be signed by the\nserver's control key, addressed to this device, not expired and never seen\nbefore. Refused commands are logged and recorded in agent.log in the state\ndirectory.\n\nFor a session the device dials out to the relay named in the command, and\nserves an SSH server of its own over that one connection: it listens on no\nport. Engineers get in only with a certificate for that session, signed by\nthe server's user CA; the session ends when the server closes it, after\nidle_timeout without their input, or after max_duration.\n\nEverything engineers do is recorded in the state directory, for the owner\n(porthole-agent log, sessions, replay): what their terminals showed, every\ncommand with its exit status, every file copied and every port forward,\nwithin the recordings caps below. The recordings are also sent to the server,\nduring and after each session (what could not be sent goes when the server\nis back, or when the agent starts again), where the engineers' fleet and you,\nthe owner, read them: porthole-agent owner-link prints your link.\n\nThe owner's config file (YAML, default /etc/porthole/agent.yaml; a missing\ndefault file means the defaults) may point the device at an external broker,\nor through an HTTP proxy:\n\n  proxy: http://proxy.example:3128       # HTTP CONNECT proxy to the server (API, broker, relay);\n                                         # http://USER:PASSWORD@HOST:PORT or https:// too;\n                                         # direct (or none): no proxy; default: $HTTPS_PROXY\n                                         # (NO_PROXY, localhost and loopback always go direct)\n  broker:\n    url: mqtts://mqtt.example.com:8883   # or mqtt:// (unencrypted)\n    username: ...                        # default <fleet>/<device>\n    password: ...                        # default: signed with the device key\n    ca_file: /etc/porthole/broker-ca.pem # default: the system's roots\n    client_cert: /etc/porthole/device.crt  # for brokers such as AWS IoT Core\n    client_key: /etc/porthole/device.key\n  log_level: info                        # debug, info, warn or error\n  allow_ports: [22, 80]                  # local ports engineers may forward to (default none)\n  run_as: support                        # user for shells and file copies (default the agent's)\n  idle_timeout: 15m                      # may shorten the server's limits, never lengthen them\n  max_duration: 2h\n  record_input: false                    # also record what engineers type (passwords too)\n  recordings:                            # caps on the recordings of sessions\n    max_session: 64MiB                   # output kept per session, then a truncation marker\n    max_events: 16MiB                    # events.jsonl per session\n    max_total: 512MiB                    # all recordings; the oldest are deleted first\n    keep: 30d                            # recordings of sessions that ended earlier are deleted\n  consent: manual                        # manual (support window and code), approve or auto\n  approval_timeout: 5m                   # approve: unanswered sessions are denied after this (at most 10m)\n  socket: /run/porthole/agent.sock       # where porthole-agent request, status, approve, deny, revoke reach it\n  socket_group: porthole                 # who may use the socket (default porthole, if that group exists)\n  local_ui: 127.0.0.1:7780               # the owner's local page, on loopback only (default: none)\n\nUnknown keys are errors.\n\nUsage:\n  porthole-agent run [--state DIR] [--config FILE] [flags]\n\nExamples:\n  porthole-agent run\n  porthole-agent run --state ./dev1-state --config ./agent.yaml\n\nFlags:\n      --config string   the owner's config file (default \"/etc/porthole/agent.yaml\")\n  -h, --help            help for run\n      --state string    the state directory that porthole-agent enroll filled (default \"/var/lib/porthole-agent\")\n\nGlobal Flags:\n  -v, --verbose   log each step to standard error\n", "", ""},
		// cobra finds the command before it knows --help and --version, and
		// takes them for flags with a value.
		{[]string{"--version", "run"}, "porthole-agent version dev\n", "", ""},
		{[]string{"-h", "run", "x"}, "", "", "unknown command \"x\" for \"porthole-agent\"\n\nDid you mean this?\n\tui"},
		{[]string{"--version"}, "porthole-agent version dev\n", "", ""},
		{[]string{"__complete", ""}, "approve\tLet in a session that waits for your approval\ncompletion\tGenerate the autocompletion script for the specified shell\ndeny\tRefuse a session that waits for your approval\nenroll\tEnroll this device in a fleet, once\nhelp\tHelp about any command\nlog\tShow the agent's own log: commands, sessions, who connected\nowner-link\tPrint your read-only link to the server's record of this device\nreplay\tPlay back a recorded support session in this terminal\nrequest\tAsk for support: open a support window and print its code\nrevoke\tEnd every session now and close the support window\nrun\tStay connected to the server and obey its signed commands\nsessions\tList the recorded support sessions, newest first\nstatus\tShow the support window, who asks to connect, and who is connected\nui\tPrint a link that opens the owner's local page\nversion\tPrint the agent's version\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "s"}, "sessions\tList the recorded support sessions, newest first\nstatus\tShow the support window, who asks to connect, and who is connected\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "-"}, "--help\thelp for porthole-agent\n-h\thelp for porthole-agent\n--verbose\tlog each step to standard error\n-v\tlog each step to standard error\n--version\tversion for porthole-agent\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "run", "-"}, "--verbose\tlog each step to standard error\n-v\tlog each step to standard error\n--config\tthe owner's config file\n--help\thelp for run\n-h\thelp for run\n--state\tthe state directory that porthole-agent enroll filled\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "run", "--state", ""}, ":0\n", "Completion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "run", "--state=x"}, ":0\n", "Completion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "help", "r"}, "replay\tPlay back a recorded support session in this terminal\nrequest\tAsk for support: open a support window and print its code\nrevoke\tEnd every session now and close the support window\nrun\tStay connected to the server and obey its signed commands\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "completion", ""}, "bash\tGenerate the autocompletion script for bash\nfish\tGenerate the autocompletion script for fish\npowershell\tGenerate the autocompletion script for powershell\nzsh\tGenerate the autocompletion script for zsh\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "completion", "bash", "-"}, "--verbose\tlog each step to standard error\n-v\tlog each step to standard error\n--help\thelp for bash\n-h\thelp for bash\n--no-descriptions\tdisable completion descriptions\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "replay", "x", ""}, ":0\n", "Completion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "replay", "--exec", ""}, ":0\n", "Completion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "status", "--json", "-"}, "--verbose\tlog each step to standard error\n-v\tlog each step to standard error\n--config\tthe owner's config file, for its socket:\n--help\thelp for status\n-h\thelp for status\n--socket\tthe running agent's socket (default: socket: in the config, else /run/porthole/agent.sock)\n--state\tthe agent's state directory, which holds the owner link\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "--help", ""}, ":4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete", "run", "--bogus", ""}, ":0\n", "[Debug] [Error] Error while parsing flags from args [--bogus]: unknown flag: --bogus\nCompletion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "status", "-s="}, ":0\n", "[Debug] [Error] Subcommand 'status' does not support flag 's'\nCompletion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__complete", "session", ""}, ":0\n", "Completion ended with directive: ShellCompDirectiveDefault\n", ""},
		{[]string{"__completeNoDesc", "run", "--"}, "--verbose\n--config\n--help\n--state\n:4\n", "Completion ended with directive: ShellCompDirectiveNoFileComp\n", ""},
		{[]string{"__complete"}, "", "", "requires at least 1 arg(s), only received 0"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, err := run(t, nil, tt.args...)
			var msg string
			if err != nil {
				msg = strings.TrimRight(err.Error(), "\n")
			}
			if stdout != tt.stdout || stderr != tt.stderr || msg != tt.err {
				t.Errorf("porthole-agent %q:\nstdout %q\nstderr %q\nerror %q\nwant\nstdout %q\nstderr %q\nerror %q",
					tt.args, stdout, stderr, msg, tt.stdout, tt.stderr, tt.err)
			}
		})
	}
}

// TestFlags: flags as pflag takes them, GNU style, anywhere among the
// arguments.
func TestFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string // the --since that log was given, or its error
	}{
		{"space", []string{"log", "--since", "2h"}, "2h"},
		{"equals", []string{"log", "--since=2h"}, "2h"},
		{"after an argument", []string{"-v", "log", "--json", "--since", "3d"}, "3d"},
		{"global flag first", []string{"--verbose", "log", "--since=1h"}, "1h"},
		{"end of flags", []string{"log", "--", "--since=1h"}, `unknown command "--since=1h" for "porthole-agent log"`},
		{"last one wins", []string{"log", "--since", "1h", "--since", "2h"}, "2h"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(IO{Getenv: func(string) string { return "" }})
			root.init()
			var got string
			log := root.find("log")
			log.Run = func(_ context.Context, _ []string) error {
				got = log.Flags.Lookup("since").Value.String()
				return nil
			}
			if err := root.execute(context.Background(), tt.args); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("porthole-agent %q: --since = %q; want %q", tt.args, got, tt.want)
			}
		})
	}
}
