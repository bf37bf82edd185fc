package faults

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// serverAddr returns the host:port of the server that dsn, a DSN of the
// named database kind ("postgres" or "mysql"), connects to over TCP.
func serverAddr(kind, dsn string) (string, error) {
	switch kind {
	case sqldialect.Postgres:
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			return "", fmt.Errorf("faults: parse PostgreSQL DSN: %w", err)
		}
		if strings.HasPrefix(cfg.Host, "/") {
			return "", fmt.Errorf("faults: the PostgreSQL DSN names a Unix socket (%s); the proxy needs TCP", cfg.Host)
		}
		return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
	case sqldialect.MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", fmt.Errorf("faults: parse MySQL DSN: %w", err)
		}
		if cfg.Net != "tcp" {
			return "", fmt.Errorf("faults: the MySQL DSN uses %q; the proxy needs tcp", cfg.Net)
		}
		return cfg.Addr, nil
	}
	return "", fmt.Errorf("faults: no proxy for %q databases", kind)
}

// DSN returns dsn, a DSN of the named database kind ("postgres" or "mysql")
// for the server the proxy forwards to, changed so that the driver
// connects through [Proxy.DialContext], with short connection timeouts: the
// proxy may swallow a connection attempt, and no call must wait on it for
// long. Open it with the database's usual driver name.
func (p *Proxy) DSN(kind, dsn string) (string, error) {
	switch kind {
	case sqldialect.Postgres:
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return "", err
			}
			q := u.Query()
			q.Set("connect_timeout", "2")
			u.RawQuery = q.Encode()
			dsn = u.String()
		} else {
			// In the keyword form a later keyword wins.
			dsn += " connect_timeout=2"
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return "", fmt.Errorf("faults: parse PostgreSQL DSN: %w", err)
		}
		cfg.DialFunc = p.DialContext
		name := stdlib.RegisterConnConfig(cfg)
		p.mu.Lock()
		p.pgNames = append(p.pgNames, name)
		p.mu.Unlock()
		return name, nil
	case sqldialect.MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", fmt.Errorf("faults: parse MySQL DSN: %w", err)
		}
		cfg.Net = p.network // cfg.Addr, the server's, is not dialed
		cfg.Timeout = time.Second
		cfg.ReadTimeout = 2 * time.Second
		cfg.WriteTimeout = 2 * time.Second
		return cfg.FormatDSN(), nil
	}
	return "", fmt.Errorf("faults: no proxy for %q databases", kind)
}
