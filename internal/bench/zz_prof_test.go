package bench

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestZZIngressProfile(t *testing.T) {
	if os.Getenv("ZZPROF") == "" {
		t.Skip()
	}
	go func() {
		for _, d := range []time.Duration{2 * time.Second, 2 * time.Second} {
			time.Sleep(d)
			f, _ := os.Create("/tmp/gr-" + time.Now().Format("150405") + ".txt")
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}()
	res, err := Ingress(context.Background(), IngressConfig{Duration: 5 * time.Second})
	t.Logf("%+v %v", res, err)
}
