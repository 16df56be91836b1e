package rehearsal

// IntOf lets the external tests read an int output (a JSON number after a crash and a
// resume, a Go int in the same process).
func IntOf(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return 0
}
