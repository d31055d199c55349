package doctor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/doctor"
)

func TestRouteAuthorizationFindings(t *testing.T) {
	for _, tc := range []struct {
		name, route, id string
		want            doctor.Status
		says            string
	}{
		{"require on token none", "{ prefix: /a/, upstream: http://127.0.0.1:9001, token: none, require: { claims: { groups: admins } } }",
			"route_require", doctor.Fail, "never loads the user's session"},
		{"require on token optional_user", "{ prefix: /a/, upstream: http://127.0.0.1:9001, token: optional_user, require: { scopes: [admin] } }",
			"route_require", doctor.Warn, "not optional"},
		{"require on token user", "{ prefix: /a/, upstream: http://127.0.0.1:9001, require: { max_age: 5m } }",
			"route_require", doctor.Pass, "require conditions"},
		{"identity headers to a public address", "{ prefix: /a/, upstream: http://203.0.113.7:8080, identity: { headers: { X-User: sub } } }",
			"route_identity", doctor.Warn, "public address"},
		{"identity headers to a public address with assertion", "{ prefix: /a/, upstream: http://203.0.113.7:8080, identity: { headers: { X-User: sub }, assertion: true } }",
			"route_identity", doctor.Info, "signed assertion"},
		{"identity headers to a private address", "{ prefix: /a/, upstream: http://10.1.2.3:8080, identity: { headers: { X-User: sub } } }",
			"route_identity", doctor.Pass, "private network"},
		{"identity headers to loopback", "{ prefix: /a/, upstream: http://localhost:8080, identity: { headers: { X-User: sub } } }",
			"route_identity", doctor.Pass, "loopback"},
		{"an app's route", "apps: [ { name: admin, path: /admin, routes: [ { prefix: /admin/a/, upstream: http://127.0.0.1:9001, token: none, require: { acr: [mfa] } } ] } ]",
			"route_require", doctor.Fail, "never loads the user's session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			s.extra = "routes: [ " + tc.route + " ]\n"
			if strings.HasPrefix(tc.route, "apps:") {
				s.extra = tc.route + "\n"
			}
			r := doctor.Run(context.Background(), s.config(t), doctor.Options{})
			c, ok := r.Find(tc.id)
			if !ok || c.Status != tc.want || !strings.Contains(c.Message, tc.says) {
				t.Errorf("%s = %+v, want %s saying %q\n%s", tc.id, c, tc.want, tc.says, dump(r))
			}
		})
	}
}
