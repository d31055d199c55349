package systemtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUserEndsAnotherDeviceThroughTheGateway(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	laptop, phone := e.browser(), e.browser()
	laptop.login("/")
	phone.login("/")

	resp := laptop.api("GET", "/bff/sessions")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /bff/sessions = %d", resp.StatusCode)
	}
	var list []struct {
		Handle  string `json:"handle"`
		Current bool   `json:"current"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	if len(list) != 2 {
		t.Fatalf("listed %d sessions, want 2", len(list))
	}
	var other string
	for _, s := range list {
		if !s.Current {
			other = s.Handle
		}
	}
	if r := laptop.do("DELETE", "/bff/sessions/"+other, map[string]string{"X-CSRF": "1"}, false); r.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE other session = %d", r.StatusCode)
	}
	if status, _ := phone.user(); status != http.StatusUnauthorized {
		t.Errorf("ended device still answers %d", status)
	}
	if status, _ := laptop.user(); status != http.StatusOK {
		t.Errorf("current device lost its session: %d", status)
	}
	if r := laptop.do("GET", "/bff/sessions", nil, false); r.StatusCode != http.StatusForbidden {
		t.Errorf("session list without the anti-forgery header = %d, want 403", r.StatusCode)
	}
}

func TestAdminAPIEndsAUsersSessions(t *testing.T) {
	e, _ := startWithHostileProvider(t, nil)
	b := e.browser()
	b.login("/")
	h, err := e.gw.AdminHandler("operator-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, claims := b.user()
	subject, _ := claims["sub"].(string)

	req := httptest.NewRequest("DELETE", "/admin/sessions?sub="+subject, nil)
	req.RemoteAddr = "127.0.0.1:50000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("admin call without the credential = %d, want 401", w.Code)
	}
	if status, _ := b.user(); status != http.StatusOK {
		t.Fatal("a refused admin call ended the session")
	}
	req.Header.Set("Authorization", "Bearer operator-secret")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("admin DELETE = %d: %s", w.Code, w.Body)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("session survived the operator ending it: %d", status)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusOK {
			t.Errorf("%s = %d", path, w.Code)
		}
	}
}
