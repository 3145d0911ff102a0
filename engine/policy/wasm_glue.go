package policy

// wasmEnvModule returns the binary of the small "env" module an
// OPA-compiled policy imports from: the policy imports its linear memory
// and its host functions (opa_abort, opa_builtin0…4) from "env", and a
// wazero host module can export functions but not a memory. So "env"
// defines the memory (minPages, at most maxPages) and re-exports the host
// functions it imports from the wasmHostModule. (OPA's own WebAssembly
// SDK builds the same module; it is internal to OPA.)
func wasmEnvModule(minPages, maxPages uint32) []byte {
	funcType := func(params int, result bool) []byte {
		b := append([]byte{0x60}, uleb(uint32(params))...)
		for range params {
			b = append(b, 0x7f) // i32
		}
		if result {
			return append(b, 1, 0x7f)
		}
		return append(b, 0)
	}
	hostFuncs := []struct {
		name    string
		typeIdx byte
	}{
		{"opa_builtin0", 1}, {"opa_builtin1", 2}, {"opa_builtin2", 3}, {"opa_builtin3", 4}, {"opa_builtin4", 5},
		{"opa_abort", 0},
	}
	var imports, exports [][]byte
	exports = append(exports, append(wasmName("memory"), 0x02, 0)) // memory 0
	for i, f := range hostFuncs {
		imports = append(imports, append(append(wasmName(wasmHostModule), wasmName(f.name)...), 0x00, f.typeIdx))
		exports = append(exports, append(append(wasmName(f.name), 0x00), uleb(uint32(i))...))
	}
	limits := append(append([]byte{0x01}, uleb(minPages)...), uleb(maxPages)...)
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, wasmSection(1, wasmVec(funcType(1, false), funcType(2, true), funcType(3, true),
		funcType(4, true), funcType(5, true), funcType(6, true)))...)
	out = append(out, wasmSection(2, wasmVec(imports...))...)
	out = append(out, wasmSection(5, wasmVec(limits))...)
	out = append(out, wasmSection(7, wasmVec(exports...))...)
	return out
}

// uleb is n in unsigned LEB128, as WebAssembly encodes integers.
func uleb(n uint32) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wasmName(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func wasmSection(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

func wasmVec(items ...[]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}
