// Package simulator is a local, in-memory stand-in for Apinizer's management
// API ("APIOps"): the credential password change with its automatic deploy,
// the credential list, the token endpoint and the test endpoints; and for
// the gateway's side of a credential: whether a password is accepted yet.
//
// It keeps projects, credentials and their current passwords, answers in
// either documented envelope (the older "seed" one or the current one) and
// either deployment shape (per environment or per pod), and can be scripted
// to fail: deployments that fail for some environments or pods, HTTP faults
// such as 429 or an HTML 502 from a proxy, connections dropped after the
// change was applied, and slow answers.
//
// The same Server, and so the same listener, also plays the gateway. It
// keeps, per credential, the password deployed to each pod of each
// environment: a password change deploys the new password to every pod that
// DeployFailures does not name (those keep the password they had), and a
// pod starts to accept it Config.GatewayLagMS after the change. The gateway
// accepts a password only when every pod does (Server.GatewayAccepts), at:
//
//	POST /credential/token  form grant_type=client_credentials, client_id,
//	                        client_secret → 200 {"access_token", "token_type",
//	                        "expires_in"} or 401 {"error": "invalid_client"}
//	ANY  /gateway/...       Basic authentication → 200 "OK", or 401 with
//	                        WWW-Authenticate: Basic
//
// Credentials are found by username in any project. A base URL for the
// gateway is therefore the simulator's own URL.
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
