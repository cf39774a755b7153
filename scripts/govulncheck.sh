#!/usr/bin/env bash
# Runs govulncheck against a pinned copy of the Go vulnerability database,
# without calling vuln.go.dev: the database is a Go module, fetched once
# through the module proxy (or found in the module cache) and read from disk.
#
# It prints one entry per vulnerability found (what, where, fixed in, and an
# example call stack), then a verdict. It fails only for a vulnerability
# that is both
#   - in a module go.mod requires, not in "stdlib" or "toolchain": those come
#     with the Go toolchain that builds the functions and are fixed by a newer
#     Go, so they are reported as advisories and do not fail the run; and
#   - reachable: govulncheck found a call stack from the project's code to the
#     vulnerable function (a vulnerable module or package that is required or
#     imported but never called is only listed).
# Each advisory says whether it reaches the deployed functions
# (./functions/...) or only the test tooling (simulator, stand-ins, demo).
#
# Exit status: 0 clean or advisories only; 1 a reachable vulnerability in a
# required module; 2 the scan could not run. VERBOSE=1 also prints
# govulncheck's own text report, with every trace.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$REPO/.tools/bin

GOVULNCHECK_VERSION=v1.9.0
# Pinned like any dependency: moving to a newer database is a deliberate
# change (a pseudo-version of golang.org/x/vulndb on the module proxy).
VULNDB_MODULE=golang.org/x/vulndb
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

die() { echo "govulncheck.sh: $*" >&2; exit 2; }

# govulncheck, into .tools/bin; the stamp records its version
mkdir -p "$BIN"
stamp=$BIN/.govulncheck.version
if [[ ! -x $BIN/govulncheck || "$(cat "$stamp" 2>/dev/null)" != "$GOVULNCHECK_VERSION" ]]; then
  echo "installing govulncheck $GOVULNCHECK_VERSION into $BIN"
  GOBIN=$BIN go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" ||
    die "cannot install govulncheck $GOVULNCHECK_VERSION"
  echo "$GOVULNCHECK_VERSION" >"$stamp"
fi

# the database, downloaded from an empty directory so that the project's
# go.mod and go.sum are not touched
db=$(go env GOMODCACHE)/$VULNDB_MODULE@$VULNDB_VERSION/data/osv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ ! -d $db ]]; then
  echo "fetching the vulnerability database $VULNDB_MODULE@$VULNDB_VERSION"
  (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$VULNDB_MODULE@$VULNDB_VERSION" >/dev/null) ||
    die "cannot download $VULNDB_MODULE@$VULNDB_VERSION (is GOPROXY reachable?)"
fi
[[ -d $db ]] || die "$db is missing after the download"
echo "govulncheck $GOVULNCHECK_VERSION, $(go env GOVERSION), database $VULNDB_MODULE@$VULNDB_VERSION" \
  "($(find "$db" -name 'GO-*.json' | wc -l) entries)"

# two scans: everything, and the deployed functions alone (JSON output
# always exits 0; a failure here is a failure to scan)
cd "$REPO"
# the tags the Makefile builds the functions with: lambda.norpc leaves out
# net/rpc, which the deployed binaries do not contain
scan() { "$BIN/govulncheck" -db "file://$db" -tags lambda.norpc -format json "$@"; }
scan ./... >"$tmp/all.json" || die "govulncheck ./... failed"
scan ./functions/... >"$tmp/deployed.json" || die "govulncheck ./functions/... failed"
if [[ ${VERBOSE:-} == 1 ]]; then
  "$BIN/govulncheck" -db "file://$db" -tags lambda.norpc ./... || true
fi

# the report, from the JSON streams: one entry per vulnerability, at the
# most precise level govulncheck reached (called, imported, required), with
# its module, the fixed version and the shortest call stack, taken from the
# deployed functions' scan when they call it
# (the reader exits 3 for a finding; any other failure is its own)
echo
status=0
python3 - "$tmp/all.json" "$tmp/deployed.json" <<'PY' || status=$?
import json, sys

def stream(path):
    text, dec, pos, out = open(path).read(), json.JSONDecoder(), 0, []
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)
    return out

def level(f):
    top = f["trace"][0]
    return 3 if top.get("function") else 2 if top.get("package") else 1

def frame(fr):
    recv = fr.get("receiver", "").lstrip("*")
    name = (fr.get("package") or fr.get("module", "")).split("/")[-1]
    return name + "." + (recv + "." if recv else "") + fr.get("function", "")

def stack(f):
    t = list(reversed(f["trace"]))
    pos = t[0].get("position") or {}
    where = "%s:%s: " % (pos["filename"], pos["line"]) if pos.get("filename") else ""
    return where + " -> ".join(frame(fr) for fr in t)

def entries(path):
    msgs = stream(path)
    summary = {m["osv"]["id"]: m["osv"].get("summary", "") for m in msgs if "osv" in m}
    out = {}
    for m in msgs:
        f = m.get("finding")
        if not f:
            continue
        e = out.setdefault(f["osv"], {"level": 0, "findings": []})
        e["findings"].append(f)
        e["level"] = max(e["level"], level(f))
    for vid, e in out.items():
        top = [f for f in e["findings"] if level(f) == e["level"]]
        first = top[0]["trace"][0]
        traced = sorted((f for f in top if len(f["trace"]) > 1), key=lambda f: (len(f["trace"]), stack(f)))
        e.update(id=vid, summary=summary.get(vid, ""), module=first.get("module", ""),
                 version=first.get("version", ""), package=first.get("package", ""),
                 fixed=top[0].get("fixed_version") or "none",
                 stdlib=first.get("module") in ("stdlib", "toolchain"),
                 example=stack(traced[0]) if traced else "")
    return out

everything, deployed = entries(sys.argv[1]), entries(sys.argv[2])
vulns = sorted(everything.values(), key=lambda e: (-e["level"], e["id"]))
for e in vulns:
    d = deployed.get(e["id"])
    e["deployed"] = bool(d and d["level"] == 3)
    if e["deployed"]:
        e["example"] = d["example"]
    pkg = " " + e["package"] if e["package"] else ""
    print("%s  %s@%s%s, fixed in %s" % (e["id"], e["module"], e["version"], pkg, e["fixed"]))
    print("    " + e["summary"])
    if e["level"] == 3:
        how = "called by the deployed functions" if e["deployed"] else \
            "called by test tooling only (not by ./functions/...)"
    else:
        how = "imported, not called" if e["level"] == 2 else "required, not imported"
    print("    " + how + (": " + e["example"] if e["example"] else ""))

called = [e for e in vulns if e["level"] == 3]
std = [e for e in called if e["stdlib"]]
fail = [e for e in called if not e["stdlib"]]
print()
print("summary: %d standard-library vulnerabilities called (%d by the deployed functions; advisory: "
      "fixed by a newer Go), %d imported or required but not called, %d called in required modules"
      % (len(std), sum(e["deployed"] for e in std), len(vulns) - len(called), len(fail)))
if fail:
    print("govulncheck.sh: FAIL: a required module has a vulnerability the project calls: "
          + ", ".join("%s (%s@%s, fixed in %s)" % (e["id"], e["module"], e["version"], e["fixed"]) for e in fail))
    sys.exit(3)
print("govulncheck.sh: ok: no vulnerability the project calls in a required module")
PY
case $status in
  0) ;;
  3) exit 1 ;;
  *) die "cannot read govulncheck's JSON output" ;;
esac
