package policy

// DisableNative switches s's native decision table off, so that OPA alone
// decides: for benchmarks that measure OPA.
func DisableNative(s *Set) {
	s.native.Store(&nativeState{reason: "disabled by a test"})
}
