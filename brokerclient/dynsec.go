package brokerclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// Mosquitto's dynamic security plugin takes its commands on DynsecTopic
// and answers on DynsecResponseTopic
// (https://mosquitto.org/documentation/dynamic-security/).
const (
	DynsecTopic         = "$CONTROL/dynamic-security/v1"
	DynsecResponseTopic = DynsecTopic + "/response"
)

// ErrDynsec wraps the refusal of a dynamic security command by the plugin.
var ErrDynsec = errors.New("the dynamic security plugin refused the command")

// DisableClient disables the client username in Mosquitto's dynamic
// security plugin, which disconnects it at once and refuses its next
// logins (until an administrator runs enableClient). It logs in with cfg
// (URL, Username, Password, CAFile, CertFile, KeyFile, TLS and ClientID
// apply), on a listener where the plugin runs, sends the command, waits
// for the plugin's answer or ctx's end, and disconnects. The login needs
// the right to publish to DynsecTopic and to subscribe to and receive
// DynsecResponseTopic (deploy/mosquitto).
func DisableClient(ctx context.Context, cfg Config, username string) error {
	return dynsecCommand(ctx, cfg, map[string]string{"command": "disableClient", "username": username})
}

// dynsecCommand runs one dynamic security command on its own connection.
func dynsecCommand(ctx context.Context, cfg Config, command map[string]string) error {
	s, err := cfg.validate()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s %s at %s", command["command"], command["username"], s.url.Redacted())
	var d net.Dialer
	var conn net.Conn
	if s.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: s.tls}).DialContext(ctx, "tcp", s.url.Host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.url.Host)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	answers := make(chan []byte, 1)
	c := paho.NewClient(paho.ClientConfig{
		ClientID: s.ClientID,
		Conn:     packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if pr.Packet.Topic == DynsecResponseTopic {
				select {
				case answers <- pr.Packet.Payload:
				default:
				}
			}
			return true, nil
		}},
	})
	defer conn.Close()
	cp := &paho.Connect{ClientID: s.ClientID, CleanStart: true, KeepAlive: 30}
	if s.Username != "" {
		cp.Username, cp.UsernameFlag = s.Username, true
	}
	if s.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(s.Password), true
	}
	if ca, err := c.Connect(ctx, cp); err != nil {
		if ca != nil && ca.ReasonCode >= 0x80 {
			return fmt.Errorf("%s: the broker refused the login: %s", what, reasonName(ca.ReasonCode))
		}
		return fmt.Errorf("%s: logging in: %w", what, err)
	}
	defer func() { _ = c.Disconnect(&paho.Disconnect{}) }()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: DynsecResponseTopic, QoS: 1}}})
	if err != nil {
		return fmt.Errorf("%s: subscribing to the answers: %w", what, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80 {
		return fmt.Errorf("%s: the broker refused the subscription to %s: the login needs the right to subscribe to it (deploy/mosquitto)", what, DynsecResponseTopic)
	}
	body, err := json.Marshal(map[string]any{"commands": []map[string]string{command}})
	if err != nil {
		return err
	}
	pr, err := c.Publish(ctx, &paho.Publish{Topic: DynsecTopic, QoS: 1, Payload: body})
	switch {
	case pr != nil && pr.ReasonCode >= 0x80:
		return fmt.Errorf("%s: the broker refused the command: %s; the login needs the right to publish to %s (deploy/mosquitto)", what, reasonName(pr.ReasonCode), DynsecTopic)
	case err != nil:
		return fmt.Errorf("%s: sending the command: %w", what, err)
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer from the dynamic security plugin (is it loaded on this listener?): %w", what, ctx.Err())
	case a := <-answers:
		var resp struct {
			Responses []struct {
				Command string `json:"command"`
				Error   string `json:"error"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(a, &resp); err != nil {
			return fmt.Errorf("%s: the plugin's answer is not JSON: %w", what, err)
		}
		for _, r := range resp.Responses {
			if r.Error != "" {
				return fmt.Errorf("%s: %w: %s", what, ErrDynsec, r.Error)
			}
		}
		return nil
	}
}
