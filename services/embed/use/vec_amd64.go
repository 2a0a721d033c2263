package use

//go:noescape
func vadd(dst, src *float32, n int)

//go:noescape
func vreluadd(dst, src *float32, n int)

//go:noescape
func vdequant(dst *float32, q *uint8, n int, scale, lo float32)

//go:noescape
func vsum(x *float32, n int) float32

//go:noescape
func vcenter(x *float32, n int, mean float32) float32

//go:noescape
func vaffine(x, gamma, beta *float32, n int, scale float32)
