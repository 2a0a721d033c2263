package use

import "math"

// Element-wise steps: AVX-512 assembly when the CPU has it and the length is a multiple of
// 16 (every vector of the model is), the Go loop otherwise.

func vecOK(n int) bool { return useAVX512 && n > 0 && n%16 == 0 }

// add does dst += src.
func add(dst, src []float32) {
	src = src[:len(dst)]
	if vecOK(len(dst)) {
		vadd(&dst[0], &src[0], len(dst))
		return
	}
	for i := range dst {
		dst[i] += src[i]
	}
}

// reluAdd does dst = max(dst, 0) + src.
func reluAdd(dst, src []float32) {
	src = src[:len(dst)]
	if vecOK(len(dst)) {
		vreluadd(&dst[0], &src[0], len(dst))
		return
	}
	for i := range dst {
		dst[i] = max(dst[i], 0) + src[i]
	}
}

// dequant does dst = float32(q)*scale + lo.
func dequant(dst []float32, q []uint8, scale, lo float32) {
	q = q[:len(dst)]
	if vecOK(len(dst)) {
		vdequant(&dst[0], &q[0], len(dst), scale, lo)
		return
	}
	for j := range dst {
		dst[j] = float32(q[j])*scale + lo
	}
}

// layerNorm normalises x to zero mean and unit variance, then scales by g and shifts by b.
func layerNorm(x, g, b []float32, eps float32) {
	n := len(x)
	g, b = g[:n], b[:n]
	if vecOK(n) {
		mean := vsum(&x[0], n) / float32(n)
		ss := vcenter(&x[0], n, mean)
		inv := float32(1 / math.Sqrt(float64(ss)/float64(n)+float64(eps)))
		vaffine(&x[0], &g[0], &b[0], n, inv)
		return
	}
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := float32(sum / float64(n))
	var ss float64
	for i, v := range x {
		d := v - mean
		x[i] = d
		ss += float64(d) * float64(d)
	}
	inv := float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
	for i := range x {
		x[i] = x[i]*inv*g[i] + b[i]
	}
}
