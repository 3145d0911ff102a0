package policywatch

// SetAfterReload installs a hook that observes every reload's result. Call
// it before Start.
func SetAfterReload(m *Manager, f func(trigger, result string)) { m.afterReload = f }
