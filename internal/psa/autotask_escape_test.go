package psa

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

// cafeBody is an Autotask delivery as sent: its title written literally.
const cafeBody = `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket","Action":"Update","Id":99,` +
	`"SequenceNumber":415,"Fields":{"Title":"Café & Co"}}`

// TestDecodeAutotaskEscapedSignature: Autotask signs the body with some
// characters of its strings written as \uXXXX escapes while it sends them
// literally. A signature over such a form of the body is accepted; one
// over any other text, or with another secret, is refused. The signed
// texts are written out by hand, independently of the escaper.
func TestDecodeAutotaskEscapedSignature(t *testing.T) {
	const (
		// Every character the escaping touches: the listed ones (" and \
		// are \" and \\ in the text), non-ASCII in the BMP and beyond it.
		// + in the number's exponent and the escapes \n and \u00e9 are
		// not in a string's characters or already escaped: they stay.
		allBody = `{"EntityType":"Ticket","Action":"Update","Id":1e+2,` +
			`"Fields":{"Title":"<a href='x'>\"q\" C:\\tmp 1+1</a>\nü 😀 \u00e9 back` + "`" + `tick"}}`
		allLower = `{"EntityType":"Ticket","Action":"Update","Id":1e+2,` +
			`"Fields":{"Title":"\u003ca href=\u0027x\u0027\u003e\u0022q\u0022 C:\u005ctmp 1\u002b1\u003c/a\u003e\n\u00fc \ud83d\ude00 \u00e9 back` + "`" + `tick"}}`
		allUpper = `{"EntityType":"Ticket","Action":"Update","Id":1e+2,` +
			`"Fields":{"Title":"\u003Ca href=\u0027x\u0027\u003E\u0022q\u0022 C:\\tmp 1\u002B1\u003C/a\u003E\n\u00FC \uD83D\uDE00 \u00e9 back\u0060tick"}}`
	)
	tests := []struct {
		name     string
		body     string
		signed   string // the text the signature is computed over
		secret   string // the secret it is signed with; "" is autotaskSecret
		accepted bool
	}{
		{"Café & Co signed as sent", cafeBody, cafeBody, "", true},
		{"Café & Co signed escaped, lower-case hex", cafeBody, `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket",` +
			`"Action":"Update","Id":99,"SequenceNumber":415,"Fields":{"Title":"Caf\u00e9 \u0026 Co"}}`, "", true},
		{"Café & Co signed escaped, upper-case hex", cafeBody, `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket",` +
			`"Action":"Update","Id":99,"SequenceNumber":415,"Fields":{"Title":"Caf\u00E9 \u0026 Co"}}`, "", true},
		{"every escaped character, lower-case hex", allBody, allLower, "", true},
		{"every escaped character, upper-case hex", allBody, allUpper, "", true},
		{"Café & Co escaped, another secret", cafeBody, `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket",` +
			`"Action":"Update","Id":99,"SequenceNumber":415,"Fields":{"Title":"Caf\u00e9 \u0026 Co"}}`, "another-webhook-secret", false},
		{"escaped form of another title", cafeBody, `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket",` +
			`"Action":"Update","Id":99,"SequenceNumber":415,"Fields":{"Title":"Caf\u00e9 \u0026 Cie"}}`, "", false},
		{"only the ampersand escaped", cafeBody, `{"Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket",` +
			`"Action":"Update","Id":99,"SequenceNumber":415,"Fields":{"Title":"Café \u0026 Co"}}`, "", false},
		{"the quotes around names escaped too", `{"Id":1,"EntityType":"Ticket","Action":"Update"}`,
			`{\u0022Id\u0022:1,\u0022EntityType\u0022:\u0022Ticket\u0022,\u0022Action\u0022:\u0022Update\u0022}`, "", false},
		{"escaped with hex of both cases", allBody, strings.Replace(allLower, `\u00fc`, `\u00FC`, 1), "", false},
		{"backslash as \\u005c and backtick escaped", allBody, strings.Replace(allLower, "`", `\u0060`, 1), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			if secret == "" {
				secret = autotaskSecret
			}
			h := http.Header{}
			h.Set("X-Hook-Signature", signAutotask(secret, []byte(tt.signed)))
			got, err := testDecoder().Decode(context.Background(), "autotask", autotaskSecret, h, []byte(tt.body))
			if !tt.accepted {
				if got != nil {
					t.Errorf("Decode returned envelopes with an error: %v", got)
				}
				wantError(t, err, 401, domain.CodeBadSignature, autotaskSecret)
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if string(got[0].Payload) != tt.body {
				t.Errorf("Payload = %s, want the body as sent", got[0].Payload)
			}
		})
	}
}

func TestJSONEscaping(t *testing.T) {
	lower, upper := autotaskEscapings[0], autotaskEscapings[1]
	tests := []struct {
		name      string
		e         jsonEscaping
		text      string
		want      string
		unchanged bool
	}{
		{"nothing to escape", lower, `{"a":"plain text","n":-1.5e+3,"t":true}`, "", true},
		{"structure is left alone", lower, `{"a&b":["<",">"]} `, `{"a\u0026b":["\u003c","\u003e"]} `, false},
		{"escaped quote and backslash, lower", lower, `["say \"hi\" \\ bye"]`, `["say \u0022hi\u0022 \u005c bye"]`, false},
		{"escaped quote and backslash, upper", upper, `["say \"hi\" \\ bye"]`, `["say \u0022hi\u0022 \\ bye"]`, false},
		{"other escapes stay", lower, `["\n\t\/\u00e9\\n"]`, `["\n\t\/\u00e9\u005cn"]`, false},
		{"backtick only in the upper form", upper, "[\"`'\"]", `["\u0060\u0027"]`, false},
		{"backtick left by the lower form", lower, "[\"`\"]", "", true},
		{"non-ASCII outside the BMP", lower, `["𝄞"]`, `["\ud834\udd1e"]`, false},
		{"non-ASCII outside the BMP, upper", upper, `["𝄞é"]`, `["\uD834\uDD1E\u00E9"]`, false},
		{"U+FFFD is a character like any other", lower, "[\"\uFFFD\"]", `["\ufffd"]`, false},
		{"invalid UTF-8 is copied", lower, "[\"\xff&\"]", "[\"\xff\\u0026\"]", false},
		{"unterminated string", lower, `{"a":"b&`, `{"a":"b\u0026`, false},
		{"trailing backslash", lower, `["a\`, "", true},
		{"empty", lower, ``, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := tt.e.escape([]byte(tt.text))
			if changed == tt.unchanged {
				t.Errorf("changed = %v, want %v", changed, !tt.unchanged)
			}
			want := tt.want
			if tt.unchanged {
				want = tt.text
			}
			if string(got) != want {
				t.Errorf("escape(%s) = %s, want %s", tt.text, got, want)
			}
		})
	}
}

// FuzzJSONEscaping: an escaped form of a JSON text is JSON that means the
// same value, so a signature over it signs what was received; and no text
// makes the escaper panic.
func FuzzJSONEscaping(f *testing.F) {
	f.Add([]byte(cafeBody))
	f.Add([]byte(`["\\\"", "\\", "\"", "𝄞", "\ud834\udd1e"]`))
	f.Add([]byte("[\"\xed\xa0\x80\"]"))
	f.Add([]byte(`{"a\\":"b\\\\\"c"}`))
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, e := range autotaskEscapings {
			esc, changed := e.escape(text)
			if !changed && string(esc) != string(text) {
				t.Fatalf("unchanged, but %q became %q", text, esc)
			}
			if !json.Valid(text) {
				continue
			}
			var want, got any
			if err := json.Unmarshal(text, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(esc, &got); err != nil {
				t.Fatalf("escaped form of %q is not JSON: %q: %v", text, esc, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("escaped form of %q means another value (-want +got):\n%s", text, diff)
			}
		}
	})
}
