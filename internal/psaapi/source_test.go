package psaapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every PSA: all the tickets changed in [since, until) across several
// pages, and nothing else; the filter sent is never narrower than the
// window.
func TestChangesPagesThroughTheWindow(t *testing.T) {
	for _, pc := range psaCases {
		t.Run(string(pc.psa), func(t *testing.T) {
			fk, cfg := pc.start(t, dataset(), faults{})
			var slept []time.Duration
			got, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), testPolicy(&slept)))
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			if g := ids(got); !slices.Equal(g, wantIDs) {
				t.Errorf("ids %v, want %v", g, wantIDs)
			}
			if len(got) != len(wantIDs) {
				t.Errorf("%d changes for %d tickets: reported twice", len(got), len(wantIDs))
			}
			if fk.requests < 3 {
				t.Errorf("%d data requests: the dataset should span several pages", fk.requests)
			}
			for _, c := range got {
				if c.Type != "ticket" || c.UpdatedAt.Location() != time.UTC || len(c.Data) == 0 {
					t.Errorf("change %+v: want type ticket, a UTC time and data", c)
				}
				if want := t0.Add(time.Duration(atoi(c.ID)) * time.Minute); c.ID != "2" && !c.UpdatedAt.Equal(want) {
					t.Errorf("ticket %s updatedAt %v, want %v", c.ID, c.UpdatedAt, want)
				}
			}
			if len(slept) != 0 {
				t.Errorf("slept %v without being asked to", slept)
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// Every PSA: a 429 with Retry-After is waited out and the request sent
// again; so is a 503 with an HTTP date.
func TestChangesHonoursRetryAfter(t *testing.T) {
	cases := []struct {
		name     string
		f        faults
		wantWait time.Duration
	}{
		{"429 seconds", faults{retryAfter: "1"}, time.Second},
		{"503 http date", faults{retryAfter: t0.Add(3*time.Hour + 7*time.Second).Format(http.TimeFormat), retryStatus: 503}, 7 * time.Second},
		{"503 without Retry-After", faults{retryAfter: " ", retryStatus: 503}, 250 * time.Millisecond},
	}
	for _, pc := range psaCases {
		for _, tc := range cases {
			t.Run(string(pc.psa)+"/"+tc.name, func(t *testing.T) {
				fk, cfg := pc.start(t, dataset(), tc.f)
				var slept []time.Duration
				got, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), testPolicy(&slept)))
				if err != nil {
					t.Fatalf("Changes: %v", err)
				}
				if g := ids(got); !slices.Equal(g, wantIDs) {
					t.Errorf("ids %v, want %v", g, wantIDs)
				}
				if !slices.Equal(slept, []time.Duration{tc.wantWait}) {
					t.Errorf("waited %v, want [%v]", slept, tc.wantWait)
				}
			})
		}
	}
}

// The same through New, with the real clock and sleep: Retry-After: 0.
func TestNewRetriesForReal(t *testing.T) {
	pc := psaCases[3]
	fk, cfg := pc.start(t, dataset(), faults{retryAfter: "0"})
	src, err := New(cfg, fk.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, context.Background(), src)
	if err != nil || !slices.Equal(ids(got), wantIDs) {
		t.Fatalf("Changes: %v, ids %v, want %v", err, ids(got), wantIDs)
	}
	if !fk.retried {
		t.Error("the fake never answered 429")
	}
}

// Every PSA: how each failure is reported.
func TestChangesErrors(t *testing.T) {
	cases := []struct {
		name string
		f    faults
		want error
		text string
	}{
		{"401", faults{status: 401}, ErrCredentialsRefused, "credentials refused by the PSA (HTTP 401)"},
		{"403", faults{status: 403}, ErrCredentialsRefused, "credentials refused by the PSA (HTTP 403)"},
		{"400", faults{status: 400}, ErrRefused, "request refused by the PSA (HTTP 400)"},
		{"always 503", faults{status: 503}, ErrUnavailable, "after 6 attempts"},
		{"malformed page", faults{malformedPage: 2}, ErrMalformed, "page 2"},
		{"cursor loop", faults{loop: true}, ErrCursorLoop, "does not advance"},
		// A transport error: net/http quotes the request's URL, whose path
		// and query may hold a token; only the scheme and host are left.
		{"unreachable", faults{unreachable: true}, ErrUnavailable, `"http://127.0.0.1:1": dial tcp 127.0.0.1:1`},
		{"hang up on page 2", faults{hangUpPage: 2}, ErrUnavailable, `"http://127.0.0.1:`},
	}
	for _, pc := range psaCases {
		for _, tc := range cases {
			t.Run(string(pc.psa)+"/"+tc.name, func(t *testing.T) {
				fk, cfg := pc.start(t, dataset(), tc.f)
				if tc.f.unreachable {
					base, _ := url.Parse(cfg.BaseURL)
					cfg.BaseURL = "http://127.0.0.1:1/feed/" + pathToken + base.Path
					cfg.Tenant = queryToken // HaloPSA's token request sends it as ?tenant=
				}
				var slept []time.Duration
				_, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), testPolicy(&slept)))
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), string(pc.psa)) {
					t.Errorf("err %q: want the PSA named and %q", err, tc.text)
				}
				noSecret(t, err.Error())
				for _, part := range []string{"?", "/feed", "since=", "cursor=", "page=", "page_no=", "paging=", "tenant=", "conditions=", "/auth/token"} {
					if strings.Contains(strings.ToLower(err.Error()), part) {
						t.Errorf("err %q quotes %q of the URL: want its scheme and host only", err, part)
					}
				}
				if tc.want == ErrUnavailable {
					if len(slept) != 5 {
						t.Errorf("waited %d times, want 5 (6 attempts)", len(slept))
					}
					// Without jitter, the backoff is half of 0.5 s doubling.
					for i, d := range slept {
						if want := (500 * time.Millisecond << i) / 2; d != want {
							t.Errorf("wait %d: %v, want %v", i+1, d, want)
						}
					}
				}
			})
		}
	}
}

func noSecret(t *testing.T, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%q holds the credential %q", s, sec)
		}
	}
}

// An error of fn ends Changes and is returned as it is.
func TestChangesReturnsCallbackError(t *testing.T) {
	stop := errors.New("enough")
	for _, pc := range psaCases {
		t.Run(string(pc.psa), func(t *testing.T) {
			fk, cfg := pc.start(t, dataset(), faults{})
			var slept []time.Duration
			n := 0
			err := open(t, cfg, fk.srv.Client(), testPolicy(&slept)).Changes(context.Background(), t0, t0.Add(time.Hour),
				func(Change) error { n++; return stop })
			if err != stop || n != 1 {
				t.Errorf("err %v after %d calls, want %v after 1", err, n, stop)
			}
		})
	}
}

// A context cancelled during a wait ends Changes with its error.
func TestChangesCancelledWhileWaiting(t *testing.T) {
	fk, cfg := psaCases[0].start(t, dataset(), faults{retryAfter: "30"})
	ctx, cancel := context.WithCancel(context.Background())
	var slept []time.Duration
	r := testPolicy(&slept)
	r.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, d)
	}
	_, err := collect(t, ctx, open(t, cfg, fk.srv.Client(), r))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// A Retry-After longer than a client waits ends the request at once.
func TestChangesRefusesALongRetryAfter(t *testing.T) {
	fk, cfg := psaCases[1].start(t, dataset(), faults{retryAfter: "3600"})
	var slept []time.Duration
	_, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), testPolicy(&slept)))
	if !errors.Is(err, ErrUnavailable) || len(slept) != 0 {
		t.Fatalf("err %v after waits %v, want ErrUnavailable without waiting", err, slept)
	}
}

func TestChangesRefusesAnEmptyWindow(t *testing.T) {
	for _, pc := range psaCases {
		fk, cfg := pc.start(t, dataset(), faults{})
		err := open(t, cfg, fk.srv.Client(), defaultRetry()).Changes(context.Background(), t0, t0, func(Change) error { return nil })
		if !errors.Is(err, ErrInvalidWindow) || fk.requests != 0 {
			t.Errorf("%s: err %v after %d requests, want ErrInvalidWindow before any", pc.psa, err, fk.requests)
		}
	}
}

// The client applies the window to the times the PSA returns: a PSA that
// ignores the filter (here: serves every ticket) costs pages, not
// correctness; and the sub-second part of since counts although
// ConnectWise's conditions take whole seconds.
func TestWindowAppliedByTheClient(t *testing.T) {
	t.Run("connectwise sub-second since", func(t *testing.T) {
		fk, cfg := psaCases[0].start(t, dataset(), faults{})
		var got []string
		err := open(t, cfg, fk.srv.Client(), defaultRetry()).Changes(context.Background(), t0.Add(500*time.Millisecond), t0.Add(time.Hour),
			func(c Change) error { got = append(got, c.ID); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got, "2") || !slices.Contains(got, "3") {
			t.Errorf("ids %v: ticket 2 (changed at %v) is before since, ticket 3 inside", got, t0)
		}
		if fk.filters[0] != "lastUpdated>=["+t0.Format(time.RFC3339)+"]" {
			t.Errorf("conditions %q, want since truncated to the second", fk.filters[0])
		}
	})
	t.Run("generic feed that ignores since", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"changes":[
				{"type":"ticket","id":"early","updatedAt":%q,"data":{}},
				{"type":"ticket","id":"in","updatedAt":%q,"data":{}},
				{"type":"note","id":"edge","updatedAt":%q,"data":{"x":1}},
				{"type":"ticket","id":"late","updatedAt":%q,"data":{}}],"next":null}`,
				t0.Add(-time.Nanosecond).Format(time.RFC3339Nano), t0.Add(30*time.Minute).Format(time.RFC3339Nano),
				t0.Add(time.Hour-time.Nanosecond).Format(time.RFC3339Nano), t0.Add(time.Hour).Format(time.RFC3339Nano))
		}))
		defer srv.Close()
		cfg := Config{PSA: "generic", BaseURL: srv.URL, Token: genToken}
		got, err := collect(t, context.Background(), open(t, cfg, srv.Client(), defaultRetry()))
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got); !slices.Equal(g, []string{"edge", "in"}) {
			t.Errorf("ids %v, want [edge in]", g)
		}
		for _, c := range got {
			if c.ID == "edge" && c.Type != "note" {
				t.Errorf("generic type %q, want the feed's note", c.Type)
			}
		}
	})
	t.Run("filters sent", func(t *testing.T) {
		want := map[string]string{
			"connectwise": "lastUpdated>=[2026-12-03T10:00:00Z]",
			"autotask":    `{"filter":[{"op":"gte","field":"lastActivityDate","value":"2026-12-03T10:00:00Z"},{"op":"lt","field":"lastActivityDate","value":"2026-12-03T11:00:00Z"}]}`,
			"halopsa":     "2026-12-03T09:59:59",
			"generic":     "2026-12-03T10:00:00Z",
		}
		for _, pc := range psaCases {
			fk, cfg := pc.start(t, dataset(), faults{})
			if _, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), defaultRetry())); err != nil {
				t.Fatal(err)
			}
			if fk.filters[0] != want[string(pc.psa)] {
				t.Errorf("%s: filter %s, want %s", pc.psa, fk.filters[0], want[string(pc.psa)])
			}
		}
	})
}

// A page over MaxPageBytes is refused without reading it all.
func TestPageTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"changes":[{"type":"ticket","id":"1","updatedAt":"2026-12-03T10:00:00Z","data":"`)
		chunk := strings.Repeat("x", 64<<10)
		for range MaxPageBytes/len(chunk) + 1 {
			fmt.Fprint(w, chunk)
		}
		fmt.Fprint(w, `"}],"next":null}`)
	}))
	defer srv.Close()
	cfg := Config{PSA: "generic", BaseURL: srv.URL, Token: genToken}
	_, err := collect(t, context.Background(), open(t, cfg, srv.Client(), defaultRetry()))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err %v, want ErrMalformed: larger than", err)
	}
}

// Credentials go to BaseURL's host only: Autotask's nextPageUrl on
// another host is refused, and no client follows a redirect.
func TestCredentialsStayOnTheHost(t *testing.T) {
	hits := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		fmt.Fprint(w, `[]`)
	}))
	defer other.Close()

	t.Run("autotask next page elsewhere", func(t *testing.T) {
		fk := newAutotaskFake(t, dataset(), faults{}, other.URL)
		cfg := Config{PSA: "autotask", BaseURL: fk.srv.URL + "/atservicesrest", Username: atUser, Secret: atSecret, IntegrationCode: atCode}
		_, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), defaultRetry()))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nextPageUrl") {
			t.Errorf("err %v, want ErrMalformed naming nextPageUrl", err)
		}
	})
	for _, pc := range psaCases {
		t.Run(string(pc.psa)+" redirect", func(t *testing.T) {
			redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
			}))
			defer redirect.Close()
			fk, cfg := pc.start(t, nil, faults{})
			cfg.BaseURL = redirect.URL + strings.TrimPrefix(cfg.BaseURL, fk.srv.URL)
			_, err := collect(t, context.Background(), open(t, cfg, redirect.Client(), defaultRetry()))
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "HTTP 307") {
				t.Errorf("err %v, want ErrRefused (HTTP 307)", err)
			}
		})
	}
	if hits != 0 {
		t.Errorf("the other host got %d requests", hits)
	}
}
