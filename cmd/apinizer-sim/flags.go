package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// defaultToken is accepted when neither -token nor the -config file names
// one.
const defaultToken = "local-dev-token"

// errUsage is returned after the flag package has printed the problem.
var errUsage = errors.New("usage")

// options is what the command line asks for.
type options struct {
	addr   string
	config simulator.Config
	seeds  []seed
	quiet  bool
}

// seed is one credential given with -seed.
type seed struct {
	project, username, password string
}

// listFlag collects a repeatable flag; with split, each value may also be a
// comma-separated list.
type listFlag struct {
	values []string
	split  bool
}

func (f *listFlag) String() string { return "" } // never print tokens or passwords

func (f *listFlag) Set(v string) error {
	if !f.split {
		f.values = append(f.values, v)
		return nil
	}
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			f.values = append(f.values, part)
		}
	}
	return nil
}

// parseFlags reads the command line: the -config file first, then the flags
// given explicitly, which win over it.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("apinizer-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8099", "`host:port` to listen on")
	envelope := fs.String("envelope", "", "answer style: seed or current (default current)")
	shape := fs.String("shape", "",
		"deploymentResult shape: environmentResults or detailList (default environmentResults)")
	tokens := &listFlag{split: true}
	fs.Var(tokens, "token",
		"accepted bearer `token`; repeatable or comma-separated (default "+defaultToken+")")
	latency := fs.Duration("latency", 0, "delay of every password change answer")
	jitter := fs.Duration("jitter", 0, "random extra delay, up to this much")
	seeds := &listFlag{}
	fs.Var(seeds, "seed", "credential `project/username=password`; repeatable")
	configFile := fs.String("config", "", "JSON `file` holding a simulator Config")
	quiet := fs.Bool("quiet", false, "do not log each request")
	if err := fs.Parse(args); err != nil {
		return options{}, errUsage
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var cfg simulator.Config
	if *configFile != "" {
		var err error
		if cfg, err = readConfig(*configFile); err != nil {
			return options{}, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["envelope"] {
		cfg.Envelope = simulator.Envelope(*envelope)
	}
	if set["shape"] {
		cfg.Shape = simulator.DeploymentShape(*shape)
	}
	if set["latency"] {
		cfg.LatencyMS = int(latency.Milliseconds())
	}
	if set["jitter"] {
		cfg.JitterMS = int(jitter.Milliseconds())
	}
	switch {
	case set["token"]:
		cfg.Tokens = tokens.values
	case len(cfg.Tokens) == 0:
		cfg.Tokens = []string{defaultToken}
	}
	if err := cfg.Validate(); err != nil {
		return options{}, fmt.Errorf("invalid configuration: %w", err)
	}

	opts := options{addr: *addr, config: cfg, quiet: *quiet}
	for i, v := range seeds.values {
		s, err := parseSeed(v)
		if err != nil {
			return options{}, fmt.Errorf("-seed #%d: %w", i+1, err)
		}
		opts.seeds = append(opts.seeds, s)
	}
	return opts, nil
}

// parseSeed reads "project/username=password": the project ends at the
// first '/', the username at the first '=' (the password may hold both).
// Its errors never repeat the password.
func parseSeed(v string) (seed, error) {
	name, password, ok := strings.Cut(v, "=")
	if !ok {
		return seed{}, errors.New("want project/username=password")
	}
	project, username, ok := strings.Cut(name, "/")
	switch {
	case !ok || project == "" || username == "":
		return seed{}, fmt.Errorf("%q: want project/username before '='", name)
	case password == "":
		return seed{}, fmt.Errorf("%q: the password is empty", name)
	}
	return seed{project, username, password}, nil
}

// readConfig reads a JSON Config; unknown fields are refused, to catch typos.
func readConfig(path string) (simulator.Config, error) {
	var cfg simulator.Config
	f, err := os.Open(path)
	if err != nil {
		return cfg, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("reading config %s: %w", path, err)
	}
	return cfg, nil
}
