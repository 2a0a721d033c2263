//go:build !unix

package doctor

import "errors"

func diskSpace(string) (uint64, uint64, error) {
	return 0, 0, errors.New("not supported on this platform")
}
