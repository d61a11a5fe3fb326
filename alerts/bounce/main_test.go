package bounce_test

import (
	"os"
	"testing"

	"herald/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.RunWithPostgres(m)) }

func TestOnPostgres(t *testing.T) { storetest.RerunOnPostgres(t) }
