package login

import (
	"slices"
	"strings"
)

// corePrompts are the prompt values OpenID Connect Core 1.0 §3.1.2.1
// defines for every provider. Other values (such as "create", from
// Initiating User Registration via OpenID Connect 1.0) exist only where the
// provider lists them in prompt_values_supported.
var corePrompts = []string{"none", "login", "consent", "select_account"}

// maxPrompt bounds the length of a prompt parameter.
const maxPrompt = 128

// parsePrompt checks a prompt parameter: a space-delimited list of values
// (OpenID Connect Core 1.0 §3.1.2.1), each one of the Core values or one
// the provider lists in supported, no value twice, and "none" only alone
// (§3.1.2.1: none with any other value is an error). It returns the value to
// send, normalised to single spaces, and false for a prompt to refuse.
func parsePrompt(s string, supported []string) (string, bool) {
	if s == "" {
		return "", true
	}
	if len(s) > maxPrompt {
		return "", false
	}
	values := strings.Split(s, " ")
	for i, v := range values {
		if v == "" || slices.Contains(values[:i], v) || !validPromptValue(v) {
			return "", false
		}
		if !slices.Contains(corePrompts, v) && !slices.Contains(supported, v) {
			return "", false
		}
	}
	if len(values) > 1 && slices.Contains(values, "none") {
		return "", false
	}
	return strings.Join(values, " "), true
}

// validPromptValue reports whether v is a plausible prompt value: lower-case
// letters, digits and '_' or '-', as every registered value is.
func validPromptValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
