package use

import "golang.org/x/sys/cpu"

// The assembly kernels, selected by what the CPU (and OS) support; without them the
// portable Go loops run.
var (
	useAsm    = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useAVX512 = cpu.X86.HasAVX512F
)

// kernel4x16 computes C[0:4][0:16] += A[0:4][0:k] @ B[0:k][0:16] (strides in elements)
// with AVX2 and FMA. k must be at least 1.
//
//go:noescape
func kernel4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)

// kernel8x32p computes C[0:8][0:32] += A[0:8][0:k] @ P for a packed panel P (k rows of
// 32 contiguous floats) with AVX-512.
//
//go:noescape
func kernel8x32p(k int, a *float32, lda int, b *float32, c *float32, ldc int)
