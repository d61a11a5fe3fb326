//go:build race

package alerts_test

// subRaceBuild reports a build with the race detector, which slows the
// crash test's child processes tenfold.
const subRaceBuild = true
