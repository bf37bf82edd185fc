package faults

import (
	"fmt"
	"net"
	"strconv"
	"strings"

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
