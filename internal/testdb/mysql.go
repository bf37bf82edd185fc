package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/go-sql-driver/mysql" // also registers the "mysql" driver
)

// launchMySQL initialises a throwaway MariaDB data directory in a new temp
// directory and starts a server on it, listening on a free port of
// 127.0.0.1, with a root account without password.
func launchMySQL() (p *proc, dir, dsn string, err error) {
	mariadbd, err := findProgram([]string{"mariadbd"}, "/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/mysql/bin")
	if err != nil {
		return nil, "", "", fmt.Errorf("%w; install MariaDB (Debian: apt-get install mariadb-server, or run scripts/test.sh) or set %s", err, EnvMySQLDSN)
	}
	install, err := findProgram([]string{"mariadb-install-db"}, "/usr/bin", "/usr/local/bin", filepath.Dir(mariadbd), "/usr/local/mysql/scripts")
	if err != nil {
		return nil, "", "", fmt.Errorf("%w; install MariaDB (Debian: apt-get install mariadb-server) or set %s", err, EnvMySQLDSN)
	}
	dir, err = tempDir("mysql")
	if err != nil {
		return nil, "", "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	logPath := filepath.Join(dir, "mariadb.log")
	data := filepath.Join(dir, "data")
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"} // mariadbd refuses root unless told
	}
	err = runSetup(nil, logPath, install, append([]string{"--no-defaults",
		"--datadir=" + data,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
	}, asRoot...)...)
	if err != nil {
		return nil, "", "", err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, "", "", err
		}
		p, err := startServer(nil, syscall.SIGTERM, logPath, mariadbd, append([]string{"--no-defaults",
			"--datadir=" + data,
			"--port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--socket=" + filepath.Join(dir, "mariadbd.sock"),
			"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
			"--tmpdir=" + dir,
			"--skip-log-bin",
			"--skip-name-resolve",
			"--innodb-flush-log-at-trx-commit=0",
			"--innodb-doublewrite=0",
			"--innodb-buffer-pool-size=64M",
			"--character-set-server=utf8mb4",
			"--collation-server=utf8mb4_general_ci",
			"--max-connections=500",
		}, asRoot...)...)
		if err != nil {
			return nil, "", "", err
		}
		dsn := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
		retry, err := awaitReady(p, "mysql", dsn, attempt == 3)
		if err == nil {
			return p, dir, dsn, nil
		}
		if !retry {
			return nil, "", "", err
		}
	}
}

// mysqlDSN returns the DSN of database name on the server of the admin
// DSN, with parseTime=true and without multiple statements per query.
func mysqlDSN(admin, name string) (string, error) {
	cfg, err := mysql.ParseDSN(admin)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvMySQLDSN, err)
	}
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.MultiStatements = false
	return cfg.FormatDSN(), nil
}

// mysqlAdminDSN returns the admin DSN with a bound on waiting for
// metadata locks, so that dropping a database a test left a transaction
// open in fails instead of hanging.
func mysqlAdminDSN(admin string) (string, error) {
	cfg, err := mysql.ParseDSN(admin)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvMySQLDSN, err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["lock_wait_timeout"] = "10"
	return cfg.FormatDSN(), nil
}

// createMySQL creates database name on the MySQL server.
func createMySQL(ctx context.Context, admin *sql.DB, name string) error {
	_, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4")
	return err
}

// dropMySQL drops database name after ending the sessions still using it.
func dropMySQL(ctx context.Context, admin *sql.DB, name string) error {
	rows, err := admin.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", name)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		// It may have ended meanwhile; the DROP reports what matters.
		_, _ = admin.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10))
	}
	_, err = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
	return err
}
