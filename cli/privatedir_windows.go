package cli

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// makePrivateDir makes dir (and its parents) if it is missing and gives it
// a protected DACL (privateDirSDDL) that lets in this user, SYSTEM and the
// Administrators only, inherited by everything in it. Mode bits mean
// nothing here (os.Chmod only sets the read-only attribute); the profile's
// own DACL already keeps other users out of %LOCALAPPDATA%, and this keeps
// them out of a config dir put elsewhere with XDG_CONFIG_HOME too.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sid, err := currentUserSID()
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(privateDirSDDL(sid))
	if err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	return nil
}

// currentUserSID is the SID of the user this process runs as, in its
// string form (S-1-5-21-…).
func currentUserSID() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("finding which Windows user runs porthole: %w", err)
	}
	return u.User.Sid.String(), nil
}
