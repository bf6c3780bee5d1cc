package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// --- guest payloads ------------------------------------------------------------

const (
	lxcConfEntry  = "./etc/vzdump/pct.conf"
	lxcFwEntry    = "./etc/vzdump/pct.fw"
	qemuConfEntry = "qemu-server.conf"
	qemuDiskEntry = "disk-drive-scsi0.raw"
)

// RootfsSize sums the regular file sizes below root (used for timing).
func RootfsSize(root string, excl func(string) bool) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // skip unreadable entries: the size only paces the simulated work
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && excl != nil && excl("/"+filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Excluder builds a matcher for vzdump's exclude-path / stdexcludes.
func Excluder(patterns []string, std bool) func(string) bool {
	if std {
		patterns = append(patterns, "/tmp/?*", "/var/tmp/?*", "/var/run/?*.pid")
	}
	if len(patterns) == 0 {
		return nil
	}
	return func(p string) bool {
		for _, pat := range patterns {
			if strings.HasPrefix(pat, "/") {
				if ok, _ := path.Match(pat, p); ok {
					return true
				}
				continue
			}
			// unanchored: match any trailing part of the path
			segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
			for i := range segs {
				if ok, _ := path.Match(pat, strings.Join(segs[i:], "/")); ok {
					return true
				}
			}
		}
		return false
	}
}

// WriteLXCTar writes the CT config plus the rootfs as a tar stream,
// calling progress(n) after each chunk of file data.
func WriteLXCTar(w io.Writer, root, conf string, excl func(string) bool, progress func(int64) error) (int64, error) {
	tw := tar.NewWriter(w)
	var total int64
	mt := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: lxcConfEntry, Mode: 0o644, Size: int64(len(conf)), ModTime: mt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return 0, err
	}
	if _, err := tw.Write([]byte(conf)); err != nil {
		return 0, err
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		name := "./"
		if rel != "." {
			name = "./" + rel
			if excl != nil && excl("/"+rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if name == lxcConfEntry || name == lxcFwEntry {
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil // sockets, devices: skipped
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = name
		if fi.IsDir() && !strings.HasSuffix(h.Name, "/") {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := copyWithProgress(tw, f, progress)
		total += n
		return err
	})
	if err != nil {
		return total, err
	}
	return total, tw.Close()
}

func copyWithProgress(dst io.Writer, src io.Reader, progress func(int64) error) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			if progress != nil {
				if err := progress(int64(k)); err != nil {
					return n, err
				}
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// ReadConfig returns the guest config stored in an archive and the
// guest type found ("lxc" or "qemu").
func ReadConfig(p string) (string, string, error) {
	rc, err := Open(p)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", "", errors.New("unable to find configuration file in archive")
		}
		if err != nil {
			return "", "", err
		}
		switch h.Name {
		case lxcConfEntry:
			b, err := io.ReadAll(tr)
			return string(b), "lxc", err
		case qemuConfEntry:
			b, err := io.ReadAll(tr)
			return string(b), "qemu", err
		}
	}
}

// ExtractLXC empties root and extracts the archive's rootfs into it.
func ExtractLXC(p, root string, progress func(int64) error) (int64, error) {
	rc, err := Open(p)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := EmptyDir(root); err != nil {
		return 0, err
	}
	tr := tar.NewReader(rc)
	var total int64
	type dirTime struct {
		path string
		mt   time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
		if h.Name == lxcConfEntry || h.Name == lxcFwEntry {
			continue
		}
		rel := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if rel == "." || rel == "" {
			_ = os.Chmod(root, fs.FileMode(h.Mode).Perm())
			dirs = append(dirs, dirTime{root, h.ModTime})
			continue
		}
		if strings.HasPrefix(rel, "../") || rel == ".." || strings.HasPrefix(rel, "/") {
			return total, fmt.Errorf("tar: refusing unsafe path %q", h.Name)
		}
		dst := filepath.Join(root, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return total, err
			}
			_ = os.Chmod(dst, fs.FileMode(h.Mode).Perm())
			dirs = append(dirs, dirTime{dst, h.ModTime})
		case tar.TypeSymlink:
			_ = os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return total, err
			}
		case tar.TypeReg:
			_ = os.MkdirAll(filepath.Dir(dst), 0o755)
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fs.FileMode(h.Mode).Perm())
			if err != nil {
				return total, err
			}
			n, err := copyWithProgress(f, tr, progress)
			total += n
			cerr := f.Close()
			if err != nil {
				return total, err
			}
			if cerr != nil {
				return total, cerr
			}
			_ = os.Chmod(dst, fs.FileMode(h.Mode).Perm())
			_ = os.Chtimes(dst, h.ModTime, h.ModTime)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].path, dirs[i].mt, dirs[i].mt)
	}
	return total, nil
}

func EmptyDir(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		_ = os.Chmod(p, 0o755)
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteQemuTar writes the VM config and disk image (pvesim's stand-in for VMA).
func WriteQemuTar(w io.Writer, disk, conf string, progress func(int64) error) (int64, error) {
	tw := tar.NewWriter(w)
	mt := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: qemuConfEntry, Mode: 0o644, Size: int64(len(conf)), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
		return 0, err
	}
	if _, err := tw.Write([]byte(conf)); err != nil {
		return 0, err
	}
	f, err := os.Open(disk)
	if os.IsNotExist(err) {
		// a VM without disks (e.g. left by a failed restore) backs up its config only
		return 0, tw.Close()
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: qemuDiskEntry, Mode: 0o600, Size: fi.Size(), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
		return 0, err
	}
	n, err := copyWithProgress(tw, f, progress)
	if err != nil {
		return n, err
	}
	return n, tw.Close()
}

// ExtractQemuDisk writes the archive's disk image to disk (via a temp file).
func ExtractQemuDisk(p, disk string, progress func(int64) error) (int64, error) {
	rc, err := Open(p)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return 0, errors.New("no disk image found in archive")
		}
		if err != nil {
			return 0, err
		}
		if h.Name != qemuDiskEntry {
			continue
		}
		_ = os.MkdirAll(filepath.Dir(disk), 0o755)
		f, err := os.OpenFile(disk, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		n, err := copyWithProgress(f, tr, progress)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
}

// CountingWriter counts bytes and can fail like a full disk.
type CountingWriter struct {
	W     io.Writer
	N     int64 // bytes written so far
	Limit int64 // room on the "disk"; <0: unlimited
}

var ErrNoSpace = errors.New("No space left on device") //nolint:staticcheck // PVE's exact message

func (c *CountingWriter) Write(p []byte) (int, error) {
	if c.Limit >= 0 && c.N+int64(len(p)) > c.Limit {
		room := c.Limit - c.N
		if room > 0 {
			k, _ := c.W.Write(p[:room])
			c.N += int64(k)
		}
		return int(max(room, 0)), ErrNoSpace
	}
	k, err := c.W.Write(p)
	c.N += int64(k)
	return k, err
}

// DiskSize is the size of the VM archive's disk image, if it has one.
func DiskSize(p string) (int64, bool) {
	rc, err := Open(p)
	if err != nil {
		return 0, false
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, false
		}
		if h.Name == qemuDiskEntry {
			return h.Size, true
		}
	}
}
