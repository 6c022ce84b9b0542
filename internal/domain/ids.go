package domain

// ValidID reports whether s is a valid id of a partner, migration, cohort or
// token: [a-z0-9][a-z0-9._-]{0,62}.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CheckID returns an invalid_argument error naming what when s is not a valid id.
func CheckID(what, s string) error {
	if !ValidID(s) {
		return Errorf(CodeInvalid, "%s id %q is invalid: use 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", what, s)
	}
	return nil
}
