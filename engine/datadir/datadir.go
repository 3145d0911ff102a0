package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the lock file inside the data directory.
const LockFileName = "scimd.lock"

// ErrLocked reports that another process holds the data directory.
var ErrLocked = errors.New("data directory is locked by another scimd")

// Lock is held on a data directory until Release.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed (mode 0700), checks that it is writable,
// and takes an exclusive lock on it. When another process holds the lock
// it fails at once with an error wrapping ErrLocked that names the
// holder's pid. The lock is released by Release or when the process exits
// (also on kill -9).
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	if err := tryLock(f); err != nil {
		holder := "unknown pid"
		if raw, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(raw))); perr == nil {
				holder = "pid " + strconv.Itoa(pid)
			}
		}
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s is in use by %s; stop that process or choose another --data", ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := writePID(f); err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	if err := CheckWritable(dir); err != nil {
		unlock(f)
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// Release unlocks the data directory. The lock file stays: removing it
// would let a third process lock a new file while a second still waits on
// the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// CheckWritable writes, syncs and removes a probe file in dir, so a
// read-only mount or a full disk is reported at start instead of at the
// first SCIM write.
func CheckWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write([]byte("scimd write probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	return nil
}
