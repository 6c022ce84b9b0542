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

// The OpenFeature Remote Evaluation Protocol (OFREP), core endpoints, as
// the OFREP OpenAPI document 0.3.0 (open-feature/protocol, kept in
// testdata/ofrep) describes them: every answer validates against it. Its
// errors have their own shape, {key, errorCode, errorDetails}, not the
// API's error envelope; authentication failures keep the envelope (the
// document describes no body for 401 and 403).

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

// OFREP's names for what the flags package has no name for, or a name
// that the document does not allow.
const (
	ofrepReasonStatic   = "STATIC"
	ofrepInvalidContext = "INVALID_CONTEXT"
	ofrepGeneral        = "GENERAL"
)

// ofrepReason is the evaluation's reason as the document allows it. Its
// enumeration (STATIC, TARGETING_MATCH, SPLIT, DISABLED, UNKNOWN) lacks
// OpenFeature's DEFAULT, which the flags package answers for a partner
// with no stage record: the flag's one fixed value, legacy, that no
// targeting chose. STATIC says the same ("no dynamic evaluation"); UNKNOWN
// would say less. The flags package keeps DEFAULT for its own OpenFeature
// users, where OpenFeature defines it.
func ofrepReason(reason string) string {
	if reason == flags.ReasonDefault {
		return ofrepReasonStatic
	}
	return reason
}

// ofrepFailureOf is the failure answer of an evaluation error, and its
// status when it is the answer of a single flag: the document's codes keep
// theirs; any other (PROVIDER_NOT_READY, a code a later flags package may
// add) is the server's trouble, not the request's, and answers GENERAL,
// with 500 alone.
func ofrepFailureOf(key string, res flags.Resolution) (ofrepFailure, int) {
	f := ofrepFailure{Key: key, ErrorCode: res.ErrorCode, ErrorDetails: errorDetails[res.ErrorCode], Value: flags.Legacy}
	switch res.ErrorCode {
	case flags.ErrFlagNotFound:
		return f, http.StatusNotFound
	case flags.ErrTargetingKeyMissing, flags.ErrParse:
		return f, http.StatusBadRequest
	}
	f.ErrorCode = ofrepGeneral
	if f.ErrorDetails == "" {
		f.ErrorDetails = "the evaluation failed with " + res.ErrorCode
	}
	return f, http.StatusInternalServerError
}

// ofrepItem is one flag's answer: a success, or a failure.
func ofrepItem(key string, res flags.Resolution) any {
	if res.ErrorCode == "" {
		return ofrepSuccess{Key: key, Value: res.Value, Reason: ofrepReason(res.Reason), Variant: res.Variant, Metadata: ofrepMetadata(res)}
	}
	f, _ := ofrepFailureOf(key, res)
	return f
}

// writeOFREP answers one flag's evaluation.
func writeOFREP(w http.ResponseWriter, key string, res flags.Resolution) {
	if res.ErrorCode == "" {
		writeJSON(w, http.StatusOK, ofrepItem(key, res))
		return
	}
	f, status := ofrepFailureOf(key, res)
	writeJSON(w, status, f)
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
			// 400, not 413: the document declares no 413, and a body
			// too large to read is one the server cannot parse.
			return "", flags.ErrParse, "the body is larger than 1 MiB", http.StatusBadRequest
		}
		return "", flags.ErrParse, "the body could not be read", http.StatusBadRequest
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return "", flags.ErrParse, "the body is not a JSON object", http.StatusBadRequest
		}
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return "", "", "", 0
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(req.Context, &ctx); err != nil {
		return "", ofrepInvalidContext, "context must be a JSON object", http.StatusBadRequest
	}
	raw, ok := ctx["targetingKey"]
	if !ok || string(raw) == "null" {
		return "", "", "", 0
	}
	if err := json.Unmarshal(raw, &targetingKey); err != nil {
		return "", ofrepInvalidContext, "context.targetingKey must be a string", http.StatusBadRequest
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
	writeOFREP(w, key, a.svc.State().Flags().Evaluate(key, tk))
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
		out.Flags = append(out.Flags, ofrepItem(key, st.Flags().Evaluate(key, tk)))
	}
	body, err := json.Marshal(out)
	if err != nil {
		// The document's 500 shape, not the API's envelope.
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, ofrepFailure{ErrorCode: ofrepGeneral, ErrorDetails: "the answer could not be encoded", Value: flags.Legacy})
		return nil
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
