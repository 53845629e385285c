// Package agentssh is the device's embedded SSH server: it serves support
// engineers over channels the relay forwards to the device, so the device
// opens no listening port. porthole-agent links it, so it imports only the
// standard library, golang.org/x/crypto/ssh, github.com/pkg/sftp,
// github.com/creack/pty and the shared sessioncert and sshalgo packages.
//
// # Protocol flow
//
// For each engineer connection the agent hands ServeConn a net.Conn (a
// relay channel wrapped by ChannelConn) and the session it belongs to:
//
//  1. Handshake, bounded by Config.HandshakeTimeout. The device proves
//     itself with its host key and host certificate (Config.HostKey), which
//     clients check against the host CA. Key exchange and ciphers are
//     package sshalgo's: mlkem768x25519-sha256 or curve25519-sha256, and
//     only the AEAD family this processor runs fastest (AES-GCM with AES
//     instructions, else ChaCha20-Poly1305), so that stock OpenSSH, which
//     prefers ChaCha20 and AES-CTR, cannot pick a slower one. The login's
//     log line says what was agreed.
//  2. Public key authentication. The key must be a session certificate
//     (sessioncert.Verify) signed by Config.UserCA, valid now, naming this
//     connection's session and this device's fleet, name and id, and the
//     session must be open (Config.SessionOpen). It is checked when the key
//     is offered and again once the client has signed with it. The SSH user
//     name is ignored. A certificate of ours that does not fit is refused
//     with a banner saying why; bare keys and strangers' certificates get
//     a plain refusal.
//  3. Second factor, where Config.SecondFactor asks for one: the
//     certificate step answers "partial success" and the client must pass
//     keyboard-interactive authentication with one prompt (the owner's
//     support code). A wrong answer is refused with a banner carrying the
//     check's words.
//  4. Channels. A "session" channel takes pty-req, window-change, env
//     (TERM, LANG and LC_* only), then one of shell (the account's login
//     shell), exec (through the shell's -c) or subsystem "sftp", then
//     signal; it ends with exit-status, or exit-signal when a signal
//     killed the process. A client whose version line asks for it
//     (sshalgo.OffersLoginSession; the server's own offers it) gets a
//     session channel the server opens as the login ends, of type
//     sshalgo.LoginSessionChannel, served as a "session" channel is: the
//     client need not open one, a round trip later. A "direct-tcpip"
//     channel reaches only 127.0.0.1, localhost or ::1, and only
//     Config.AllowPorts; others are refused with the reason. Every other channel type is refused. Of
//     the global requests, keepalive@openssh.com is answered yes,
//     tcpip-forward (remote forwards) and everything else no.
//  5. The end: the engineer hangs up, or ctx is cancelled (the session was
//     closed). Either way every process of the connection is killed.
//
// # Processes
//
// Shells, commands and the SFTP program run as Config.RunAs (the agent's
// own user when empty; another user needs the agent to run as root), in
// that user's home directory ("/" when it has none), with HOME, USER,
// LOGNAME, SHELL, PATH, TERM, SSH_CLIENT and SSH_CONNECTION (SSH_TTY with
// a terminal) and the client's allowed variables, nothing of the agent's
// own environment. SSH_CLIENT and SSH_CONNECTION are sshd's, made of the
// connection's RemoteAddr and LocalAddr ("0.0.0.0 0" for an address that
// is no IP address and port), so that bash reads ~/.bashrc for a command
// as it does under sshd. The login shell comes from /etc/passwd;
// one that exists to refuse logins (nologin, false) gives way to /bin/sh,
// since the owner chose this user for support.
//
// Each process leads a session and process group of its own; when it
// exits, everything left in that session is killed with SIGKILL (found
// through its process group and /proc); when its channel or the
// connection ends first, the session is asked to end (SIGTERM, so shells
// run their EXIT traps, as under sshd) and killed a moment later; a dying
// agent takes them along (PR_SET_PDEATHSIG). A program
// that calls setsid itself escapes this, as it escapes sshd.
//
// SFTP runs as Config.SFTPCommand when there is one (there must be when
// RunAs is another user): a program running as RunAs that calls ServeSFTP
// on its standard input and output. Without one it runs inside the agent.
//
// # Recording
//
// Config.Recorder is told of logins, every shell and command (with a
// PTY's output, input and resizes, for an asciicast), every SFTP
// operation (path, bytes, outcome) and every port forward (target, bytes,
// duration). SFTP is recorded by watching the SFTP stream on the agent's
// side, so it is recorded the same way in either mode. Config.Activity is
// called for every chunk of engineer input, for the idle timeout.
//
// Recording fails closed: once Recorder.Full says the session can no
// longer be recorded (a cap was reached), new shells, commands, SFTP and
// forwards are refused with its reason, and terminals, forwards and the
// input of running commands are ended before they move another byte, so
// an engineer cannot fill the recording with padding and then act unseen.
// A command without a terminal may finish sending its output (counted, not
// kept, as SFTP's file contents are), so that `cat big.log` still works.
package agentssh
