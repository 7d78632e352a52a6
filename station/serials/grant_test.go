package serials

import "testing"

var grantCases = []struct {
	in   string
	want Grant
	err  string
}{
	{`{"scheme":"bench","from":1000,"to":1999}`, Grant{"bench", 1000, 1999}, ""},
	{" {\n \"to\": 0, \"from\": 0, \"scheme\": \"a.b_c-1\" } ", Grant{"a.b_c-1", 0, 0}, ""},
	{`{"scheme":"s","from":9223372036854775807,"to":9223372036854775807}`, Grant{"s", 1<<63 - 1, 1<<63 - 1}, ""},
	{`{"scheme":"s","from":5,"to":4}`, Grant{}, "grant_serials: to: must be >= from"},
	{`{"scheme":"s","from":1,"to":2,"block":3}`, Grant{}, `grant_serials: "block": unknown field`},
	{`{"Scheme":"s","from":1,"to":2}`, Grant{}, `grant_serials: "Scheme": unknown field`},
	{`{"scheme":"s","from":1,"from":2,"to":3}`, Grant{}, "grant_serials: from: given twice"},
	{`{"scheme":"s","to":2}`, Grant{}, "grant_serials: from: missing"},
	{`{"from":1,"to":2}`, Grant{}, "grant_serials: scheme: missing"},
	{`{"scheme":"s","from":1}`, Grant{}, "grant_serials: to: missing"},
	{`{"scheme":"s","from":1.0,"to":2}`, Grant{}, "grant_serials: from: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":1e3,"to":2000}`, Grant{}, "grant_serials: from: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":-1,"to":2}`, Grant{}, "grant_serials: from: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":"1","to":2}`, Grant{}, "grant_serials: from: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":1,"to":9223372036854775808}`, Grant{}, "grant_serials: to: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":1,"to":99999999999999999999}`, Grant{}, "grant_serials: to: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":1,"to":null}`, Grant{}, "grant_serials: to: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"s","from":1,"to":[2]}`, Grant{}, "grant_serials: to: must be a whole number 0 to 9223372036854775807"},
	{`{"scheme":"a/b","from":1,"to":2}`, Grant{}, "grant_serials: scheme: must be an id, 1 to 64 of [A-Za-z0-9._-]"},
	{`{"scheme":"","from":1,"to":2}`, Grant{}, "grant_serials: scheme: must be an id, 1 to 64 of [A-Za-z0-9._-]"},
	{`{"scheme":7,"from":1,"to":2}`, Grant{}, "grant_serials: scheme: must be an id, 1 to 64 of [A-Za-z0-9._-]"},
	{`{"scheme":"s","from":1,"to":2}{}`, Grant{}, "grant_serials: more after the args object"},
	{`{"scheme":"s","from":1,"to":2}x`, Grant{}, "grant_serials: more after the args object"},
	{`{"scheme":"s","from":1,"to":2`, Grant{}, "grant_serials: the args object is cut short"},
	{`{"scheme":"s","from":01,"to":2}`, Grant{}, `grant_serials: invalid character '1' after object key:value pair`},
	{`{"scheme":"s","from":`, Grant{}, "grant_serials: from: the args object is cut short"},
	{`{"scheme":"s","from":1,,"to":2}`, Grant{}, "grant_serials: invalid character ',' looking for beginning of object key string"},
	{`[1,2]`, Grant{}, `grant_serials: args must be a JSON object {"scheme": ID, "from": N, "to": N}`},
	{``, Grant{}, `grant_serials: args must be a JSON object {"scheme": ID, "from": N, "to": N}`},
	{`null`, Grant{}, `grant_serials: args must be a JSON object {"scheme": ID, "from": N, "to": N}`},
}

func TestParseGrant(t *testing.T) {
	for _, tc := range grantCases {
		t.Run(tc.in, func(t *testing.T) {
			g, err := ParseGrant([]byte(tc.in))
			if tc.err == "" {
				if err != nil || g != tc.want {
					t.Fatalf("ParseGrant = %+v, %v; want %+v", g, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("ParseGrant = %+v, %v\nwant error %s", g, err, tc.err)
			}
		})
	}
}
