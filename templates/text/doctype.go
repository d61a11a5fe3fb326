package text

import "strings"

// documentTypeAcronyms are the words of GOV.UK document types written in
// capitals in their labels (foi_release is "FOI release").
var documentTypeAcronyms = map[string]string{
	"aaib": "AAIB", "cma": "CMA", "dfid": "DFID", "esi": "ESI", "eu": "EU", "foi": "FOI", "hmrc": "HMRC",
	"maib": "MAIB", "nhs": "NHS", "raib": "RAIB", "uk": "UK", "utaac": "UTAAC",
}

// DocumentTypeLabel turns a document type as GOV.UK names it
// (press_release, news_story, foi_release) into the label GOV.UK shows
// for it (Press release, News story, FOI release): words separated by
// underscores, the first capitalised, acronyms in capitals. The pull side
// gives it to readers as a category; the search page offers it as a
// filter.
func DocumentTypeLabel(docType string) string {
	words := strings.FieldsFunc(strings.ToLower(docType), func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i, w := range words {
		if a, ok := documentTypeAcronyms[w]; ok {
			words[i] = a
		} else if i == 0 {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}
