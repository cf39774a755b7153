// Package faultproxy is an HTTP reverse proxy for tests that sits between
// the AWS SDK and moto_server. It sees every AWS call, records and counts
// them, and injects faults at exact points, so that a test can stop a
// rotation at any point where something has been written or sent.
//
// # Wiring
//
// Start it in front of moto and point the SDK at Proxy.URL: a function
// process through AWS_ENDPOINT_URL, a client in the test with a per-client
// option:
//
//	p, err := faultproxy.Start(moto.URL)
//	...
//	defer p.Close()
//	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
//		o.BaseEndpoint = aws.String(p.URL)
//	})
//
// Setting cfg.BaseEndpoint on a copy of an aws.Config that was loaded with
// config.WithBaseEndpoint (as standin.Moto.AWSConfig does) is NOT enough:
// the load options stay in cfg.ConfigSources and win over cfg.BaseEndpoint
// when the client resolves its endpoint, so the client keeps talking to moto
// directly. Set Options.BaseEndpoint per client, as above.
//
// # What it sees
//
// The Go SDK v2 speaks the JSON protocol to Secrets Manager and SQS: every
// call is POST / with a header such as
// "X-Amz-Target: secretsmanager.PutSecretValue" or
// "X-Amz-Target: AmazonSQS.SendMessageBatch". The proxy names such a call
// Service "secretsmanager" or "sqs" and Operation "PutSecretValue" or
// "SendMessageBatch". Other services are named after the signing name in the
// request's credential scope. Requests without X-Amz-Target (moto's own
// /moto-api/..., or a query-protocol client) are passed through untouched
// and are neither recorded nor matched by rules.
//
// Everything that no rule catches is forwarded untouched: method, path,
// query, Host header, other headers and body, and the answer's status,
// headers and body. The proxy never logs request or response bodies: they
// hold secret values.
//
// # Rules
//
// A Rule matches calls by Service and Operation (case-insensitive; "" matches
// any). Each rule counts the matching calls it sees from the moment it is
// added, whatever other rules do with them, including the SDK's own retries:
// Skip is how many of those it lets go by, and the rule then applies to the
// next Times ones. For each call the rules are checked in the order they
// were added, and the first one that is due and has budget left applies.
//
// With Phase Before the request is not forwarded: moto never sees it. With
// Phase After it is forwarded and moto's answer is thrown away and replaced:
// the write happened, but the caller does not know.
//
// # The SDK retries injected faults
//
// The SDK's standard retryer (the default, 3 attempts) retries, with no
// regard for whether the operation is idempotent:
//   - HTTP status 500, 502, 503 and 504, whatever the error code, so a
//     default Fail (500 InternalFailure) is retried;
//   - HTTP 429 unless the code is a modeled error of the service;
//   - the codes RequestTimeout and RequestTimeoutException;
//   - throttling codes, whatever the status: Throttling, ThrottlingException,
//     ThrottledException, RequestThrottledException, TooManyRequestsException,
//     ProvisionedThroughputExceededException, TransactionInProgressException,
//     RequestLimitExceeded, BandwidthLimitExceeded, LimitExceededException
//     (which Secrets Manager uses for quotas), RequestThrottled (an SQS code),
//     SlowDown, PriorRequestNotComplete, EC2ThrottledException;
//   - connection errors: Drop and Hook (the connection closes without an
//     answer) and an HTTP client timeout on a Hang. A Hang that ends because
//     the caller's ctx ended is not retried.
//
// Other 4xx codes (ValidationException, ResourceNotFoundException, ...) are
// not retried. So a Fail with a retried status or code, or a Drop, with
// Times 1 is absorbed by the SDK: its second attempt passes and the caller
// sees success (and, with Phase After, the write was done twice). To make
// the caller see the fault, set Times to at least the caller's attempts
// (3 by default), or -1, or set the client's RetryMaxAttempts to 1. Retries
// of throttling errors back off from a 1 s base, others from 50 ms. Each
// retry also spends tokens from the client's retry quota (500 tokens; 14 a
// retry, 5 for a throttling one); an empty quota fails the call at once.
package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one AWS call the proxy saw.
type Call struct {
	// Service is "secretsmanager", "sqs", or another service's signing name.
	Service string
	// Operation is the API operation, e.g. "PutSecretValue".
	Operation string
	// Status is the HTTP status the caller got: moto's, or the injected
	// one. It is 0 while the call is in flight and when the caller got no
	// answer (Hang, Drop, Hook, or the caller gave up).
	Status int
	// Time is when the call arrived.
	Time time.Time
	// Fault is "" or the fault injected, e.g. "Fail After 500
	// InternalFailure", "Hang Before", "Drop After", "Hook Before".
	Fault string
}

// Phase says when a fault is injected.
type Phase int

const (
	// Before: the request is not forwarded; moto never sees it.
	Before Phase = iota
	// After: the request is forwarded to moto, which does what it asks,
	// and then moto's answer is replaced by the fault.
	After
)

func (ph Phase) String() string {
	switch ph {
	case Before:
		return "Before"
	case After:
		return "After"
	}
	return "Phase(" + strconv.Itoa(int(ph)) + ")"
}

// Action is the fault injected.
type Action int

const (
	// Fail answers with an AWS-shaped JSON error: Rule.Status (default
	// 500), Rule.Code (default "InternalFailure") and Rule.Message. The
	// SDK may retry it: see the package documentation.
	Fail Action = iota
	// Hang never answers: it holds the request until the caller gives up
	// (its request ends) or the proxy is closed, and then closes the
	// connection without an answer.
	Hang
	// Drop closes the connection without answering. The SDK takes it as
	// a connection error and retries it.
	Drop
	// Hook calls Rule.Hook synchronously, then drops the connection as
	// Drop does. It is meant to kill the calling function's process at
	// that point.
	Hook
	// Pass calls Rule.Hook synchronously before the call is forwarded,
	// and then lets the call through untouched: a point to act at (change
	// another stand-in) or to hold the caller (a hook that blocks). Its
	// Phase is ignored.
	Pass
)

func (a Action) String() string {
	switch a {
	case Fail:
		return "Fail"
	case Hang:
		return "Hang"
	case Drop:
		return "Drop"
	case Hook:
		return "Hook"
	case Pass:
		return "Pass"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Defaults of a Fail rule.
const (
	DefaultStatus  = http.StatusInternalServerError
	DefaultCode    = "InternalFailure"
	DefaultMessage = "fault injected by faultproxy"
)

// Rule says which calls get which fault.
type Rule struct {
	// Service is "secretsmanager" or "sqs"; "" matches any.
	Service string
	// Operation is e.g. "PutSecretValue"; "" matches any.
	Operation string
	// Skip is how many matching calls the rule lets pass first.
	Skip int
	// Times is how many matching calls after Skip the rule applies to:
	// 0 means 1, and -1 (any negative) means every one.
	Times int
	// Phase is when the fault is injected.
	Phase Phase
	// Action is the fault.
	Action Action
	// Status, Code and Message make the error a Fail answers, e.g. 400
	// "ThrottlingException" "Rate exceeded". A Fail with a code or status
	// the SDK retries is retried by the SDK itself, so Times matters.
	Status  int
	Code    string
	Message string
	// Hook is called by a Hook rule, on the proxy's goroutine serving the
	// call, while the caller waits. It may use the Proxy's methods but must
	// not call Close. A nil Hook makes Hook act as Drop.
	Hook func()
}

// rule is a Rule with its counters.
type rule struct {
	Rule
	seen    int // matching calls seen while it had budget left
	applied int // calls it applied to
}

func (r *rule) matches(service, operation string) bool {
	return (r.Service == "" || strings.EqualFold(r.Service, service)) &&
		(r.Operation == "" || strings.EqualFold(r.Operation, operation))
}

func (r *rule) budgetLeft() bool {
	if r.Times < 0 {
		return true
	}
	return r.applied < max(r.Times, 1)
}

// pending reports whether the rule still has to fire: a rule for every
// call is pending until it fired once.
func (r *rule) pending() bool {
	if r.Times < 0 {
		return r.applied == 0
	}
	return r.budgetLeft()
}

func (r *rule) fault() string {
	s := r.Action.String() + " " + r.Phase.String()
	if r.Action == Fail {
		status, code, _ := r.failure()
		s += " " + strconv.Itoa(status) + " " + code
	}
	return s
}

func (r Rule) failure() (status int, code, message string) {
	status, code, message = r.Status, r.Code, r.Message
	if status == 0 {
		status = DefaultStatus
	}
	if code == "" {
		code = DefaultCode
	}
	if message == "" {
		message = DefaultMessage
	}
	return status, code, message
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	// URL is where the proxy listens: http://127.0.0.1:PORT.
	URL string

	srv       *http.Server
	rp        *httputil.ReverseProxy
	transport *http.Transport
	closed    chan struct{} // closed by Close: releases hanging calls
	served    chan struct{} // closed when Serve returned
	closeOnce sync.Once
	active    sync.WaitGroup // handlers running
	inflight  atomic.Int64   // the same, as a number tests can read

	mu       sync.Mutex
	rules    []*rule
	calls    []*Call
	isClosed bool
	nextID   int
}

// Start starts a proxy to target, moto's URL, on a free loopback port.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("starting faultproxy: target %q: %w", target, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("starting faultproxy: target %q is not an http(s) URL", target)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting faultproxy: %w", err)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil               // always straight to moto
	transport.DisableCompression = true // bodies pass as they are
	transport.MaxIdleConnsPerHost = 64

	p := &Proxy{
		URL:       "http://" + ln.Addr().String(),
		transport: transport,
		closed:    make(chan struct{}),
		served:    make(chan struct{}),
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // untouched, as the caller sent it
		},
		Transport:    transport,
		ErrorHandler: upstreamError,
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// Add appends rules. They are checked in the order they were added.
func (p *Proxy) Add(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range rules {
		p.rules = append(p.rules, &rule{Rule: r})
	}
}

// Clear removes all rules. Calls already hanging go on hanging.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Calls returns every call seen since Start or ResetCalls, in the order
// they arrived.
func (p *Proxy) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Call, len(p.calls))
	for i, c := range p.calls {
		out[i] = *c
	}
	return out
}

// Count returns how many calls of service and operation were seen since
// Start or ResetCalls; "" matches any. Names match case-insensitively.
func (p *Proxy) Count(service, operation string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if (service == "" || strings.EqualFold(service, c.Service)) &&
			(operation == "" || strings.EqualFold(operation, c.Operation)) {
			n++
		}
	}
	return n
}

// ResetCalls forgets the calls seen so far. It does not touch the rules.
func (p *Proxy) ResetCalls() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = nil
}

// Pending returns how many rules have yet to fire: those with budget left,
// and those for every call (Times -1) that have not fired at all.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.rules {
		if r.pending() {
			n++
		}
	}
	return n
}

// Close stops the proxy: it closes its listener and every connection,
// releases hanging calls without an answer, and waits for the calls in
// flight to end. It is safe to call more than once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.isClosed = true
		p.mu.Unlock()
		close(p.closed)
		_ = p.srv.Close()
		<-p.served
		p.active.Wait()
		p.transport.CloseIdleConnections()
	})
}

// serve handles one request.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	service, operation, isCall := identify(r)

	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		drop(w, r)
		return
	}
	p.active.Add(1)
	p.inflight.Add(1)
	defer func() {
		p.inflight.Add(-1)
		p.active.Done()
	}()
	if !isCall {
		p.mu.Unlock()
		p.rp.ServeHTTP(w, r)
		return
	}
	call := &Call{Service: service, Operation: operation, Time: time.Now()}
	p.calls = append(p.calls, call)
	p.nextID++
	id := p.nextID
	var chosen *rule
	for _, rl := range p.rules {
		if !rl.matches(service, operation) || !rl.budgetLeft() {
			continue
		}
		rl.seen++
		if chosen == nil && rl.seen > rl.Skip {
			chosen = rl
			rl.applied++
		}
	}
	var fault Rule
	if chosen != nil {
		call.Fault = chosen.fault()
		fault = chosen.Rule // a copy: the rule may be cleared meanwhile
	}
	p.mu.Unlock()

	if chosen == nil {
		sw := &statusWriter{ResponseWriter: w}
		p.rp.ServeHTTP(sw, r)
		p.setStatus(call, sw.status)
		return
	}

	if fault.Action == Pass {
		// the hook runs at the point, then the call goes on untouched
		if fault.Hook != nil {
			fault.Hook()
		}
		sw := &statusWriter{ResponseWriter: w}
		p.rp.ServeHTTP(sw, r)
		p.setStatus(call, sw.status)
		return
	}
	if fault.Phase == After {
		p.forwardDiscarding(r)
	} else {
		// read the body to its end: only then does the server notice
		// that the caller hung up, which a Hang waits for
		_, _ = io.Copy(io.Discard, r.Body)
	}

	switch fault.Action {
	case Fail:
		status, code, message := fault.failure()
		writeError(w, r, status, code, message, id)
		p.setStatus(call, status)
	case Hang:
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		drop(w, r)
	case Hook:
		if fault.Hook != nil {
			fault.Hook()
		}
		drop(w, r)
	default: // Drop, and an unknown Action
		drop(w, r)
	}
}

func (p *Proxy) setStatus(call *Call, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	call.Status = status
}

// forwardDiscarding forwards r to moto and throws the answer away.
func (p *Proxy) forwardDiscarding(r *http.Request) {
	defer func() {
		// the reverse proxy aborts when moto's answer breaks off
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			panic(v)
		}
	}()
	p.rp.ServeHTTP(&discardWriter{header: http.Header{}}, r)
}

// identify names the AWS call r makes, if it makes one in the JSON
// protocol.
func identify(r *http.Request) (service, operation string, ok bool) {
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		return "", "", false
	}
	i := strings.LastIndexByte(target, '.')
	if i < 0 {
		return "", "", false
	}
	prefix, operation := target[:i], target[i+1:]
	switch prefix {
	case "secretsmanager":
		return "secretsmanager", operation, true
	case "AmazonSQS":
		return "sqs", operation, true
	}
	if s := scopeService(r.Header.Get("Authorization")); s != "" {
		return s, operation, true
	}
	return strings.ToLower(prefix), operation, true
}

// scopeService returns the service in a SigV4 Authorization header's
// credential scope: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
func scopeService(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// writeError answers an AWS JSON-protocol error.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string, id int) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
	contentType := r.Header.Get("Content-Type")
	if !strings.HasPrefix(contentType, "application/x-amz-json") {
		contentType = "application/x-amz-json-1.1"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Errortype", code)
	h.Set("X-Amzn-Requestid", "faultproxy-"+strconv.Itoa(id))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// drop closes the caller's connection without an answer.
func drop(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// the server closes the connection, without a word
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// upstreamError answers when moto cannot be reached, with an AWS-shaped
// 502, or nothing when the caller is gone.
func upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	msg := "faultproxy could not reach the target"
	if errors.Is(err, context.DeadlineExceeded) {
		msg += ": timeout"
	}
	writeError(w, r, http.StatusBadGateway, "BadGateway", msg, 0)
}

// statusWriter records the status of the answer it passes on.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// discardWriter takes an answer and throws it away.
type discardWriter struct {
	header http.Header
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
