//go:build !amd64

package use

// Variables, not constants, so the tests can switch kernels on every architecture.
var (
	useAsm    = false
	useAVX512 = false
)

func kernel4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	panic("use: no assembly kernel on this architecture")
}

func kernel8x32p(k int, a *float32, lda int, b *float32, c *float32, ldc int) {
	panic("use: no assembly kernel on this architecture")
}
