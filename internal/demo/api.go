package demo

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// exampleAPI is the demo's protected API. It trusts nothing but the bearer
// token: it asks the provider's UserInfo endpoint whose token it is and
// answers with the subject, never echoing the token back.
type exampleAPI struct {
	userinfoURL string
	client      *http.Client
}

func (a *exampleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "no bearer token"})
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, a.userinfoURL, nil)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client.Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		json.NewEncoder(w).Encode(map[string]string{"error": "provider unreachable"})
		return
	}
	defer resp.Body.Close()
	var info map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "token rejected by the provider"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"message":            "Hello from the example API",
		"subject":            info["sub"],
		"name":               info["name"],
		"bearer_token_sent":  true,
		"cookie_header_sent": r.Header.Get("Cookie") != "",
		"x_forwarded_for":    r.Header.Get("X-Forwarded-For"),
		"request_id":         r.Header.Get("X-Request-Id"),
		"api_time":           time.Now().UTC().Format(time.RFC3339),
	})
}
