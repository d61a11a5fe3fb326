//go:build !race

package alerts_test

// subRaceBuild reports a build with the race detector.
const subRaceBuild = false
