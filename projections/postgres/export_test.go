package postgres

// SetMaxCachedKeys sets the bound of the bulk mode state cache and returns a function that
// restores it.
func SetMaxCachedKeys(n int) (restore func()) {
	old := maxCachedKeys
	maxCachedKeys = n
	return func() { maxCachedKeys = old }
}

// SearchFold and SearchConfig are the Go forms of the SQL functions search_norm and
// search_config.
var (
	SearchFold   = searchFold
	SearchConfig = searchConfig
)
