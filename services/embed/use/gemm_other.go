//go:build !amd64

package use

const useAsm = false

func kernel4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int) {
	panic("use: no assembly kernel on this architecture")
}
