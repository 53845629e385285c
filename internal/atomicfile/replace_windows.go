package atomicfile

import (
	"os"

	"golang.org/x/sys/windows"
)

// replace moves tmp over name with MoveFileEx's write-through flag, which
// returns only once the move is on disk. os.Rename would leave the
// directory to be synced, which Windows cannot do: FlushFileBuffers wants a
// handle opened for writing, and a directory's is not.
func replace(tmp, name, _ string) error {
	from, err := windows.UTF16PtrFromString(tmp)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
	}
	to, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
	}
	if err := windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
	}
	return nil
}
