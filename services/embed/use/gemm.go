package use

import "sync"

// panelWidth is the column width of the panels weight matrices are packed in.
const panelWidth = 32

// pmat is a k x n weight matrix packed for the kernels: n/32 panels, each k rows of 32
// contiguous floats, so a kernel streams B sequentially instead of striding across rows.
type pmat struct {
	k, n int
	p    []float32
}

// pack packs the row-major k x n matrix w (n a multiple of 32).
func pack(w []float32, k, n int) pmat {
	if n%panelWidth != 0 || len(w) != k*n {
		panic("use: pack: bad shape")
	}
	m := pmat{k: k, n: n, p: make([]float32, k*n)}
	for jp := 0; jp < n/panelWidth; jp++ {
		panel := m.p[jp*k*panelWidth : (jp+1)*k*panelWidth]
		for r := range k {
			copy(panel[r*panelWidth:(r+1)*panelWidth], w[r*n+jp*panelWidth:r*n+(jp+1)*panelWidth])
		}
	}
	return m
}

// gemm computes C += A @ B for row-major A (m x b.k, rows lda apart) and C (m x b.n, rows
// ldc apart). On amd64 blocks of 8 rows x 32 columns run in AVX-512 assembly and blocks
// of 4 x 16 in AVX2+FMA assembly; the remaining rows, and CPUs without them, run the
// portable Go loop.
func gemm(m int, a []float32, lda int, b *pmat, c []float32, ldc int) {
	k, n := b.k, b.n
	if m == 0 || n == 0 || k == 0 {
		return
	}
	// Bounds, checked once: the kernels index without checks.
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	panels := n / panelWidth
	i := 0
	if useAVX512 {
		for ; i+8 <= m; i += 8 {
			for jp := range panels {
				kernel8x32p(k, &a[i*lda], lda, &b.p[jp*k*panelWidth], &c[i*ldc+jp*panelWidth], ldc)
			}
		}
		if i < m {
			gemmTail8(m-i, a[i*lda:], lda, b, c[i*ldc:], ldc)
			return
		}
	}
	if useAsm {
		for ; i+4 <= m; i += 4 {
			for jp := range panels {
				panel := b.p[jp*k*panelWidth:]
				kernel4x16(k, &a[i*lda], lda, &panel[0], panelWidth, &c[i*ldc+jp*panelWidth], ldc)
				kernel4x16(k, &a[i*lda], lda, &panel[16], panelWidth, &c[i*ldc+jp*panelWidth+16], ldc)
			}
		}
	}
	for ; i < m; i++ {
		ar := a[i*lda : i*lda+k]
		for jp := range panels {
			panel := b.p[jp*k*panelWidth : (jp+1)*k*panelWidth]
			cr := (*[panelWidth]float32)(c[i*ldc+jp*panelWidth:])
			for r, av := range ar {
				if av == 0 {
					continue
				}
				br := (*[panelWidth]float32)(panel[r*panelWidth:])
				for j := range cr {
					cr[j] += av * br[j]
				}
			}
		}
	}
}

// tailPool holds the padded 8-row blocks of gemmTail8.
var tailPool = sync.Pool{New: func() any { return new([]float32) }}

// gemmTail8 runs the last rows (fewer than 8) through the 8-row kernel by copying them
// into a zero-padded block: cheaper than the scalar loop as soon as k is more than a few.
func gemmTail8(rows int, a []float32, lda int, b *pmat, c []float32, ldc int) {
	k, n := b.k, b.n
	bp := tailPool.Get().(*[]float32)
	buf := grow(*bp, 8*(k+n))
	ta, tc := buf[:8*k], buf[8*k:]
	clear(buf)
	for r := range rows {
		copy(ta[r*k:(r+1)*k], a[r*lda:r*lda+k])
		copy(tc[r*n:(r+1)*n], c[r*ldc:r*ldc+n])
	}
	for jp := range n / panelWidth {
		kernel8x32p(k, &ta[0], k, &b.p[jp*k*panelWidth], &tc[jp*panelWidth], n)
	}
	for r := range rows {
		copy(c[r*ldc:r*ldc+n], tc[r*n:(r+1)*n])
	}
	*bp = buf
	tailPool.Put(bp)
}
