// Package config reads the functions' configuration from the environment
// and refuses, in one message, anything missing or malformed.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

// Names of the environment variables both functions read.
const (
	EnvBaseURL            = "APINIZER_BASE_URL"
	EnvTokenSecretID      = "APINIZER_TOKEN_SECRET_ID"
	EnvDeadLetterQueueURL = "DEAD_LETTER_QUEUE_URL"
	EnvPasswordLength     = "PASSWORD_LENGTH"
	EnvExcludeCharacters  = "EXCLUDE_CHARACTERS"
	EnvBulkMaxConcurrency = "BULK_MAX_CONCURRENCY"
	EnvBulkPrepareAhead   = "BULK_PREPARE_AHEAD"
	EnvGatewayURL         = "APINIZER_GATEWAY_URL"
	EnvGatewayProbePath   = "APINIZER_GATEWAY_PROBE_PATH"
	EnvMaxRPS             = "APINIZER_MAX_RPS"
)

// DefaultPasswordLength is the length of a generated password.
const DefaultPasswordLength = 32

// DefaultExcludeCharacters are left out of generated passwords: quotes and
// backslash (JSON, shells), the URL delimiters and '%' (paths, query
// strings), ':' (Basic auth splits user and password on it), '@' (userinfo
// in URLs), and brackets and braces. Spaces are never generated.
const DefaultExcludeCharacters = "\"#%&'()+,/:;<=>?@[\\]^`{|}~"

// DefaultBulkMaxConcurrency is sized for one SQS batch of ten records.
const DefaultBulkMaxConcurrency = 10

// DefaultBulkPrepareAhead lets as many jobs again do their Secrets Manager
// work while the BulkMaxConcurrency others are at Apinizer.
const DefaultBulkPrepareAhead = 10

// WholeNumbers are the variables that take a whole number, each with the
// least and the most it may be. The template's parameters for them keep
// within these (a test in deploy checks it).
var WholeNumbers = map[string][2]int{
	EnvPasswordLength:     {16, 4096},
	EnvBulkMaxConcurrency: {1, 100},
	EnvBulkPrepareAhead:   {0, 100},
}

// Config is what both functions need to run.
type Config struct {
	BaseURL            string
	TokenSecretID      string
	DeadLetterQueueURL string
	PasswordLength     int
	ExcludeCharacters  string
	// BulkMaxConcurrency bounds the password changes one warm function has
	// at Apinizer at once; in the bulk function, BulkPrepareAhead more jobs
	// may run their Secrets Manager calls meanwhile, waiting for a turn.
	BulkMaxConcurrency int
	BulkPrepareAhead   int
	// GatewayURL, when set, is the Apinizer gateway testSecret checks the
	// new password against: at GatewayProbePath with Basic auth, or at the
	// gateway's token endpoint when no probe path is set.
	GatewayURL       string
	GatewayProbePath string
	// MaxRPS, when above zero, bounds the requests per second one warm
	// function sends to Apinizer.
	MaxRPS float64
}

// FromEnv reads Config with os.LookupEnv.
func FromEnv() (Config, error) { return Load(os.LookupEnv) }

// Load reads Config through lookup. Every problem found is reported in the
// one returned error, so a misconfigured function says all it needs at once.
func Load(lookup func(string) (string, bool)) (Config, error) {
	var problems []string
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	cfg := Config{
		BaseURL:            get(EnvBaseURL),
		TokenSecretID:      get(EnvTokenSecretID),
		DeadLetterQueueURL: get(EnvDeadLetterQueueURL),
		PasswordLength:     DefaultPasswordLength,
		ExcludeCharacters:  DefaultExcludeCharacters,
		BulkMaxConcurrency: DefaultBulkMaxConcurrency,
		BulkPrepareAhead:   DefaultBulkPrepareAhead,
	}

	// wholeNumber sets *dst from the variable name, when it is set, if it
	// is a whole number within its WholeNumbers range
	wholeNumber := func(name string, dst *int) {
		v := get(name)
		if v == "" {
			return
		}
		lo, hi := WholeNumbers[name][0], WholeNumbers[name][1]
		if n, err := strconv.Atoi(v); err != nil || n < lo || n > hi {
			problems = append(problems, fmt.Sprintf("%s must be a whole number from %d to %d", name, lo, hi))
		} else {
			*dst = n
		}
	}

	if cfg.BaseURL == "" {
		problems = append(problems, EnvBaseURL+" is not set")
	} else if err := apinizer.CheckBaseURL(cfg.BaseURL); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %s", EnvBaseURL,
			strings.TrimPrefix(err.Error(), "apinizer: ")))
	}
	if cfg.TokenSecretID == "" {
		problems = append(problems, EnvTokenSecretID+" is not set")
	}
	if cfg.DeadLetterQueueURL == "" {
		problems = append(problems, EnvDeadLetterQueueURL+" is not set")
	} else if u, err := url.Parse(cfg.DeadLetterQueueURL); err != nil || u.Host == "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		problems = append(problems, EnvDeadLetterQueueURL+" is not a queue URL")
	}
	wholeNumber(EnvPasswordLength, &cfg.PasswordLength)
	if v, ok := lookup(EnvExcludeCharacters); ok && v != "" {
		if !printableASCII(v) {
			problems = append(problems, EnvExcludeCharacters+" must be printable ASCII")
		} else if !leavesEachKind(v) {
			problems = append(problems, EnvExcludeCharacters+
				" must leave some lowercase letters, uppercase letters and digits")
		} else {
			cfg.ExcludeCharacters = v
		}
	}
	wholeNumber(EnvBulkMaxConcurrency, &cfg.BulkMaxConcurrency)
	wholeNumber(EnvBulkPrepareAhead, &cfg.BulkPrepareAhead)

	if v := get(EnvMaxRPS); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || !(n > 0 && n <= 1000) {
			problems = append(problems, EnvMaxRPS+" must be a number above 0 and at most 1000")
		} else {
			cfg.MaxRPS = n
		}
	}
	cfg.GatewayURL, cfg.GatewayProbePath = get(EnvGatewayURL), get(EnvGatewayProbePath)
	if cfg.GatewayURL != "" {
		if err := apinizer.CheckBaseURL(cfg.GatewayURL); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", EnvGatewayURL,
				strings.TrimPrefix(strings.ReplaceAll(err.Error(), "base URL", "gateway URL"), "apinizer: ")))
		}
	}
	if cfg.GatewayProbePath != "" {
		switch {
		case cfg.GatewayURL == "":
			problems = append(problems, EnvGatewayProbePath+" needs "+EnvGatewayURL)
		case !strings.HasPrefix(cfg.GatewayProbePath, "/") || strings.ContainsAny(cfg.GatewayProbePath, "?#") ||
			!printableASCII(cfg.GatewayProbePath):
			problems = append(problems, EnvGatewayProbePath+" must be a path starting with /, without a query")
		}
	}

	if len(problems) > 0 {
		return Config{}, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

func printableASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// leavesEachKind reports whether a password can still hold a lowercase
// letter, an uppercase letter and a digit with exclude left out.
func leavesEachKind(exclude string) bool {
	kinds := []string{"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"}
	for _, kind := range kinds {
		if !strings.ContainsFunc(kind, func(r rune) bool { return !strings.ContainsRune(exclude, r) }) {
			return false
		}
	}
	return true
}
