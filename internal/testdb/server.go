package testdb

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errStopped is the start-up error of a server asked for after Run
// stopped the servers.
var errStopped = errors.New("testdb: the test servers were already stopped by Run")

// server is a PostgreSQL or MariaDB server shared by all tests of the
// process: either one this process starts the first time a test needs it,
// or one reached through an environment variable.
type server struct {
	name   string // "postgres" or "mysql"
	envVar string // the variable that can name an existing server
	driver string // the database/sql driver for it
	// launch starts a throwaway server and returns the process, its temp
	// directory and its admin DSN.
	launch func() (p *proc, dir, dsn string, err error)

	requested atomic.Bool   // ensure has been called
	stopped   atomic.Bool   // stop has been called
	once      sync.Once     // runs setUp, or marks the server unusable in stop
	ready     chan struct{} // closed when the function run by once returns

	// Set by the function run by once, then read-only until stop.
	err     error   // why the server is unusable
	dsn     string  // admin DSN
	admin   *sql.DB // admin connection pool
	proc    *proc   // nil for a server from the environment
	dir     string  // temp directory to remove after stopping proc
	startup time.Duration
}

var (
	postgresServer = &server{name: "postgres", envVar: EnvPostgresDSN, driver: "pgx", launch: launchPostgres, ready: make(chan struct{})}
	mysqlServer    = &server{name: "mysql", envVar: EnvMySQLDSN, driver: "mysql", launch: launchMySQL, ready: make(chan struct{})}
	servers        = []*server{postgresServer, mysqlServer}
)

// ensure gets the server ready once per process; later calls wait for the
// first to finish and share its result.
func (s *server) ensure() error {
	s.requested.Store(true)
	s.once.Do(s.setUp)
	if s.stopped.Load() {
		return errStopped
	}
	return s.err
}

// setUp connects to the server named by the environment, or starts one.
func (s *server) setUp() {
	defer close(s.ready)
	t0 := time.Now()
	var (
		p   *proc
		dir string
		dsn = os.Getenv(s.envVar)
		err error
	)
	if dsn == "" {
		if p, dir, dsn, err = s.launch(); err != nil {
			s.err = fmt.Errorf("testdb: start %s: %w", s.name, err)
			return
		}
	}
	db, err := openAdmin(s.driver, dsn)
	if err != nil {
		if p != nil {
			p.kill()
			os.RemoveAll(dir)
			s.err = fmt.Errorf("testdb: %s server started but unusable: %w", s.name, err)
		} else {
			s.err = fmt.Errorf("testdb: %s server from %s: %w", s.name, s.envVar, err)
		}
		return
	}
	s.proc, s.dir, s.dsn, s.admin = p, dir, dsn, db
	s.startup = time.Since(t0)
}

// stop closes the admin pool and stops the server if this process started
// it. A start-up still under way is waited for; a server not started yet
// will not be.
func (s *server) stop() error {
	s.stopped.Store(true)
	s.once.Do(func() {
		s.err = errStopped
		close(s.ready)
	})
	var errs []error
	if s.admin != nil {
		if err := s.admin.Close(); err != nil {
			errs = append(errs, err)
		}
		s.admin = nil
	}
	if s.proc != nil {
		if err := s.proc.stop(); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testdb: stop %s: %w", s.name, err)
	}
	return nil
}

// ServerInfo describes a database server that this test process used.
type ServerInfo struct {
	// Name is "postgres" or "mysql".
	Name string
	// DSN is the administrative DSN the databases were created through.
	DSN string
	// PID is the server's process ID if this process started it, and 0 if
	// it was reached through CUTOVER_POSTGRES_DSN or CUTOVER_MYSQL_DSN.
	PID int
	// Startup is how long it took until the server answered: initialising
	// its data directory and starting it, or only connecting to it when it
	// came from the environment.
	Startup time.Duration
}

// Servers returns the database servers this process has used so far, in
// the order PostgreSQL, MariaDB, including servers that [Run] has already
// stopped (their PID is then that of a process that no longer exists). It
// waits for a server still starting. It is meant for tests of this package
// and for reporting start-up times.
func Servers() []ServerInfo {
	var out []ServerInfo
	for _, s := range servers {
		if !s.requested.Load() {
			continue
		}
		<-s.ready
		if s.dsn == "" {
			continue
		}
		info := ServerInfo{Name: s.name, DSN: s.dsn, Startup: s.startup}
		if s.proc != nil {
			info.PID = s.proc.pid()
		}
		out = append(out, info)
	}
	return out
}
