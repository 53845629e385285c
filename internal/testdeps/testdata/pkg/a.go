package pkg

import (
	"fmt"

	"example.com/bad"
	"golang.org/x/crypto/ssh"
	"golang.org/x/cryptography"
)

var _, _, _, _ = fmt.Sprint, bad.X, ssh.Y, cryptography.Z
