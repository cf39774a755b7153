package apinizer

// classifyStatus sorts a non-2xx HTTP status by what a caller should do
// about it. It is the only place that maps statuses to classes.
//
// 500 is transient on purpose. Apinizer answers 500 for its own internal
// failures, such as its database or deploy service being briefly
// unavailable, and the calls this package makes are idempotent: sending the
// same password again cannot change the result of the first send. Retries
// are bounded (Options.MaxAttempts, the caller's deadline), so a 500 that
// persists still ends as a ClassTransient error for the caller to report.
func classifyStatus(code int) Class {
	switch {
	case code == 401 || code == 403:
		// the token is missing, invalid, expired or lacks a permission
		return ClassToken
	case code == 408 || code == 425 || code == 429:
		// request timeout, too early, too many requests
		return ClassTransient
	case code == 501 || code == 505:
		// not implemented, HTTP version not supported: no retry will help
		return ClassRejected
	case code >= 500 && code <= 599:
		return ClassTransient
	default:
		// 3xx (redirects are never followed), the other 4xx, and anything
		// outside the known ranges
		return ClassRejected
	}
}
