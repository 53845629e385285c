package auth

import (
	"io"

	"github.com/mdp/qrterminal/v3"
)

// PrintQR draws text as a QR code on a terminal, two modules per character
// cell with half blocks so it fits an 80×24 window, with a quiet zone the
// phone camera needs.
func PrintQR(w io.Writer, text string) {
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
