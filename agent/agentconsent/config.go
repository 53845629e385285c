package agentconsent

import (
	"fmt"
	"time"
)

// Config is the consent section of the owner's agent.yaml; its keys sit at
// the top level of the file (the agent's Config inlines it):
//
//	consent: approve        # manual (the default), approve or auto
//	approval_timeout: 2m    # approve mode: how long the owner has to answer
//
// Only this file sets them: nothing the server sends can change them.
type Config struct {
	// Mode is how the owner lets engineers in (key consent): manual (the
	// owner opens a support window and reads out its code), approve (the
	// owner approves each session) or auto (any session the server
	// signs). Empty: manual.
	Mode Mode `yaml:"consent"`
	// ApprovalTimeout is how long the owner has to answer a session in
	// approve mode; unanswered means denied. Zero: 5 min; at most 10 min.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
}

// Validate checks the consent keys.
func (c Config) Validate() error {
	if c.Mode != "" {
		if err := CheckMode(c.Mode); err != nil {
			return err
		}
	}
	if c.ApprovalTimeout < 0 || c.ApprovalTimeout > MaxApprovalTimeout {
		return fmt.Errorf("approval_timeout must be between 0 (the default, %v) and %v", DefaultApprovalTimeout, MaxApprovalTimeout)
	}
	return nil
}

// ModeOrDefault is Mode with its default, manual.
func (c Config) ModeOrDefault() Mode {
	if c.Mode == "" {
		return Manual
	}
	return c.Mode
}
