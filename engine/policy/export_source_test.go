package policy

import "time"

// ReadDirLimited is ReadDir with small limits, so that tests reach them
// without writing megabytes.
func ReadDirLimited(dir string, fileSize, totalSize int64, entries, depth int, walkTime time.Duration) (*Source, error) {
	return readDir(dir, readLimits{fileSize: fileSize, totalSize: totalSize, entries: entries, depth: depth, walkTime: walkTime})
}
