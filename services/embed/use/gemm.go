package use

// sgemm computes C += A @ B for row-major A (m x k, rows lda apart), B (k x n, rows ldb
// apart) and C (m x n, rows ldc apart). Rows are taken in blocks of four so each row of B
// loaded serves four rows of C; on amd64, 4x32 (AVX-512) or 4x16 (AVX2+FMA) blocks run in
// assembly.
func sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 0 || n == 0 || k == 0 {
		return
	}
	// Bounds, checked once: the kernels index without checks.
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	i := 0
	if useAVX512 && n%32 == 0 {
		for ; i+4 <= m; i += 4 {
			for j := 0; j < n; j += 32 {
				kernel4x32(k, &a[i*lda], lda, &b[j], ldb, &c[i*ldc+j], ldc)
			}
		}
	} else if useAsm && n%16 == 0 {
		for ; i+4 <= m; i += 4 {
			for j := 0; j < n; j += 16 {
				kernel4x16(k, &a[i*lda], lda, &b[j], ldb, &c[i*ldc+j], ldc)
			}
		}
	}
	for ; i+4 <= m; i += 4 {
		c0 := c[i*ldc : i*ldc+n]
		c1 := c[(i+1)*ldc : (i+1)*ldc+n]
		c2 := c[(i+2)*ldc : (i+2)*ldc+n]
		c3 := c[(i+3)*ldc : (i+3)*ldc+n]
		for p := range k {
			a0, a1, a2, a3 := a[i*lda+p], a[(i+1)*lda+p], a[(i+2)*lda+p], a[(i+3)*lda+p]
			br := b[p*ldb : p*ldb+n]
			c0, c1, c2, c3 := c0[:len(br)], c1[:len(br)], c2[:len(br)], c3[:len(br)]
			for j, bv := range br {
				c0[j] += a0 * bv
				c1[j] += a1 * bv
				c2[j] += a2 * bv
				c3[j] += a3 * bv
			}
		}
	}
	for ; i < m; i++ {
		cr := c[i*ldc : i*ldc+n]
		for p := range k {
			av := a[i*lda+p]
			if av == 0 {
				continue
			}
			br := b[p*ldb : p*ldb+n]
			cr := cr[:len(br)]
			for j, bv := range br {
				cr[j] += av * bv
			}
		}
	}
}
