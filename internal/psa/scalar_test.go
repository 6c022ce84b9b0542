package psa

import (
	"encoding/json"
	"testing"
)

func TestScalarString(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"12345"`, "12345", true},
		{`12345`, "12345", true},
		{` 12345 `, "12345", true},
		{`-7`, "-7", true},
		{`123456789012345678901234567890`, "123456789012345678901234567890", true},
		{`1.5e3`, "1.5e3", true},
		{`"a\"b"`, `a"b`, true},
		{`"\u0041BC"`, "ABC", true},
		{`"  x "`, "  x ", true},
		{`""`, "", false},
		{`"   "`, "", false},
		{`"\u0020"`, "", false},
		{`null`, "", false},
		{`true`, "", false},
		{`{"id":1}`, "", false},
		{`[1]`, "", false},
		{``, "", false},
		{`"`, "", false},
	}
	for _, tt := range tests {
		got, ok := scalarString(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("scalarString(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

// TestDeliveryHashIsUnambiguous: fields are length-prefixed, so moving a
// byte from one field to the next changes the hash.
func TestDeliveryHashIsUnambiguous(t *testing.T) {
	pairs := [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{"", "a"}, {"a", ""}},
	}
	for _, p := range pairs {
		if deliveryHash("autotask", p[0]...) == deliveryHash("autotask", p[1]...) {
			t.Errorf("%q and %q hash alike", p[0], p[1])
		}
	}
	if deliveryHash("autotask", "x") == deliveryHash("halopsa", "x") {
		t.Error("the PSA kind is not part of the hash")
	}
	if got, want := deliveryHash("halopsa", "w", "e"), hashOf(t, "halopsa", "w", "e"); got != want {
		t.Errorf("deliveryHash = %s, want the documented %s", got, want)
	}
}
