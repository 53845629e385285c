package agentssh

import (
	"encoding/binary"
	"path"
	"sync"
)

// sftpTap watches an SFTP version 3 stream (draft-ietf-secsh-filexfer-02)
// in both directions and reports file operations, without changing a byte.
// It watches the stream rather than hooking a server so that SFTP is
// recorded alike whether it is served inside the agent or by a program
// running as another user.
//
// Requests and their answers are matched by request id: OPEN is answered
// by HANDLE (then READ and WRITE on that handle count bytes until CLOSE)
// or STATUS; REMOVE, RENAME, MKDIR, ... by STATUS. A stream it cannot
// frame (a packet longer than maxSFTPPacket) stops the tap, not the
// transfer.
type sftpTap struct {
	base   string       // where relative paths start
	report func(SFTPOp) // called with mu held

	mu       sync.Mutex
	in, out  sftpFramer           // client to server, server to client
	pending  map[uint32]*sftpOp   // by request id: operations waiting for an answer
	reads    map[uint32]*openFile // by READ request id: the file read
	handles  map[string]*openFile // open files by handle
	broken   bool
	finished bool
}

// sftpOp is an operation waiting for its answer.
type sftpOp struct {
	op   SFTPOp
	open *openFile // for OPEN: the file, if a handle comes back
}

type openFile struct {
	path          string
	write         bool
	read, written int64
}

const (
	maxSFTPPacket = 1 << 20 // pkg/sftp and OpenSSH refuse more than 256 KiB
	maxSFTPPrefix = 16 << 10
	maxSFTPTrack  = 4096 // pending requests, reads or handles followed at once
)

// SFTP packet types and open flags (draft 02, sections 3 and 6.3).
const (
	fxpOpen     = 3
	fxpClose    = 4
	fxpRead     = 5
	fxpWrite    = 6
	fxpSetstat  = 9
	fxpFsetstat = 10
	fxpOpendir  = 11
	fxpRemove   = 13
	fxpMkdir    = 14
	fxpRmdir    = 15
	fxpRename   = 18
	fxpSymlink  = 20
	fxpStatus   = 101
	fxpHandle   = 102
	fxpData     = 103
	fxpExtended = 200

	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
)

var sftpStatusText = map[uint32]string{
	1: "end of file", 2: "no such file", 3: "permission denied", 4: "failure",
	5: "bad message", 8: "operation not supported",
}

func newSFTPTap(base string, report func(SFTPOp)) *sftpTap {
	return &sftpTap{
		base: base, report: report,
		pending: map[uint32]*sftpOp{}, reads: map[uint32]*openFile{}, handles: map[string]*openFile{},
	}
}

// fromClient watches bytes the engineer's client sent.
func (t *sftpTap) fromClient(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.broken && !t.in.feed(p, t.request) {
		t.broken = true
	}
}

// fromServer watches bytes the server answered.
func (t *sftpTap) fromServer(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.broken && !t.out.feed(p, t.answer) {
		t.broken = true
	}
}

// end reports the files still open when the stream ends.
func (t *sftpTap) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished {
		return
	}
	t.finished = true
	for h, f := range t.handles {
		delete(t.handles, h)
		t.closed(f)
	}
}

func (t *sftpTap) abs(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(t.base, p)
	}
	return path.Clean(p)
}

func (t *sftpTap) wait(id uint32, op *sftpOp) {
	if len(t.pending) < maxSFTPTrack {
		t.pending[id] = op
	}
}

// request handles one client packet (or its first maxSFTPPrefix bytes).
func (t *sftpTap) request(b []byte) {
	r := sftpReader{b: b}
	typ := r.u8()
	if typ == 1 { // INIT has a version, no id
		return
	}
	id := r.u32()
	if r.bad {
		return
	}
	switch typ {
	case fxpOpen:
		name, flags := r.str(), r.u32()
		if r.bad {
			return
		}
		write := flags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0
		op := "read"
		if write {
			op = "write"
		}
		f := &openFile{path: t.abs(name), write: write}
		t.wait(id, &sftpOp{op: SFTPOp{Op: op, Path: f.path}, open: f})
	case fxpClose:
		h := r.str()
		if f, ok := t.handles[h]; ok && !r.bad {
			delete(t.handles, h)
			t.closed(f)
		}
	case fxpRead:
		h := r.str()
		if f, ok := t.handles[h]; ok && !r.bad && len(t.reads) < maxSFTPTrack {
			t.reads[id] = f
		}
	case fxpWrite:
		h := r.str()
		r.u64() // offset
		n := r.u32()
		if f, ok := t.handles[h]; ok && !r.bad {
			f.written += int64(n)
		}
	case fxpSetstat, fxpOpendir, fxpRemove, fxpMkdir, fxpRmdir:
		p := r.str()
		if !r.bad {
			t.wait(id, &sftpOp{op: SFTPOp{Op: opNames[typ], Path: t.abs(p)}})
		}
	case fxpFsetstat:
		if f, ok := t.handles[r.str()]; ok && !r.bad {
			t.wait(id, &sftpOp{op: SFTPOp{Op: "setstat", Path: f.path}})
		}
	case fxpRename:
		from, to := r.str(), r.str()
		if !r.bad {
			t.wait(id, &sftpOp{op: SFTPOp{Op: "rename", Path: t.abs(from), Target: t.abs(to)}})
		}
	case fxpSymlink:
		// OpenSSH sends the target first and the link second (the
		// draft says the reverse); pkg/sftp follows OpenSSH.
		target, link := r.str(), r.str()
		if !r.bad {
			t.wait(id, &sftpOp{op: SFTPOp{Op: "symlink", Path: t.abs(link), Target: target}})
		}
	case fxpExtended:
		switch r.str() {
		case "posix-rename@openssh.com":
			from, to := r.str(), r.str()
			if !r.bad {
				t.wait(id, &sftpOp{op: SFTPOp{Op: "rename", Path: t.abs(from), Target: t.abs(to)}})
			}
		case "hardlink@openssh.com":
			from, to := r.str(), r.str()
			if !r.bad {
				t.wait(id, &sftpOp{op: SFTPOp{Op: "link", Path: t.abs(to), Target: t.abs(from)}})
			}
		}
	}
}

var opNames = map[byte]string{
	fxpSetstat: "setstat", fxpOpendir: "list", fxpRemove: "remove", fxpMkdir: "mkdir", fxpRmdir: "rmdir",
}

// answer handles one server packet (or its first maxSFTPPrefix bytes).
func (t *sftpTap) answer(b []byte) {
	r := sftpReader{b: b}
	typ := r.u8()
	id := r.u32()
	if r.bad {
		return
	}
	switch typ {
	case fxpStatus:
		delete(t.reads, id)
		op, ok := t.pending[id]
		if !ok {
			return
		}
		delete(t.pending, id)
		if code := r.u32(); code != 0 {
			msg := r.str()
			if r.bad || msg == "" {
				msg = sftpStatusText[code]
				if msg == "" {
					msg = "failure"
				}
			}
			op.op.Err = msg
		}
		t.report(op.op)
	case fxpHandle:
		op, ok := t.pending[id]
		if !ok {
			return
		}
		delete(t.pending, id)
		h := r.str()
		if op.open != nil && !r.bad {
			if len(t.handles) < maxSFTPTrack {
				t.handles[h] = op.open
			} else {
				t.report(op.op) // too many open files to follow: report the open alone
			}
			return
		}
		t.report(op.op) // OPENDIR
	case fxpData:
		if f, ok := t.reads[id]; ok {
			delete(t.reads, id)
			if n := r.u32(); !r.bad {
				f.read += int64(n)
			}
		}
	}
}

// closed reports a file when it is closed (or the stream ends).
func (t *sftpTap) closed(f *openFile) {
	if f.write {
		t.report(SFTPOp{Op: "write", Path: f.path, Bytes: f.written})
		if f.read == 0 {
			return
		}
	}
	t.report(SFTPOp{Op: "read", Path: f.path, Bytes: f.read})
}

// sftpFramer cuts a byte stream into SFTP packets, keeping only the first
// maxSFTPPrefix bytes of each: enough for every field the tap reads (a
// WRITE's data length comes before its data).
type sftpFramer struct {
	buf  []byte // the packet's length and first bytes
	size int    // the packet's length with its 4 length bytes; 0 until known
	seen int    // bytes of the packet seen so far
}

// feed frames p and calls packet with each complete packet's kept bytes
// (after the length). It returns false on a stream it cannot frame.
func (f *sftpFramer) feed(p []byte, packet func([]byte)) bool {
	for len(p) > 0 {
		if f.size == 0 {
			n := min(4-len(f.buf), len(p))
			f.buf = append(f.buf, p[:n]...)
			f.seen += n
			p = p[n:]
			if len(f.buf) < 4 {
				return true
			}
			l := binary.BigEndian.Uint32(f.buf)
			if l == 0 || l > maxSFTPPacket {
				return false
			}
			f.size = int(l) + 4
		}
		n := min(len(p), f.size-f.seen)
		if keep := maxSFTPPrefix - len(f.buf); keep > 0 {
			f.buf = append(f.buf, p[:min(n, keep)]...)
		}
		f.seen += n
		p = p[n:]
		if f.seen == f.size {
			packet(f.buf[4:])
			f.buf, f.size, f.seen = f.buf[:0], 0, 0
		}
	}
	return true
}

// sftpReader reads SFTP fields; past the end it sets bad and yields zeros.
type sftpReader struct {
	b   []byte
	bad bool
}

func (r *sftpReader) u8() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *sftpReader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *sftpReader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *sftpReader) str() string {
	n := r.u32()
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
