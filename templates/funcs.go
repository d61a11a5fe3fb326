package templates

import "strings"

// Funcs are the helper functions every page, email and message template
// may call, beside those a side adds of its own (dates on pages):
//
//	plural N ONE MANY   ONE when N is 1, else MANY
//	list NAMES AND      "a", "a AND b", "a, b AND c"
//	join NAMES SEP      the names with SEP between each two
func Funcs() map[string]any {
	return map[string]any{"plural": plural, "list": list, "join": strings.Join}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func list(names []string, and string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + and + " " + names[len(names)-1]
}
