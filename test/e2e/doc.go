// Package e2e runs the built function binaries under the Lambda Runtime
// Interface Emulator against moto and the Apinizer simulator, over the wire,
// the way AWS would drive them. It holds tests only.
package e2e
