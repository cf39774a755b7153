// Package apinizer calls Apinizer's management API ("APIOps") to change the
// password of a credential, and reads every documented answer shape into a
// Deployment or a typed error.
//
// A Client sends each call with a bearer token from a TokenSource (with a
// SecretToken: a Personal API Access Token, or an access token the Client
// obtains for client credentials and renews before it expires), retries
// what may pass later (ClassTransient: 408, 425, 429, most 5xx, no answer)
// with jittered exponential backoff inside the caller's deadline, asks the
// TokenSource for a fresh token once after a 401, and follows no redirect.
// Callers branch on the outcome with ClassOf, errors.As (*Error,
// *DeploymentError) and errors.Is (context.DeadlineExceeded), never on
// error text.
//
// No error or log line this package makes carries the token, the password
// being sent, the client secret, the Authorization header or a request
// body: text Apinizer sends back is cut short, stripped of control
// characters, and every copy of the password, client secret or token in it
// is replaced with "[REDACTED]".
package apinizer
