//go:build unix

package policy

import (
	"os"
	"syscall"
)

// nonBlockFlag keeps opening a FIFO or device from blocking.
const nonBlockFlag = syscall.O_NONBLOCK

// openNonBlocking opens a file for reading without following a final
// symbolic link and without blocking on FIFOs or devices.
func openNonBlocking(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
}
