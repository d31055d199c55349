// Package jsclient embeds the browser helper module (gatehouse.js) so that
// Go programs, such as the gatehouse demo, can serve it.
package jsclient

import _ "embed"

// Module is the source of gatehouse.js, an ES module.
//
//go:embed gatehouse.js
var Module []byte

// Types is the source of gatehouse.d.ts.
//
//go:embed gatehouse.d.ts
var Types []byte
