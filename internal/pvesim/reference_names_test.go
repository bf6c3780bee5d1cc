package pvesim

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// TestReferenceNamesExistingTests keeps REFERENCE.md honest: every test it
// cites as pinning a behaviour must be a test function of this package, so a
// renamed or deleted test cannot leave a row that nothing checks.
func TestReferenceNamesExistingTests(t *testing.T) {
	ref, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	reFunc := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range reFunc.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
	}
	cited := map[string]bool{}
	for _, m := range regexp.MustCompile("`(Test\\w+)`").FindAllSubmatch(ref, -1) {
		cited[string(m[1])] = true
	}
	if len(cited) < 50 {
		t.Fatalf("REFERENCE.md cites only %d tests; the pattern no longer matches how it names them", len(cited))
	}
	var missing []string
	for name := range cited {
		if !defined[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("REFERENCE.md cites tests that internal/pvesim does not define: %v", missing)
	}
}
