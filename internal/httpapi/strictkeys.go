package httpapi

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/switchbackhq/switchback/internal/domain"
)

// checkKeys returns an error naming the first object key in data that is
// not spelled exactly as a field of t. encoding/json matches field names
// case-insensitively, so without this {"Name": …} would pass for "name"
// although the contract makes unknown fields an error.
//
// It also names the first string that is not valid UTF-8, which
// encoding/json would turn silently into U+FFFD, and the first time that
// does not parse, whose error from encoding/json names no field.
func checkKeys(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		if len(data) > 0 && data[0] == '"' && (!utf8.Valid(data) || loneSurrogate(data)) {
			return domain.Errorf(domain.CodeInvalid, "field %q is not valid UTF-8 text", strings.TrimPrefix(path, "."))
		}
	case reflect.Struct:
		if t == timeType {
			var tm time.Time
			if string(data) != "null" && json.Unmarshal(data, &tm) != nil {
				return domain.Errorf(domain.CodeInvalid, "field %q must be %s", strings.TrimPrefix(path, "."), rfc3339Example)
			}
			return nil
		}
		if t == reflect.TypeFor[json.RawMessage]() {
			return nil
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil // not an object: the decoder reports the type error
		}
		fields := jsonFields(t)
		for k, v := range obj {
			ft, ok := fields[k]
			if !ok {
				return domain.Errorf(domain.CodeInvalid, "unknown field %q%s: field names are case-sensitive; check the API reference", k, where(path))
			}
			if err := checkKeys(v, ft, path+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return nil
		}
		for _, v := range arr {
			if err := checkKeys(v, t.Elem(), path+"[]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func where(path string) string {
	if path == "" {
		return ""
	}
	return " in " + strings.TrimPrefix(path, ".")
}

// jsonFields maps the JSON names of t's fields, embedded ones included,
// to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// loneSurrogate reports whether the JSON string literal s escapes half of
// a UTF-16 surrogate pair ("\ud800" alone): valid JSON, but no character.
func loneSurrogate(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		i++ // the escaped character; a \\ is skipped whole
		r, ok := hexEscape(s, i)
		if !ok || !utf16.IsSurrogate(r) {
			continue
		}
		if r >= 0xdc00 { // a low half first
			return true
		}
		if lo, ok := hexEscape(s, i+6); !ok || lo < 0xdc00 || lo > 0xdfff || s[i+5] != '\\' {
			return true
		}
		i += 10 // past the pair's second \uXXXX
	}
	return false
}

// hexEscape returns the code unit of the \uXXXX escape whose u is at s[i].
func hexEscape(s []byte, i int) (rune, bool) {
	if i < 0 || i+5 > len(s) || s[i] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s[i+1:i+5]), 16, 16)
	return rune(n), err == nil
}
