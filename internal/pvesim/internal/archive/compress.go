// Package archive holds pvesim's stateless archive formats: the compressors
// vzdump's compress option selects (gzip, zstd, lzo) and the tar payloads
// that stand in for a container's pct archive and a VM's VMA.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"os"
	"strings"
	"time"
)

// --- compression -------------------------------------------------------------
//
// gzip is real gzip (compress/gzip). zstd and lzo archives are valid files of
// their formats that store the data uncompressed: zstd "raw" blocks and lzop
// "stored" blocks, so `zstd -d` / `lzop -d` read them, but they are not
// smaller than the tar.

func CompressExt(c string) string {
	switch c {
	case "gzip":
		return ".gz"
	case "1", "lzo":
		return ".lzo"
	case "zstd":
		return ".zst"
	}
	return ""
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func NewCompressor(w io.Writer, ext string) io.WriteCloser {
	switch ext {
	case ".gz":
		return gzip.NewWriter(w)
	case ".zst":
		return &zstdRawWriter{w: w}
	case ".lzo":
		return &lzopWriter{w: w}
	}
	return nopCloser{w}
}

func Open(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	var r io.Reader = br
	switch {
	case strings.HasSuffix(p, ".gz"), strings.HasSuffix(p, ".tgz"):
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, err
		}
		r = gz
	case strings.HasSuffix(p, ".zst"):
		r = &zstdRawReader{r: br}
	case strings.HasSuffix(p, ".lzo"):
		r = &lzopReader{r: br}
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

const zstdBlock = 128 << 10

type zstdRawWriter struct {
	w       io.Writer
	started bool
	buf     []byte
	err     error
}

func (z *zstdRawWriter) header() {
	if z.started {
		return
	}
	z.started = true
	// magic, frame header descriptor (no size, no checksum), window 128 KiB
	_, z.err = z.w.Write([]byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38})
}

func (z *zstdRawWriter) block(data []byte, last bool) {
	if z.err != nil {
		return
	}
	h := uint32(len(data)) << 3
	if last {
		h |= 1
	}
	if _, z.err = z.w.Write([]byte{byte(h), byte(h >> 8), byte(h >> 16)}); z.err == nil {
		_, z.err = z.w.Write(data)
	}
}

func (z *zstdRawWriter) Write(p []byte) (int, error) {
	z.header()
	n := len(p)
	for len(p) > 0 && z.err == nil {
		room := zstdBlock - len(z.buf)
		if room > len(p) {
			room = len(p)
		}
		z.buf = append(z.buf, p[:room]...)
		p = p[room:]
		if len(z.buf) == zstdBlock {
			z.block(z.buf, false)
			z.buf = z.buf[:0]
		}
	}
	return n, z.err
}

func (z *zstdRawWriter) Close() error {
	z.header()
	z.block(z.buf, true)
	return z.err
}

type zstdRawReader struct {
	r        *bufio.Reader
	inFrame  bool
	remain   int
	rle      bool
	rleByte  byte
	last     bool
	checksum bool
}

func (z *zstdRawReader) Read(p []byte) (int, error) {
	for z.remain == 0 {
		if z.inFrame && z.last {
			if z.checksum {
				if _, err := z.r.Discard(4); err != nil {
					return 0, err
				}
			}
			z.inFrame = false
		}
		if !z.inFrame {
			skipped, err := z.readFrameHeader()
			if err != nil {
				return 0, err
			}
			if skipped {
				continue
			}
		}
		if err := z.readBlockHeader(); err != nil {
			return 0, err
		}
	}
	if len(p) > z.remain {
		p = p[:z.remain]
	}
	if z.rle {
		for i := range p {
			p[i] = z.rleByte
		}
		z.remain -= len(p)
		return len(p), nil
	}
	n, err := z.r.Read(p)
	z.remain -= n
	if err == io.EOF && z.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readFrameHeader reads the next frame's magic and header (io.EOF at the
// end of the stream); a skippable frame is skipped whole and reported.
func (z *zstdRawReader) readFrameHeader() (skipped bool, err error) {
	var magic [4]byte
	if _, err := io.ReadFull(z.r, magic[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return false, errors.New("zstd: truncated frame")
		}
		return false, io.EOF
	}
	m := binary.LittleEndian.Uint32(magic[:])
	if m&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
		var sz [4]byte
		if _, err := io.ReadFull(z.r, sz[:]); err != nil {
			return false, err
		}
		_, err := z.r.Discard(int(binary.LittleEndian.Uint32(sz[:])))
		return true, err
	}
	if m != 0xFD2FB528 {
		return false, errors.New("zstd: not a zstd frame")
	}
	fhd, err := z.r.ReadByte()
	if err != nil {
		return false, err
	}
	// Skip the window descriptor, dictionary id and frame content size.
	skip := 0
	single := fhd&0x20 != 0
	if !single {
		skip++
	}
	skip += []int{0, 1, 2, 4}[fhd&3]
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	skip += fcs
	if _, err := z.r.Discard(skip); err != nil {
		return false, err
	}
	z.inFrame, z.last = true, false
	z.checksum = fhd&4 != 0
	return false, nil
}

// readBlockHeader reads a block header: raw and RLE blocks are read,
// compressed blocks are refused.
func (z *zstdRawReader) readBlockHeader() error {
	var bh [3]byte
	if _, err := io.ReadFull(z.r, bh[:]); err != nil {
		return errors.New("zstd: truncated block")
	}
	h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
	z.last = h&1 != 0
	size := int(h >> 3)
	switch (h >> 1) & 3 {
	case 0:
		z.rle = false
		z.remain = size
	case 1:
		b, err := z.r.ReadByte()
		if err != nil {
			return err
		}
		z.rle, z.rleByte, z.remain = true, b, size
	default:
		return errors.New("zstd: compressed blocks are not supported by pvesim (archive not written by pvesim)")
	}
	return nil
}

const lzopBlock = 256 << 10

var lzopMagic = []byte{0x89, 'L', 'Z', 'O', 0x00, 0x0D, 0x0A, 0x1A, 0x0A}

type lzopWriter struct {
	w       io.Writer
	started bool
	buf     []byte
	err     error
}

func (l *lzopWriter) header() {
	if l.started {
		return
	}
	l.started = true
	var h bytes.Buffer
	be := func(v any) { _ = binary.Write(&h, binary.BigEndian, v) }
	be(uint16(0x1040)) // version
	be(uint16(0x20a0)) // lib version
	be(uint16(0x0940)) // version needed
	h.WriteByte(1)     // method M_LZO1X_1
	h.WriteByte(5)     // level
	be(uint32(0x03000001))
	be(uint32(0o100644))
	be(uint32(time.Now().Unix()))
	be(uint32(0))
	h.WriteByte(0) // no name
	sum := adler32.Checksum(h.Bytes())
	be(sum)
	if _, l.err = l.w.Write(lzopMagic); l.err == nil {
		_, l.err = l.w.Write(h.Bytes())
	}
}

func (l *lzopWriter) flush() {
	if l.err != nil || len(l.buf) == 0 {
		return
	}
	var hdr [12]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(len(l.buf)))
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(l.buf)))
	binary.BigEndian.PutUint32(hdr[8:], adler32.Checksum(l.buf))
	if _, l.err = l.w.Write(hdr[:]); l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
}

func (l *lzopWriter) Write(p []byte) (int, error) {
	l.header()
	n := len(p)
	for len(p) > 0 && l.err == nil {
		room := lzopBlock - len(l.buf)
		if room > len(p) {
			room = len(p)
		}
		l.buf = append(l.buf, p[:room]...)
		p = p[room:]
		if len(l.buf) == lzopBlock {
			l.flush()
		}
	}
	return n, l.err
}

func (l *lzopWriter) Close() error {
	l.header()
	l.flush()
	if l.err == nil {
		_, l.err = l.w.Write([]byte{0, 0, 0, 0})
	}
	return l.err
}

type lzopReader struct {
	r      *bufio.Reader
	init   bool
	flags  uint32
	remain int
	done   bool
}

func (l *lzopReader) Read(p []byte) (int, error) {
	if !l.init {
		l.init = true
		m := make([]byte, 9)
		if _, err := io.ReadFull(l.r, m); err != nil || !bytes.Equal(m, lzopMagic) {
			return 0, errors.New("lzop: bad magic")
		}
		var version uint16
		_ = binary.Read(l.r, binary.BigEndian, &version)
		var u16 uint16
		_ = binary.Read(l.r, binary.BigEndian, &u16) // lib version
		if version >= 0x0940 {
			_ = binary.Read(l.r, binary.BigEndian, &u16)
		}
		_, _ = l.r.ReadByte() // method
		if version >= 0x0940 {
			_, _ = l.r.ReadByte() // level
		}
		_ = binary.Read(l.r, binary.BigEndian, &l.flags)
		skip := 8 // mode + mtime low
		if l.flags&0x800 != 0 {
			skip += 4 // filter
		}
		if version >= 0x0940 {
			skip += 4
		}
		if _, err := l.r.Discard(skip); err != nil {
			return 0, err
		}
		nl, _ := l.r.ReadByte()
		if _, err := l.r.Discard(int(nl) + 4); err != nil {
			return 0, err
		}
	}
	for l.remain == 0 {
		if l.done {
			return 0, io.EOF
		}
		var dst, src uint32
		if err := binary.Read(l.r, binary.BigEndian, &dst); err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		if dst == 0 {
			l.done = true
			return 0, io.EOF
		}
		if err := binary.Read(l.r, binary.BigEndian, &src); err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		skip := 0
		if l.flags&1 != 0 {
			skip += 4
		}
		if l.flags&0x100 != 0 {
			skip += 4 // crc32 d
		}
		if src < dst {
			return 0, errors.New("lzop: compressed blocks are not supported by pvesim (archive not written by pvesim)")
		}
		if _, err := l.r.Discard(skip); err != nil {
			return 0, err
		}
		l.remain = int(dst)
	}
	if len(p) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.r.Read(p)
	l.remain -= n
	if err == io.EOF && l.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
