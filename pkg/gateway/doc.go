// Package gateway checks that an Apinizer API gateway accepts a credential's
// password, for the testSecret step of a rotation: after Apinizer has
// stored and deployed a new password, is it really what the gateway lets
// in?
//
// A Checker asks one of two things, neither of which changes anything:
//
//   - the gateway's token endpoint, POST {base}/credential/token with the
//     client_credentials grant, the username and password as client_id and
//     client_secret: accepted means 200 with an access_token (the token is
//     read and dropped);
//   - or, with a probe path, an API proxy guarded by a Basic authentication
//     policy on Apinizer's identity store: accepted means any 2xx.
//
// A deployment reaches the gateway pods one by one, so Check tries again
// while the answer means "not yet" (401, 403, 408, 429, 5xx, no answer),
// with jittered exponential backoff, until the password is accepted or the
// caller's deadline leaves no room for another attempt. Answers that a
// retry cannot change (400, 404, other 4xx, a redirect, a 200 without a
// token) end the check at once.
//
// The password goes only to the configured gateway: https, or http to a
// loopback host, and redirects are never followed. No error or log line
// this package makes carries the password, the "username:password" pair,
// the Authorization header or the request body.
package gateway
