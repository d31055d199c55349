// Package config defines Gatehouse's configuration: a plain struct with
// documented zero values, loaded from YAML with ${VAR} expansion and strict
// decoding, and validated all at once.
//
// A minimal file:
//
//	server:   { listen: 127.0.0.1:8080, public_url: http://localhost:8080 }
//	oidc:     { issuer: https://id.example.com, client_id: spa, client_secret: ${CLIENT_SECRET} }
//	session:  { store: bolt, bolt_path: ./gatehouse.db, keys: ["${GATEHOUSE_KEY}"] }
//	routes:   [ { prefix: /api/, upstream: http://127.0.0.1:9001, token: user } ]
//	frontend: { upstream: http://127.0.0.1:5173 }
package config
