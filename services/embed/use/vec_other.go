//go:build !amd64

package use

func vadd(dst, src *float32, n int)                             { panic("use: no assembly") }
func vreluadd(dst, src *float32, n int)                         { panic("use: no assembly") }
func vdequant(dst *float32, q *uint8, n int, scale, lo float32) { panic("use: no assembly") }
func vsum(x *float32, n int) float32                            { panic("use: no assembly") }
func vcenter(x *float32, n int, mean float32) float32           { panic("use: no assembly") }
func vaffine(x, gamma, beta *float32, n int, scale float32)     { panic("use: no assembly") }
