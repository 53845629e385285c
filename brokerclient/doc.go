// Package brokerclient connects portholed to an external MQTT 5 broker
// (Mosquitto 2, EMQX, VerneMQ, HiveMQ, AWS IoT Core) instead of the embedded
// one, so that many server nodes and millions of devices can share a broker
// cluster. A [Client] has the same Publish and Subscribe as the embedded
// broker (broker.PubSub), so the code that sends commands and reads states
// does not care which one it has. It is built on
// github.com/eclipse/paho.golang's autopaho.
//
// # Connection flow
//
//  1. [New] checks the [Config] and loads its TLS files. [Client.Subscribe]
//     may register handlers before or after connecting.
//  2. [Client.Connect] dials the URL (mqtt:// or mqtts://, with a client
//     certificate if the broker authenticates by certificate, as AWS IoT
//     Core does) and logs in with the client id, username and password. The
//     session is clean and expires with the connection: the broker keeps
//     nothing for a node that is gone, so it never queues state messages
//     for a dead node while live ones could take them. Connect waits for
//     this first connection and fails with a sentence naming what went
//     wrong (unreachable, TLS certificate not trusted, login refused).
//  3. On every connection, first or renewed, the client subscribes at QoS 1
//     to "$share/<ShareGroup>/<filter>" for each registered filter. All
//     server nodes join the same share group, so the broker hands each
//     device state message to one node; the handler gets the real topic.
//  4. [Client.Publish] sends commands at QoS 1 and waits for the broker's
//     PUBACK. While the connection is down it fails at once with
//     [ErrNotConnected] rather than queueing: a signed command expires
//     soon, and the caller should tell the engineer that the control
//     channel is down.
//  5. When the connection drops the client reconnects by itself: at once,
//     then after exponential delays with jitter up to 60 s; a connection
//     that keeps dropping right after it comes up is retried with those
//     delays too.
//
// What devices may do on the external broker is the broker's ACL, which the
// operator configures: deploy/mosquitto and deploy/aws-iot ship the same
// rules as the embedded broker (a device reads only its own cmd topic and
// writes only its own state topic; the server writes every cmd and reads
// every state topic).
//
// The package does not import package broker, so a program using only an
// external broker does not link the embedded one; a test checks that
// [Client] still implements broker.PubSub.
package brokerclient
