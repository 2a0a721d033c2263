package postgres

// SetMaxCachedKeys sets the bound of the bulk mode state cache and returns a function that
// restores it.
func SetMaxCachedKeys(n int) (restore func()) {
	old := maxCachedKeys
	maxCachedKeys = n
	return func() { maxCachedKeys = old }
}

// SetCopyMinRows sets the fewest new rows of a table loaded with COPY and returns a function
// that restores it.
func SetCopyMinRows(n int) (restore func()) {
	old := copyMinRows
	copyMinRows = n
	return func() { copyMinRows = old }
}

// SearchFold and SearchConfig are the Go forms of the SQL functions search_norm and
// search_config.
var (
	SearchFold   = searchFold
	SearchConfig = searchConfig
)
