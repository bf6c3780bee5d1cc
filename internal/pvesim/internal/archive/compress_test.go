package archive

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Every compress option vzdump accepts writes a file that Open reads back
// byte for byte, across several zstd and lzop blocks; `zstd -d`, when
// installed, reads pvesim's zstd files too.
func TestCompressorsRoundTrip(t *testing.T) {
	data := make([]byte, 600<<10) // several 128 KiB zstd and 256 KiB lzop blocks
	rand.New(rand.NewSource(1)).Read(data)
	for _, c := range []string{"0", "gzip", "lzo", "zstd"} {
		ext := CompressExt(c)
		p := filepath.Join(t.TempDir(), "archive.tar"+ext)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w := NewCompressor(f, ext)
		if _, err := w.Write(data[:1000]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[1000:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		rc, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("compress=%s: read %d bytes (err %v), want the %d written", c, len(got), err, len(data))
		}
		if ext == ".zst" {
			if _, err := exec.LookPath("zstd"); err == nil {
				out, err := exec.Command("zstd", "-d", "-c", p).Output()
				if err != nil || !bytes.Equal(out, data) {
					t.Errorf("zstd -d: %d bytes, err %v", len(out), err)
				}
			}
		}
	}
}

// A file that is not of its extension's format is an error, not data.
func TestOpenRefusesForeignData(t *testing.T) {
	for _, ext := range []string{".zst", ".lzo", ".gz"} {
		p := filepath.Join(t.TempDir(), "x.tar"+ext)
		if err := os.WriteFile(p, []byte("this is not compressed data at all"), 0o644); err != nil {
			t.Fatal(err)
		}
		rc, err := Open(p)
		if err == nil {
			_, err = io.ReadAll(rc)
			_ = rc.Close()
		}
		if err == nil {
			t.Errorf("%s: foreign data read without error", ext)
		}
	}
}
