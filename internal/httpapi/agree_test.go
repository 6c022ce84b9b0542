package httpapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// flagsClient is the in-process flags provider, synced over the snapshot
// stream and registered in an isolated OpenFeature API.
func flagsClient(t *testing.T, e *streamEnv) (*openfeature.Client, *flags.Provider) {
	t.Helper()
	p, err := flags.NewProvider(flags.Options{URL: e.srv.URL, Token: e.viewer, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return api.NewClient(), p
}

// waitSynced waits until the provider holds the service's current version.
func waitSynced(t *testing.T, e *streamEnv, p *flags.Provider) {
	t.Helper()
	want := e.svc.State().Version
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := p.Snapshot(); s != nil && s.Version == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider did not reach version %d", want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Every path that answers a flag, the in-process provider through the
// OpenFeature SDK, POST /v1/evaluate and OFREP through the official OFREP
// provider, gives the same answer for random states and contexts.
func TestEvaluationPathsAgree(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d (rerun a failure by fixing it here)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	ctx := context.Background()
	stages := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}

	for world := range 8 {
		e := newStreamEnv(t)
		c := control.Change{Actor: "property", Reason: "random world"}
		var keys, partners []string
		for i := range 1 + rng.IntN(3) {
			key := fmt.Sprintf("mig-%d", i)
			m := domain.Migration{Key: key, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
				Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/l"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/n"}}}
			if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, key)
		}
		for i := range 1 + rng.IntN(12) {
			id := fmt.Sprintf("p%d", i)
			e.addPartner(t, id, "s")
			partners = append(partners, id)
			for _, key := range keys {
				target := stages[rng.IntN(len(stages))]
				for st := domain.StageLegacy; st != target; {
					st, _ = st.Next()
					if _, err := e.svc.SetStage(ctx, c, key, id, st, true); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for _, key := range keys {
			if rng.IntN(3) == 0 {
				if _, err := e.svc.Revert(ctx, c, key); err != nil {
					t.Fatal(err)
				}
			}
		}
		inProcess, p := flagsClient(t, e)
		waitSynced(t, e, p)
		remote := ofrepClient(t, e, ofrep.WithBearerToken(e.viewer))

		for range 25 {
			flag := keys[rng.IntN(len(keys))]
			if rng.IntN(8) == 0 {
				flag = "unknown-migration"
			}
			partner := partners[rng.IntN(len(partners))]
			switch rng.IntN(10) {
			case 0:
				partner = "stranger"
			case 1:
				partner = ""
			}
			ec := openfeature.NewEvaluationContext(partner, map[string]any{"eventType": "ticket"})
			d, _ := inProcess.StringValueDetails(ctx, flag, "legacy", ec)
			viaProvider := fromDetails(d)
			viaAPI := evaluateAPI(t, e, flag, partner)
			d, _ = remote.StringValueDetails(ctx, flag, "legacy", ec)
			viaOFREP := fromDetails(d)
			if viaAPI.ErrorCode != "" {
				// The OFREP provider carries no metadata on errors.
				viaOFREP.Stage, viaOFREP.Shadow = viaAPI.Stage, viaAPI.Shadow
			}
			if viaProvider != viaAPI || viaOFREP != asOFREP(viaAPI) {
				t.Fatalf("world %d, flag %q, partner %q:\n in process %+v\n /v1/evaluate %+v\n OFREP %+v", world, flag, partner, viaProvider, viaAPI, viaOFREP)
			}
		}
	}
}
