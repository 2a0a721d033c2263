// Package textlang tells Russian from English text the one way every read model does, so
// that Postgres's search configuration and Qdrant's lang payload agree on every post.
package textlang

// Of is "ru" when at least 30 % of the text's Latin (A–Z) and Cyrillic (U+0400–U+04FF)
// letters are Cyrillic, "en" when it has such letters otherwise, and "" when it has fewer
// than 3 of them. (Postgres's SQL function search_config, migrations/00002, is the same rule;
// a test of projections/postgres keeps the two equal.)
func Of(text string) string {
	var cyr, lat int
	for _, r := range text {
		switch {
		case r >= 0x400 && r <= 0x4ff:
			cyr++
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			lat++
		}
	}
	switch {
	case cyr+lat < 3:
		return ""
	case cyr*10 >= (cyr+lat)*3:
		return "ru"
	}
	return "en"
}
