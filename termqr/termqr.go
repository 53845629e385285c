// Package termqr draws QR codes on a terminal (an otpauth:// URI for a
// new account's authenticator app), for portholed init and the porthole CLI
// alike, without linking either one's other code.
package termqr

import (
	"io"

	"github.com/mdp/qrterminal/v3"
)

// Print draws text as a QR code on a terminal, two modules per character
// cell with half blocks so it fits an 80×24 window, with a quiet zone the
// phone camera needs.
func Print(w io.Writer, text string) {
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level:          qrterminal.L,
		Writer:         w,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      2,
	})
}
