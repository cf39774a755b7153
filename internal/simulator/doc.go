// Package simulator is a local, in-memory stand-in for Apinizer's management
// API ("APIOps"): the credential password change with its automatic deploy,
// the credential list, the token endpoint and the test endpoints.
//
// It keeps projects, credentials and their current passwords, answers in
// either documented envelope (the older "seed" one or the current one) and
// either deployment shape (per environment or per pod), and can be scripted
// to fail: deployments that fail for some environments or pods, HTTP faults
// such as 429 or an HTML 502 from a proxy, and slow answers.
//
// Tests run it in-process with Start and talk to it over real HTTP; the
// apinizer-sim command serves it to humans and scripts, who drive it through
// the control API under /_sim/. The simulator never logs, and never records,
// a password, a token or an Authorization header.
//
// The control API needs no token, and its calls are not recorded in the
// request log:
//
//	GET  /_sim/config                         the Config in use
//	PUT  /_sim/config                         replace it (a JSON Config)
//	PUT  /_sim/credentials/{project}/{user}/  set {"password": "..."}
//	GET  /_sim/credentials/{project}/{user}/  {"password": "...", "changes": N}
//	GET  /_sim/faults                         the pending faults
//	POST /_sim/faults                         queue a JSON array of Fault
//	GET  /_sim/requests                       the request log
//	POST /_sim/reset                          Server.Reset
//
// What it does not do: permissions (every accepted token may do everything),
// the other credential resources (keys, certificates, access lists),
// environments and projects endpoints, or any real deployment.
package simulator
