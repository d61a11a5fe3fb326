package main_test

import (
	"os"
	"testing"

	"herald/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.RunWithPostgres(m)) }

// TestOnPostgres runs every test of the package again with Herald on
// PostgreSQL: the commands, the end-to-end tests and, with
// HERALD_RELIABILITY=1, the reliability suite.
func TestOnPostgres(t *testing.T) { storetest.RerunOnPostgres(t) }
