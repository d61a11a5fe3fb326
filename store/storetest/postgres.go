package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The environment PostgreSQL tests read. EnvPostgres holds a server URL:
// set by hand to use an existing server, or by RunWithPostgres for the
// cluster it starts, so that child processes (a herald binary under test)
// see it too. EnvRequirePostgres=1 makes a missing server a failure, as in
// CI.
const (
	EnvPostgres        = "HERALD_TEST_POSTGRES"
	EnvRequirePostgres = "HERALD_REQUIRE_POSTGRES"
)

// noBinaries is pgcluster.sh's exit status when it finds no PostgreSQL.
const noBinaries = 3

// RunWithPostgres runs a package's tests with a PostgreSQL server for
// PostgresURL, and returns their exit code; call it from TestMain. It uses
// the server at $HERALD_TEST_POSTGRES if set; otherwise, when PostgreSQL's
// binaries are installed, it starts a throwaway cluster in a temporary
// directory for the duration of the tests; otherwise it runs the tests
// without one, and those that need it skip.
func RunWithPostgres(m *testing.M) int {
	if os.Getenv(EnvPostgres) != "" {
		return m.Run()
	}
	server, stop, err := startCluster()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == noBinaries:
		return m.Run()
	case err != nil:
		fmt.Fprintf(os.Stderr, "storetest: cannot start PostgreSQL for the tests (set %s to use a running server): %v\n", EnvPostgres, err)
		return 1
	}
	defer stop()
	os.Setenv(EnvPostgres, server)
	return m.Run()
}

// startCluster starts a cluster in a new temporary directory with
// pgcluster.sh and returns its URL and a function that stops it and
// removes the directory. A process that ignores interrupts runs the script
// and waits for its stdin to close: when the function closes it, or when
// this process dies without calling it (a panic, a test timeout, even
// while the cluster starts), so no server outlives the tests.
func startCluster() (string, func(), error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", nil, errors.New("cannot locate pgcluster.sh")
	}
	dir, err := os.MkdirTemp("", "herald-pg-")
	if err != nil {
		return "", nil, err
	}
	keeper := exec.Command("bash", "-c", `trap '' INT TERM HUP PIPE
"$0" start "$1"; rc=$?
exec >/dev/null
cat
"$0" stop "$1" || rc=$?
rm -rf "$1"
exit $rc`, filepath.Join(filepath.Dir(file), "pgcluster.sh"), dir)
	var stderr bytes.Buffer
	keeper.Stderr = &stderr
	stdin, err := keeper.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := keeper.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := keeper.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	out, _ := io.ReadAll(stdout) // until the script's start is done
	stop := func() error {
		stdin.Close()
		if err := keeper.Wait(); err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	server := lines[len(lines)-1]
	if !strings.HasPrefix(server, "postgres://") {
		if err := stop(); err != nil {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("pgcluster.sh printed no URL: %q", out)
	}
	return server, func() {
		if err := stop(); err != nil {
			fmt.Fprintln(os.Stderr, "storetest: stopping the tests' PostgreSQL:", err)
		}
	}, nil
}

// PostgresURL returns the URL of a new, empty database on the test
// server, dropped when the test ends. Without a server the test skips, or
// fails if $HERALD_REQUIRE_POSTGRES is 1.
func PostgresURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvPostgres)
	if server == "" {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("no PostgreSQL for this test and %s=1: install Debian's postgresql (the tests start their own cluster with it) or set %s to a server URL", EnvRequirePostgres, EnvPostgres)
		}
		t.Skipf("skipping PostgreSQL test: no server (apt-get install postgresql and the tests start their own, or set %s=postgres://…)", EnvPostgres)
	}
	return createDatabase(t, server, "template0")
}

// createDatabase creates a database on server from template, dropped when
// t ends, and returns its URL.
func createDatabase(t testing.TB, server, template string) string {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvPostgres, err)
	}
	name := databaseName(t.Name())
	admin(t, server, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()+" ENCODING 'UTF8'")
	t.Cleanup(func() {
		admin(t, server, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on the server's administrative database.
func admin(t testing.TB, server, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("cannot connect to the test PostgreSQL (%s): %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("test PostgreSQL: %s: %v", sql, err)
	}
}

// databaseName makes a database name unique to this run from the test's
// name, readable in the server's logs and within PostgreSQL's 63 bytes.
func databaseName(test string) string {
	var b strings.Builder
	b.WriteString("herald_")
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 44 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_" + strings.ToLower(rand.Text()[:12])
}
