package notify

import (
	"net/http"
	"testing"
	"time"
)

// The wait doubles from Backoff up to MaxBackoff, drawn between half and
// all of it; a Retry-After makes it at least that, up to MaxRetryAfter.
func TestBackoff(t *testing.T) {
	n := New(Options{Backoff: time.Second, MaxBackoff: 8 * time.Second, MaxRetryAfter: time.Minute})
	for _, tt := range []struct {
		try        int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},
		{2, 0, time.Second, 2 * time.Second},
		{4, 0, 4 * time.Second, 8 * time.Second},
		{9, 0, 4 * time.Second, 8 * time.Second},
		{1, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		{1, time.Hour, time.Minute, time.Minute},
	} {
		for range 50 {
			if got := n.backoff(tt.try, tt.retryAfter); got < tt.lo || got > tt.hi {
				t.Fatalf("backoff(%d, %s) = %s, want within [%s, %s]", tt.try, tt.retryAfter, got, tt.lo, tt.hi)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	if got := retryAfter("120"); got != 2*time.Minute {
		t.Errorf("retryAfter(120) = %s", got)
	}
	if got := retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); got < 59*time.Minute || got > time.Hour {
		t.Errorf("retryAfter(an HTTP date an hour ahead) = %s", got)
	}
	for _, v := range []string{"", "soon", "-5"} {
		if got := retryAfter(v); got != 0 {
			t.Errorf("retryAfter(%q) = %s, want 0", v, got)
		}
	}
}
