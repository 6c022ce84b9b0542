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
	"strings"

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
			return &domain.Error{Code: codeUnsupportedMedia, Message: "send the body as Content-Type: application/json"}
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return decodeError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.CodeInvalid, "the body must hold a single JSON object")
	}
	return checkKeys(data, reflect.TypeOf(v), "")
}

func decodeError(err error) error {
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxBodyKB = maxBody >> 10
	)
	switch {
	case errors.As(err, &tooBig):
		return &domain.Error{Code: codeBodyTooLarge, Message: fmt.Sprintf("the body is larger than %d KiB", maxBodyKB)}
	case errors.As(err, &syntax):
		return domain.Errorf(domain.CodeInvalid, "the body is not valid JSON: %s at byte %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		return domain.Errorf(domain.CodeInvalid, "field %q must be a JSON %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.Is(err, io.EOF):
		return domain.Errorf(domain.CodeInvalid, "the body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Errorf(domain.CodeInvalid, "the body is not valid JSON: it ends too early")
	// encoding/json has no typed error for unknown fields; its text is stable.
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return domain.Errorf(domain.CodeInvalid, "unknown field %s: check the field names in the API reference", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return domain.Errorf(domain.CodeInvalid, "the body could not be read as JSON")
}
