//go:build !unix

package policy

import "os"

const nonBlockFlag = 0

// openNonBlocking opens a file for reading.
func openNonBlocking(name string) (*os.File, error) { return os.Open(name) }
