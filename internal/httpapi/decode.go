package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// maxBody caps every request body.
const maxBody = 1 << 20

// decode reads r's JSON body into v: one object, no unknown fields, at most
// maxBody bytes. An empty body is accepted as {} only when optional is set.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	if r.ContentLength == 0 && optional {
		var probe [1]byte
		if n, _ := body.Read(probe[:]); n == 0 {
			return nil
		}
		return domain.Errorf(domain.CodeInvalid, "the body is shorter than Content-Length says")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || r.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &domain.Error{Code: domain.CodeUnsupportedMedia, Message: "send the body as Content-Type: application/json"}
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return decodeError(err, data, nil)
	}
	// encoding/json takes null for an empty object and names a Go type for
	// any other value that is not an object: say what is wanted instead.
	if tok, err := json.NewDecoder(bytes.NewReader(data)).Token(); err == nil && tok != json.Delim('{') {
		return domain.Errorf(domain.CodeInvalid, "the body must be a JSON object, not %s", describeToken(tok))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, data, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.CodeInvalid, "the body must hold a single JSON object")
	}
	return checkKeys(data, reflect.TypeOf(v), "")
}

// decodeError turns an error of reading or decoding the body into a
// sentence that names the field at fault and never a Go type. t is the
// type decoded into, nil when reading failed.
func decodeError(err error, data []byte, t reflect.Type) error {
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		domainErr *domain.Error
		maxBodyKB = maxBody >> 10
	)
	switch {
	case errors.As(err, &tooBig):
		return &domain.Error{Code: domain.CodeTooLarge, Message: fmt.Sprintf("the body is larger than %d KiB", maxBodyKB)}
	case errors.As(err, &syntax):
		return domain.Errorf(domain.CodeInvalid, "the body is not valid JSON: %s at byte %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		return typeError(typeErr, t)
	case errors.Is(err, io.EOF):
		return domain.Errorf(domain.CodeInvalid, "the body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Errorf(domain.CodeInvalid, "the body is not valid JSON: it ends too early")
	// encoding/json has no typed error for unknown fields; its text is stable.
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return domain.Errorf(domain.CodeInvalid, "unknown field %s: check the field names in the API reference", strings.TrimPrefix(err.Error(), "json: unknown field "))
	// A field's own UnmarshalJSON that speaks the domain's words (a
	// duration of a migration's reconcile setting) names its field itself.
	case errors.As(err, &domainErr):
		return domainErr
	}
	// A field's own UnmarshalJSON failed (a time that does not parse) and
	// its error names no field: find the field by walking the body.
	if t != nil {
		if err := checkKeys(data, t, ""); err != nil {
			return err
		}
	}
	return domain.Errorf(domain.CodeInvalid, "the body could not be read as JSON")
}

// typeError says which field holds a value of the wrong JSON type, and
// what the field must hold, in JSON's words rather than Go's.
func typeError(e *json.UnmarshalTypeError, t reflect.Type) error {
	if e.Field == "" {
		return domain.Errorf(domain.CodeInvalid, "the body must be a JSON object, not %s", describeValue(e.Value))
	}
	field, declared := jsonPath(t, e.Field)
	want := describeType(e.Type)
	if n, isNumber := strings.CutPrefix(e.Value, "number "); isNumber && isInteger(e.Type) {
		if !strings.ContainsAny(n, ".eE") { // whole, so out of range
			want = fmt.Sprintf("an integer from %s to %s", intMin(e.Type), intMax(e.Type))
		}
	}
	if declared != nil && (declared.Kind() == reflect.Slice || declared.Kind() == reflect.Array) && declared != e.Type {
		return domain.Errorf(domain.CodeInvalid, "each item of field %q must be %s, not %s", field, want, describeValue(e.Value))
	}
	return domain.Errorf(domain.CodeInvalid, "field %q must be %s, not %s", field, want, describeValue(e.Value))
}

// jsonPath rewrites encoding/json's path of a field, which names embedded
// structs by their Go names ("ReplayRequest.partners"), as the client wrote
// it ("partners"), and returns the declared type of the field, or nil when
// the path cannot be followed.
func jsonPath(t reflect.Type, goPath string) (string, reflect.Type) {
	var out []string
	for _, seg := range strings.Split(goPath, ".") {
		t = structOf(t)
		if t == nil {
			out = append(out, seg)
			continue
		}
		if ft, ok := jsonFields(t)[seg]; ok {
			out = append(out, seg)
			t = ft
			continue
		}
		if sf, ok := t.FieldByName(seg); ok && sf.Anonymous {
			t = sf.Type
			continue
		}
		out = append(out, seg)
		t = nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.Join(out, "."), t
}

// structOf returns the struct that t holds, through pointers, slices and
// maps, or nil.
func structOf(t reflect.Type) reflect.Type {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			return t
		default:
			return nil
		}
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// rfc3339Example is what a time field must look like.
const rfc3339Example = "an RFC 3339 time such as 2026-01-02T15:04:05Z"

// describeType names what a value of Go type t is in JSON.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	if t == timeType {
		return rfc3339Example
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON type"
}

// describeValue names the JSON value of an UnmarshalTypeError: "array",
// "number", "number 1.5", "bool"...
func describeValue(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return "the number " + n
	}
	switch v {
	case "array", "object":
		return "an " + v
	case "string", "number":
		return "a " + v
	case "bool":
		return "true or false"
	}
	return v
}

// describeToken names the first JSON token of a body that is not an object.
func describeToken(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case bool:
		return "true or false"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	}
	if tok == json.Delim('[') {
		return "an array"
	}
	return "another JSON value"
}

func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func intMin(t reflect.Type) string {
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
		return "0"
	}
	return strconv.FormatInt(-1<<(t.Bits()-1), 10)
}

func intMax(t reflect.Type) string {
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
		return strconv.FormatUint(1<<t.Bits()-1, 10)
	}
	return strconv.FormatInt(1<<(t.Bits()-1)-1, 10)
}
