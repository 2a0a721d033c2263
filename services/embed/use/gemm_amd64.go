package use

import "golang.org/x/sys/cpu"

// useAsm selects the AVX2+FMA kernel; without it the portable Go loops run.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel4x16 computes C[0:4][0:16] += A[0:4][0:k] @ B[0:k][0:16] (strides in elements).
// k must be at least 1.
//
//go:noescape
func kernel4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int)
