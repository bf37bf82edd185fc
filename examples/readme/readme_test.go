package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// region is the code between a "// README: name" line and "// README: end".
var region = regexp.MustCompile(`(?s)// README: ([\w-]+)\n\n(.*?)\n// README: end\n`)

// TestREADMEShowsThisCode checks that every Go block of the README is a
// region of this package's files, word for word, and that every region
// stands in the README: what the README shows is what CI compiles and runs.
func TestREADMEShowsThisCode(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```\n").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no Go blocks")
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range region.FindAllStringSubmatch(string(src), -1) {
			regions[m[1]] = m[2] + "\n"
		}
	}
	shown := map[string]bool{}
	for i, b := range blocks {
		found := false
		for name, code := range regions {
			if b[1] == code {
				found, shown[name] = true, true
			}
		}
		if !found {
			first, _, _ := strings.Cut(b[1], "\n")
			t.Errorf("README Go block %d (%q) is not a region of examples/readme; copy it there between \"// README: name\" and \"// README: end\"", i+1, first)
		}
	}
	for name := range regions {
		if !shown[name] {
			t.Errorf("region %q of examples/readme is not in the README", name)
		}
	}
}
