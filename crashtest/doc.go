// Package crashtest runs the real ttq binary and kills it with SIGKILL at
// random points to prove that acknowledged writes survive, sealed answers never
// change and no batch is ever half-applied; it also holds the soak test.
// Everything is in its tests: `go test ./crashtest/`.
package crashtest
