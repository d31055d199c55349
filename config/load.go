package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		// Name the file on every problem, keeping them separate.
		var each []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			each = j.Unwrap()
		} else {
			each = []error{err}
		}
		for i, e := range each {
			each[i] = fmt.Errorf("config: %s: %w", path, e)
		}
		return nil, errors.Join(each...)
	}
	return cfg, nil
}

// Parse decodes YAML configuration. Every scalar value may use ${VAR},
// looked up with lookup; an unset variable is an error. Keys the
// configuration does not know are errors that name the key and its line.
// Secret files are read, and defaults applied. Parse does not validate: call
// Validate.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	// ${VAR} is not valid YAML inside a flow mapping ({ a: ${X} }), so each
	// reference becomes a plain placeholder first and is expanded in the
	// parsed scalars: a value is never parsed as YAML, and line numbers stay.
	var refs []string
	data = envRef.ReplaceAllFunc(data, func(ref []byte) []byte {
		refs = append(refs, string(ref[2:len(ref)-1]))
		return fmt.Appendf(nil, "%s%d_", placeholder, len(refs)-1)
	})
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, err
	}
	var problems []error
	checkKeys(&root, reflect.TypeFor[Config](), "", &problems)
	expand(&root, refs, lookup, &problems)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	scalarClaimsToLists(&root)
	cfg := new(Config)
	if err := root.Decode(cfg); err != nil {
		return nil, err
	}
	if err := cfg.readFiles(); err != nil {
		return nil, err
	}
	cfg.SetDefaults()
	return cfg, nil
}

// checkKeys reports every mapping key under n that t has no field for.
func checkKeys(n *yaml.Node, t reflect.Type, path string, problems *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			checkKeys(c, t, path, problems)
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice {
			for _, c := range n.Content {
				checkKeys(c, t.Elem(), path+"[]", problems)
			}
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			full := strings.TrimPrefix(path+"."+name, ".")
			f, ok := fields[name]
			if !ok {
				*problems = append(*problems, fmt.Errorf("line %d: unknown key %q%s", k.Line, full, suggest(name, fields)))
				continue
			}
			checkKeys(v, f, full, problems)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

func suggest(name string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if d := distance(name, f); d < bestD {
			best, bestD = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var (
	envRef      = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	placeholder = "__gatehouse_env_"
	placeRef    = regexp.MustCompile(placeholder + `([0-9]+)_`)
)

// expand replaces the placeholders of ${VAR} references in every scalar
// value. Only the braced form is expanded, so a secret that contains a bare
// '$' is left alone.
func expand(n *yaml.Node, refs []string, lookup func(string) (string, bool), problems *[]error) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, placeholder) {
		n.Value = placeRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			i, err := strconv.Atoi(ref[len(placeholder) : len(ref)-1])
			if err != nil || i >= len(refs) {
				return ref
			}
			name := refs[i]
			v, ok := lookup(name)
			if !ok {
				*problems = append(*problems, fmt.Errorf("line %d: environment variable %s is not set", n.Line, name))
			}
			return v
		})
		// Let the expanded value take the type the field wants (a duration,
		// a bool); its text is never parsed as YAML.
		n.Tag = ""
		n.Style = 0
	}
	for _, c := range n.Content {
		expand(c, refs, lookup, problems)
	}
}

// scalarClaimsToLists lets routes[].require.claims (also an app's) take a
// scalar for a list of one value: `claims: { email_verified: true }`.
func scalarClaimsToLists(root *yaml.Node) {
	tops := []*yaml.Node{root}
	for _, apps := range mappingValues(root, "apps") {
		if apps.Kind == yaml.SequenceNode {
			tops = append(tops, apps.Content...)
		}
	}
	for _, top := range tops {
		routeClaimsToLists(top)
	}
}

func routeClaimsToLists(root *yaml.Node) {
	for _, routes := range mappingValues(root, "routes") {
		if routes.Kind != yaml.SequenceNode {
			continue
		}
		for _, route := range routes.Content {
			for _, req := range mappingValues(route, "require") {
				for _, claims := range mappingValues(req, "claims") {
					if claims.Kind != yaml.MappingNode {
						continue
					}
					for i := 1; i < len(claims.Content); i += 2 {
						v := claims.Content[i]
						if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
							claims.Content[i] = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: v.Line, Column: v.Column, Content: []*yaml.Node{v}}
						}
					}
				}
			}
		}
	}
}

// mappingValues returns the values under key in n, a document or mapping
// node.
func mappingValues(n *yaml.Node, key string) []*yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	var out []*yaml.Node
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			out = append(out, n.Content[i+1])
		}
	}
	return out
}

// readFiles loads the secrets that the configuration names by file.
func (c *Config) readFiles() error {
	var problems []error
	if c.OIDC.ClientSecretFile != "" {
		if c.OIDC.ClientSecret != "" {
			problems = append(problems, errors.New("oidc: set client_secret or client_secret_file, not both"))
		} else if b, err := os.ReadFile(c.OIDC.ClientSecretFile); err != nil {
			problems = append(problems, fmt.Errorf("oidc.client_secret_file: %w", err))
		} else {
			c.OIDC.ClientSecret = strings.TrimSpace(string(b))
		}
	}
	if c.Redis.PasswordFile != "" {
		if b, err := os.ReadFile(c.Redis.PasswordFile); err != nil {
			problems = append(problems, fmt.Errorf("redis.password_file: %w", err))
		} else {
			c.Redis.Password = strings.TrimSpace(string(b))
		}
	}
	if c.Postgres.DSNFile != "" {
		if c.Postgres.DSN != "" {
			problems = append(problems, errors.New("postgres: set dsn or dsn_file, not both"))
		} else if b, err := os.ReadFile(c.Postgres.DSNFile); err != nil {
			problems = append(problems, fmt.Errorf("postgres.dsn_file: %w", err))
		} else {
			c.Postgres.DSN = strings.TrimSpace(string(b))
		}
	}
	if c.Admin.TokenFile != "" {
		if b, err := os.ReadFile(c.Admin.TokenFile); err != nil {
			problems = append(problems, fmt.Errorf("admin.token_file: %w", err))
		} else {
			c.Admin.Token = strings.TrimSpace(string(b))
		}
	}
	if c.Session.KeysFile != "" {
		if b, err := os.ReadFile(c.Session.KeysFile); err != nil {
			problems = append(problems, fmt.Errorf("session.keys_file: %w", err))
		} else {
			for line := range strings.Lines(string(b)) {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					c.Session.Keys = append(c.Session.Keys, line)
				}
			}
		}
	}
	return errors.Join(problems...)
}

// SetDefaults fills every zero field with its documented default.
func (c *Config) SetDefaults() {
	setDefault(&c.Server.Listen, "127.0.0.1:8080")
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 30 * time.Second
	}
	if c.Server.ReadHeaderTimeout == 0 {
		c.Server.ReadHeaderTimeout = 10 * time.Second
	}
	if c.Server.IdleTimeout == 0 {
		c.Server.IdleTimeout = 120 * time.Second
	}
	if c.Server.WriteTimeout == 0 {
		c.Server.WriteTimeout = 30 * time.Second
	}
	if c.Server.MaxHeaderBytes == 0 {
		c.Server.MaxHeaderBytes = 32 << 10
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 64 << 10
	}
	if c.Server.RateLimit == 0 {
		c.Server.RateLimit = 60
	}
	setDefault(&c.Tracing.ServiceName, "gatehouse")
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	setDefault(&c.BFF.Prefix, "/bff")
	c.BFF.Prefix = "/" + strings.Trim(c.BFF.Prefix, "/")
	setDefault(&c.BFF.CSRFHeader, "X-CSRF")
	setDefault(&c.BFF.CSRFValue, "1")

	setDefault(&c.OIDC.AuthMethod, "client_secret_basic")
	if c.OIDC.DPoP == "" {
		c.OIDC.DPoP = DPoPAuto
	}
	if len(c.OIDC.Scopes) == 0 {
		c.OIDC.Scopes = []string{"openid", "profile", "offline_access"}
	}
	if !contains(c.OIDC.Scopes, "openid") {
		c.OIDC.Scopes = append([]string{"openid"}, c.OIDC.Scopes...)
	}
	setDefault(&c.OIDC.CallbackPath, c.BFF.Prefix+"/callback")
	setDefault(&c.Server.HealthPath, c.BFF.Prefix+"/healthz")
	setDefault(&c.Server.ReadyPath, c.BFF.Prefix+"/readyz")
	if c.OIDC.PostLogoutRedirectURI == "" && c.Server.PublicURL != "" {
		c.OIDC.PostLogoutRedirectURI = strings.TrimSuffix(c.Server.PublicURL, "/") + "/"
	}
	if c.OIDC.RevokeOnLogout == nil {
		t := true
		c.OIDC.RevokeOnLogout = &t
	}
	if c.OIDC.RefreshSkew == 0 {
		c.OIDC.RefreshSkew = 60 * time.Second
	}
	if c.OIDC.Timeout == 0 {
		c.OIDC.Timeout = 10 * time.Second
	}

	if c.Session.Store == "" {
		c.Session.Store = StoreBolt
	}
	setDefault(&c.Session.BoltPath, "./gatehouse.db")
	// A default yields to what was set: an absolute timeout shorter than
	// the default idle one shortens the idle timeout too.
	if c.Session.IdleTimeout == 0 {
		c.Session.IdleTimeout = 30 * time.Minute
		if a := c.Session.AbsoluteTimeout; a > 0 && a < c.Session.IdleTimeout {
			c.Session.IdleTimeout = a
		}
	}
	if c.Session.AbsoluteTimeout == 0 {
		c.Session.AbsoluteTimeout = max(8*time.Hour, c.Session.IdleTimeout)
	}
	if c.Session.MaxPerUser == 0 {
		c.Session.MaxPerUser = 50
	}
	setDefault(&c.Session.CookieName, "__Host-gatehouse")
	setDefault(&c.Session.SameSite, "lax")

	defaultRoutes(c.Routes)
	for i := range c.Apps {
		defaultRoutes(c.Apps[i].Routes)
	}
	setDefault(&c.Redis.KeyPrefix, "{gatehouse}:")
	if c.Redis.Timeout == 0 {
		c.Redis.Timeout = 2 * time.Second
	}
	setDefault(&c.Admin.Listen, "127.0.0.1:9090")
	setDefault(&c.Log.Format, "text")
	setDefault(&c.Log.Level, "info")
}

// defaultRoutes sets the defaults of every route.
func defaultRoutes(routes []Route) {
	for i := range routes {
		r := &routes[i]
		if r.Token == "" {
			r.Token = TokenUser
		}
		if r.Timeout == 0 {
			r.Timeout = 30 * time.Second
		}
	}
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
