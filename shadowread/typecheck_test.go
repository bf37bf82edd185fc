package shadowread_test

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// typeChecker returns a function that type-checks the source of one file
// importing this package, against the export data that the go command
// builds for it and its dependencies, and returns the first type error.
func typeChecker(t *testing.T) func(src string) error {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the export data to type-check against")
	cmd := exec.Command(gocmd, "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", "github.com/cutover-go/cutover/shadowread")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	exports := map[string]string{}
	lines := bufio.NewScanner(bytes.NewReader(out))
	for lines.Scan() {
		if path, file, ok := strings.Cut(lines.Text(), "="); ok && file != "" {
			exports[path] = file
		}
	}
	require.NoError(t, lines.Err())
	return func(src string) error {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "p.go", src, 0)
		require.NoError(t, err)
		imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(exports[path]) })
		conf := types.Config{Importer: imp}
		_, err = conf.Check("p", fset, []*ast.File{f}, nil)
		return err
	}
}
