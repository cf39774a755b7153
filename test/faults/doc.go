// Package faults stops rotations at every point where something has been
// written or sent, in every way a Lambda function can stop, runs them again
// the way AWS and operators do, and checks after each stop and each rerun
// that no password Apinizer holds is lost. It holds tests only; run it with
// `make test-faults` to see the matrix.
package faults
