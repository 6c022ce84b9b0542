package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/flags"
)

// The OpenFeature Remote Evaluation Protocol (OFREP), core endpoints. Its
// errors have their own shape, {key, errorCode, errorDetails}, not the
// API's error envelope.

type ofrepSuccess struct {
	Key      string         `json:"key"`
	Value    string         `json:"value"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant,omitempty"`
	Metadata map[string]any `json:"metadata"`
}

type ofrepFailure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
	// Value is the safe answer: clients that read it despite the error
	// still route to legacy.
	Value string `json:"value"`
}

// errorDetails explains each OpenFeature error code the evaluation returns.
var errorDetails = map[string]string{
	flags.ErrFlagNotFound:        "no migration has this key",
	flags.ErrTargetingKeyMissing: "context.targetingKey must name the partner",
	flags.ErrParse:               "the snapshot holds a stage this server cannot read",
	flags.ErrProviderNotReady:    "the snapshot is not built yet",
}

// ofrepContext reads the request's context and its targeting key, "" when
// there is none: the evaluation then answers TARGETING_KEY_MISSING, after
// FLAG_NOT_FOUND, in the same order as every other path. It returns an
// OFREP error code and details when the body is unusable.
func ofrepContext(w http.ResponseWriter, r *http.Request) (targetingKey, code, details string, status int) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", "PARSE_ERROR", "the body is larger than 1 MiB", http.StatusRequestEntityTooLarge
		}
		return "", "PARSE_ERROR", "the body could not be read", http.StatusBadRequest
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return "", "PARSE_ERROR", "the body is not a JSON object", http.StatusBadRequest
		}
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return "", "", "", 0
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(req.Context, &ctx); err != nil {
		return "", "INVALID_CONTEXT", "context must be a JSON object", http.StatusBadRequest
	}
	raw, ok := ctx["targetingKey"]
	if !ok || string(raw) == "null" {
		return "", "", "", 0
	}
	if err := json.Unmarshal(raw, &targetingKey); err != nil {
		return "", "INVALID_CONTEXT", "context.targetingKey must be a string", http.StatusBadRequest
	}
	return targetingKey, "", "", 0
}

func ofrepMetadata(res flags.Resolution) map[string]any {
	return map[string]any{"shadow": res.Shadow, "stage": res.Stage, "snapshotVersion": res.Version}
}

// ofrepEvaluate answers one flag.
func (a *API) ofrepEvaluate(w http.ResponseWriter, r *http.Request, _ principal) error {
	key := mux.Vars(r)["key"]
	tk, code, details, status := ofrepContext(w, r)
	if code != "" {
		writeJSON(w, status, ofrepFailure{Key: key, ErrorCode: code, ErrorDetails: details, Value: flags.Legacy})
		return nil
	}
	res := a.svc.State().Flags().Evaluate(key, tk)
	switch res.ErrorCode {
	case "":
		writeJSON(w, http.StatusOK, ofrepSuccess{Key: key, Value: res.Value, Reason: res.Reason, Variant: res.Variant, Metadata: ofrepMetadata(res)})
	case flags.ErrFlagNotFound:
		writeJSON(w, http.StatusNotFound, ofrepFailure{Key: key, ErrorCode: res.ErrorCode, ErrorDetails: errorDetails[res.ErrorCode], Value: flags.Legacy})
	default:
		writeJSON(w, http.StatusBadRequest, ofrepFailure{Key: key, ErrorCode: res.ErrorCode, ErrorDetails: errorDetails[res.ErrorCode], Value: flags.Legacy})
	}
	return nil
}

// ofrepBulk answers every flag, with a strong ETag over the answer so a
// client polling with If-None-Match gets 304 until something it would see
// changes.
func (a *API) ofrepBulk(w http.ResponseWriter, r *http.Request, _ principal) error {
	tk, code, details, status := ofrepContext(w, r)
	if code == "" && tk == "" {
		code, details, status = flags.ErrTargetingKeyMissing, errorDetails[flags.ErrTargetingKeyMissing], http.StatusBadRequest
	}
	if code != "" {
		writeJSON(w, status, ofrepFailure{ErrorCode: code, ErrorDetails: details, Value: flags.Legacy})
		return nil
	}
	st := a.svc.State()
	out := struct {
		Flags []any `json:"flags"`
	}{Flags: make([]any, 0, len(st.Migrations))}
	for _, key := range st.MigrationKeys() {
		res := st.Flags().Evaluate(key, tk)
		if res.ErrorCode != "" {
			out.Flags = append(out.Flags, ofrepFailure{Key: key, ErrorCode: res.ErrorCode, ErrorDetails: errorDetails[res.ErrorCode], Value: flags.Legacy})
			continue
		}
		out.Flags = append(out.Flags, ofrepSuccess{Key: key, Value: res.Value, Reason: res.Reason, Variant: res.Variant, Metadata: ofrepMetadata(res)})
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
	return nil
}

// etagMatch reports whether an If-None-Match header names etag, with the
// weak comparison that RFC 9110 prescribes for If-None-Match.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
