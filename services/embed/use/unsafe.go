package use

import "unsafe"

// bytesToString views b as a string without copying; b must not change while the
// string is in use (map lookups and comparisons only).
func bytesToString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
