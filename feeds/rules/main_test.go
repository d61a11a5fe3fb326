package rules_test

import (
	"os"
	"testing"

	"herald/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.RunWithPostgres(m)) }

// TestOnPostgres runs every test of the package again on PostgreSQL.
func TestOnPostgres(t *testing.T) { storetest.RerunOnPostgres(t) }
