package brokerclient

import (
	"strings"
	"testing"

	"github.com/porthole/porthole/internal/testmosquitto"
)

// Users in the password files the tests make. Each one's password is
// password(user).
var (
	deviceUsers = []string{"acme/dev1", "acme/dev2", "acme/dev3", "acme/+", "other/dev1"}
	serverUsers = []string{"portholed"}
)

func password(user string) string {
	return "pw-" + strings.NewReplacer("/", "-", "+", "plus").Replace(user)
}

// passwords maps each of users to its password.
func passwords(users []string) map[string]string {
	m := map[string]string{}
	for _, u := range users {
		m[u] = password(u)
	}
	return m
}

// startMosquitto runs Mosquitto from the shipped configuration plus extra
// lines (where {{dir}} and {{port:name}} work as testmosquitto.Config.Conf
// says), its password files holding deviceUsers and serverUsers.
func startMosquitto(t testing.TB, extra string) *testmosquitto.Broker {
	t.Helper()
	c := testmosquitto.Shipped(t, passwords(deviceUsers), passwords(serverUsers))
	c.Conf += "\n" + extra
	return testmosquitto.Start(t, c)
}
