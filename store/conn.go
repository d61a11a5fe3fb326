package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// closeTimeout bounds closing a dedicated connection that may be broken.
const closeTimeout = 5 * time.Second

// dedicatedConn opens a PostgreSQL connection of its own, outside the
// pool, with the pool's settings: for state that lives as long as one
// session (the leader's advisory lock, a LISTEN). The server is asked to
// probe the connection when idle, so that a peer which vanished without
// closing it (a machine powered off, a network cut) frees its session,
// and the lock with it, within about 20 seconds.
func (db *DB) dedicatedConn(ctx context.Context) (*pgx.Conn, error) {
	if db.pool == nil {
		return nil, errors.New("dedicated connections need PostgreSQL")
	}
	cfg := db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "3"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	return pgx.ConnectConfig(ctx, cfg)
}

// connSet is what holds the dedicated connections of a store, so that
// closing the store ends them (and the leadership or listening they
// carry) as a process's exit would. Each holder registers how to stop.
type connSet struct {
	mu     sync.Mutex
	stops  map[any]func()
	closed bool
}

// add registers stop under key; it returns false when the store is
// closed already.
func (s *connSet) add(key any, stop func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.stops == nil {
		s.stops = map[any]func(){}
	}
	s.stops[key] = stop
	return true
}

func (s *connSet) remove(key any) {
	s.mu.Lock()
	delete(s.stops, key)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	stops := s.stops
	s.stops, s.closed = nil, true
	s.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// closeConn closes a dedicated connection, which may be broken.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Close(ctx)
}
