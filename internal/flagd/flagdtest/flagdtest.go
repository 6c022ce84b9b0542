// Package flagdtest holds flagd's own evaluator (github.com/open-feature/flagd/core)
// for tests: it loads flag configurations under flagd's schemas and
// answers them as flagd's providers and daemon do.
package flagdtest

import (
	"context"
	"strings"
	"testing"

	schema "github.com/open-feature/flagd-schemas/json"
	"github.com/open-feature/flagd/core/pkg/evaluator"
	"github.com/open-feature/flagd/core/pkg/logger"
	"github.com/open-feature/flagd/core/pkg/store"
	"github.com/open-feature/flagd/core/pkg/sync"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/flagd"
)

// Evaluator is flagd core's JSON evaluator with its own flag store.
type Evaluator struct {
	json *evaluator.JSON
	logs *observer.ObservedLogs
}

// New returns an evaluator with no flags.
func New(tb testing.TB) *Evaluator {
	tb.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	return &Evaluator{json: evaluator.NewJSON(logger.NewLogger(zap.New(core), false), store.NewFlags()), logs: logs}
}

// Load replaces the evaluator's flags with the configuration doc, as a
// flagd provider does with each sync message. It fails tb if doc does
// not validate against flagd's schemas (flagd itself only logs a warning),
// if flagd logs a warning, or if it refuses doc.
func (e *Evaluator) Load(tb testing.TB, doc []byte) {
	tb.Helper()
	Validate(tb, doc)
	if err := e.Set(doc); err != nil {
		tb.Fatalf("flagd refused the configuration: %v", err)
	}
	for _, l := range e.logs.TakeAll() {
		tb.Errorf("flagd warned while loading the configuration: %s %v", l.Message, l.ContextMap())
	}
}

// Set gives doc to flagd as a sync message, without Load's checks: what a
// flagd provider does with each configuration it receives.
func (e *Evaluator) Set(doc []byte) error {
	return e.json.SetState(sync.DataSync{FlagData: string(doc), Source: "switchback"})
}

// String evaluates a string flag for targetingKey ("" for none) as
// flagd's in-process providers do, and returns the value, or the
// variant-less zero value and flagd's error.
func (e *Evaluator) String(flag, targetingKey string) (value, reason string, err error) {
	ctx := map[string]any{}
	if targetingKey != "" {
		ctx["targetingKey"] = targetingKey
	}
	value, _, reason, _, err = e.json.ResolveStringValue(context.Background(), "", flag, ctx)
	return value, reason, err
}

// Validate fails tb if doc does not validate against flagd's flag
// schema (flagd.json of open-feature/flagd-schemas, as flagd compiles it,
// with flags.json and targeting.json).
func Validate(tb testing.TB, doc []byte) {
	tb.Helper()
	c := jsonschema.NewCompiler()
	for url, text := range map[string]string{
		"https://flagd.dev/schema/v0/flagd.json":     schema.FlagdSchema,
		"https://flagd.dev/schema/v0/flags.json":     schema.FlagSchema,
		"https://flagd.dev/schema/v0/targeting.json": schema.TargetingSchema,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
		if err != nil {
			tb.Fatal(err)
		}
		if err := c.AddResource(url, v); err != nil {
			tb.Fatal(err)
		}
	}
	for _, url := range []string{"https://flagd.dev/schema/v0/flagd.json", "https://flagd.dev/schema/v0/flags.json"} {
		sch, err := c.Compile(url)
		if err != nil {
			tb.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
		if err != nil {
			tb.Fatalf("the configuration is not JSON: %v", err)
		}
		if err := sch.Validate(inst); err != nil {
			tb.Fatalf("the configuration does not validate against %s: %v", url, err)
		}
	}
}

// Want returns what flags.Snapshot.Evaluate answers for the migration and
// the partner, as the flagd flags carry it: the value of the flag KEY,
// and the shadow pipeline of KEY:shadow (flagd.None for "").
func Want(s *flags.Snapshot, migration, partner string) (value, shadow string) {
	r := s.Evaluate(migration, partner)
	if r.Shadow == "" {
		return r.Value, flagd.None
	}
	return r.Value, r.Shadow
}
