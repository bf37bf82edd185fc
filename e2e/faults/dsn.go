package faults

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

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

// throughProxy returns dsn changed to connect to addr instead of the
// server, with short connection timeouts: the proxy may swallow a
// connection attempt, and no call must wait on it for long.
func throughProxy(kind, dsn, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	switch kind {
	case sqldialect.Postgres:
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return "", err
			}
			u.Host = addr
			q := u.Query()
			q.Set("connect_timeout", "2")
			u.RawQuery = q.Encode()
			return u.String(), nil
		}
		// In the keyword form a later keyword wins.
		return dsn + " host=" + host + " port=" + port + " connect_timeout=2", nil
	case sqldialect.MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", err
		}
		cfg.Addr = addr
		cfg.Timeout = time.Second
		cfg.ReadTimeout = 2 * time.Second
		cfg.WriteTimeout = 2 * time.Second
		return cfg.FormatDSN(), nil
	}
	return "", fmt.Errorf("faults: no proxy for %q databases", kind)
}
