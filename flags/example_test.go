package flags_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/flags"
)

// exampleSnapshot is what a control service would stream: acme's webhooks
// are in shadow on the new pipeline, globex has moved to it.
const exampleSnapshot = `{"version":7,"builtAt":"2026-03-01T12:00:00Z",` +
	`"migrations":{"psa-webhooks-v2":{"seq":1,"reverted":false,"stages":{"acme":"shadow","globex":"new"}}},` +
	`"partners":{"acme":{"name":"Acme","psa":"connectwise"},"globex":{"name":"Globex","psa":"autotask"}}}`

// startExampleControl stands in for `switchback serve`: it streams one
// snapshot and then holds the stream open until the provider leaves.
func startExampleControl() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/snapshot/stream" || r.Header.Get("Authorization") != "Bearer router-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 7\nevent: snapshot\ndata: %s\n\n", exampleSnapshot)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
}

// A router evaluates the migration flag for each webhook: the value is the
// pipeline that applies the event, the metadata the one that runs in
// shadow. The default, "legacy", is what the router gets if anything goes
// wrong.
func Example() {
	control := startExampleControl()
	defer control.Close()

	provider, err := flags.NewProvider(flags.Options{
		URL:   control.URL,
		Token: "router-token",
		// In production, also: RouterID, so the control service knows
		// which version each router holds, and SnapshotFile, so a router
		// restarted while the control service is down routes as before.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	api := isolated.NewAPI() // or openfeature.SetProviderAndWait for the global API
	defer func() { _ = api.Shutdown(ctx) }()
	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := api.SetProviderAndWait(initCtx, provider); err != nil {
		fmt.Println(err)
		return
	}
	client := api.NewClient()

	for _, partner := range []string{"acme", "globex", "initech"} {
		evalCtx := openfeature.NewEvaluationContext(partner, map[string]any{"eventType": "ticket"})
		d, _ := client.StringValueDetails(ctx, "psa-webhooks-v2", "legacy", evalCtx)
		shadow, _ := d.FlagMetadata.GetString("shadow")
		fmt.Printf("%s: apply with %s, shadow %q (stage %s, %s)\n", partner, d.Value, shadow, d.Variant, d.Reason)
	}
	// Output:
	// acme: apply with legacy, shadow "new" (stage shadow, TARGETING_MATCH)
	// globex: apply with new, shadow "legacy" (stage new, TARGETING_MATCH)
	// initech: apply with legacy, shadow "" (stage legacy, DEFAULT)
}

// Resolve is the in-process fast path, for code that wants no OpenFeature
// client in the way: the same answers, without allocating.
func ExampleProvider_Resolve() {
	control := startExampleControl()
	defer control.Close()

	provider, err := flags.NewProvider(flags.Options{URL: control.URL, Token: "router-token", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Without an OpenFeature API, the caller starts and stops the sync.
	if err := provider.Init(openfeature.EvaluationContext{}); err != nil {
		fmt.Println(err)
		return
	}
	defer provider.Shutdown()

	r := provider.Resolve("psa-webhooks-v2", "globex")
	fmt.Println(r.Value, r.Shadow, r.Reason, r.Version)
	r = provider.Resolve("no-such-migration", "globex")
	fmt.Println(r.Value, r.Reason, r.ErrorCode)
	// Output:
	// new legacy TARGETING_MATCH 7
	// legacy ERROR FLAG_NOT_FOUND
}

// Before its first snapshot the provider answers the caller's default with
// PROVIDER_NOT_READY: a router that has never synced sends everything to
// the legacy pipeline.
func ExampleProvider_StringEvaluation_notReady() {
	provider, err := flags.NewProvider(flags.Options{URL: "http://127.0.0.1:1", Token: "router-token"})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := provider.StringEvaluation(context.Background(), "psa-webhooks-v2", "legacy",
		openfeature.FlattenedContext{openfeature.TargetingKey: "acme"})
	fmt.Println(d.Value, d.Reason, d.ResolutionDetail().ErrorCode)
	// Output: legacy ERROR PROVIDER_NOT_READY
}
