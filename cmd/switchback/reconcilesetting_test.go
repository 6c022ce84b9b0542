package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
)

// Where no reconciliation could run (an etcd store, even of one replica,
// or no embedded router), a migration's reconcile setting is refused with
// the reason, rather than accepted and then refused at every period; a
// migration without one, or with it off, is accepted. With bbolt and the
// embedded router, the setting is accepted.
func TestReconcileSettingRefusedWhereNoReconciliationRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	e, err := etcdtest.StartOne(t.TempDir())
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}
	pipelines := map[string]any{"legacy": map[string]string{"url": "http://127.0.0.1:9/legacy"}, "new": map[string]string{"url": "http://127.0.0.1:9/new"}}
	on := map[string]any{"pipelines": pipelines, "reconcile": map[string]any{"afterRevert": true, "every": "1h"}}
	for _, tc := range []struct {
		name string
		args []string
		why  string // "": the setting is accepted
	}{
		{"etcd", []string{"--store", "etcd://" + e.Clients[0].Addr().String(), "--secrets-key-file", keyFile, "--data", t.TempDir()}, "its store is shared (etcd)"},
		{"no ingress", []string{"--data", t.TempDir(), "--no-ingress"}, "--no-ingress"},
		{"bbolt and the embedded router", []string{"--data", t.TempDir()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServe(t, env, append(tc.args, "--log-level", "error")...)
			var answer struct {
				Error struct{ Code, Message string }
			}
			code := call(t, "PUT", s.url+"/v1/migrations/with-reconcile", crashAdmin, on, &answer)
			switch {
			case tc.why == "" && code != 201:
				t.Errorf("PUT with reconcile = %d %+v, want 201", code, answer)
			case tc.why != "" && (code != 409 || answer.Error.Code != "conflict" ||
				!strings.Contains(answer.Error.Message, "cannot reconcile") || !strings.Contains(answer.Error.Message, tc.why)):
				t.Errorf("PUT with reconcile = %d %+v, want 409 conflict saying it cannot reconcile: %s", code, answer, tc.why)
			}
			for name, body := range map[string]map[string]any{
				"without reconcile":  {"pipelines": pipelines},
				"with reconcile off": {"pipelines": pipelines, "reconcile": map[string]any{"afterRevert": false, "every": "0s"}},
			} {
				if code := call(t, "PUT", s.url+"/v1/migrations/"+strings.ReplaceAll(name, " ", "-"), crashAdmin, body, nil); code != 201 {
					t.Errorf("PUT %s = %d, want 201", name, code)
				}
			}
		})
	}
}
