package cli

// privateDirSDDL is the security descriptor makePrivateDir gives a
// directory on Windows, in SDDL: a DACL protected from the parent's (P)
// that grants full control (FA) to SYSTEM, the Administrators and the user
// sid, inherited by files and subdirectories (OICI). SYSTEM and the
// Administrators can read every file anyway; Windows' OpenSSH demands the
// same of key files.
func privateDirSDDL(sid string) string {
	return "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;" + sid + ")"
}
