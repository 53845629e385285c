package pkg

import "example.com/testonly"

var _ = testonly.X
