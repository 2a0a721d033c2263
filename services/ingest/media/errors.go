package media

import "errors"

var (
	// ErrTooLarge is returned by Put for a file over the size cap. It is permanent: the
	// caller records the media as skipped instead of retrying.
	ErrTooLarge = errors.New("media: file is larger than the size cap")
	// ErrNotFound is returned for an object that is not in the store.
	ErrNotFound = errors.New("media: object not found")
	// ErrBadKey is returned for a key that is not a lowercase hex SHA-256.
	ErrBadKey = errors.New("media: key is not a hex sha256")
)
