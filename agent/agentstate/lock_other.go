//go:build !unix

package agentstate

// Lock does nothing where there is no flock; the agent targets Linux.
func Lock(string, string) (func() error, error) { return func() error { return nil }, nil }
