package brokerclient

import (
	"bytes"
	"slices"
	"sync"
)

// subscription is one Subscribe call: a plain (unshared) filter and the
// handler for the messages it matches.
type subscription struct {
	filter  string
	handler func(topic string, payload []byte)
}

// subscriptions are the registered handlers, renewed with the broker on
// every connection. The zero value is empty and ready to use.
type subscriptions struct {
	mu   sync.Mutex
	list []*subscription // guarded by mu; in registration order
}

func (s *subscriptions) add(filter string, handler func(topic string, payload []byte)) *subscription {
	sub := &subscription{filter: filter, handler: handler}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sub)
	return sub
}

func (s *subscriptions) remove(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = slices.DeleteFunc(s.list, func(x *subscription) bool { return x == sub })
}

// filters lists each registered filter once.
func (s *subscriptions) filters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fs []string
	for _, sub := range s.list {
		if !slices.Contains(fs, sub.filter) {
			fs = append(fs, sub.filter)
		}
	}
	return fs
}

// dispatch calls the handler of every subscription whose filter matches
// topic, each with its own copy of payload, outside the lock so a handler
// may subscribe.
func (s *subscriptions) dispatch(topic string, payload []byte) {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	for _, sub := range list {
		if matches(sub.filter, topic) {
			sub.handler(topic, bytes.Clone(payload))
		}
	}
}
