package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newSCP(a *app) *cobra.Command {
	var o reachOptions
	var recursive bool
	cmd := &cobra.Command{
		Use:   "scp [-r] SRC... DST",
		Short: "Copy files to or from a device",
		Long: `Copy files between this machine and a device, over SFTP inside an end-to-end
SSH session. Name the device's side DEVICE:PATH (DEVICE.FLEET:PATH when several
of your fleets have a device of that name); a relative PATH starts in the home
directory of the device's account, and DEVICE: alone is that directory. Either
every SRC or DST is on the device, not both. On Windows, C:\logs (a drive
letter) is a local path: write a device named with one letter DEVICE.FLEET:.

When DST is a directory, each SRC is copied into it; with several SRCs it must
be one. Directories need -r. Symbolic links are followed; other special files
are skipped with a note. A file's permission bits are kept.

On a terminal, each file's progress is shown on standard error. Every copy is
checked: the file on the other side must have the size that was sent.`,
		Example: `  porthole scp kitchen-amp:/var/log/amp.log .
  porthole scp -r ./firmware kitchen-amp.acme:/tmp/
  porthole scp a.conf b.conf kitchen-amp:/etc/amp/`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := planSCP(args)
			if err != nil {
				return err
			}
			o.device = plan.device
			return a.runSCP(cmd.Context(), o, plan, recursive)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy directories and everything in them")
	reachFlags(a, cmd, &o)
	return cmd
}

// scpArg is one SRC or DST of scp.
type scpArg struct {
	device string // DEVICE as written; "" for a local path
	path   string
}

// parseSCPArg reads DEVICE:PATH, or a local path. As with scp, a colon
// makes a remote path only when what comes before it is a device name
// (dev1, dev1.acme, acme/dev1); a local name with a colon can be written
// ./name:with:colons or as an absolute path (isLocalPath).
func parseSCPArg(arg string) scpArg {
	if isLocalPath(runtime.GOOS, arg) {
		return scpArg{path: arg}
	}
	dev, p, ok := strings.Cut(arg, ":")
	if !ok {
		return scpArg{path: arg}
	}
	if _, err := parseDeviceRef(dev, ""); err != nil {
		return scpArg{path: arg}
	}
	if p == "" {
		p = "." // DEVICE: is the home directory, as with scp
	}
	return scpArg{device: dev, path: p}
}

// isLocalPath reports whether arg is a local path on goos whatever colon
// it holds: one that starts with / or . (as with scp), and on Windows one
// that starts with \ or a drive letter (C:\logs, c:logs), since a device
// may be named c but a drive may be written C: or c:. A device named with
// one letter is then written DEVICE.FLEET:PATH.
func isLocalPath(goos, arg string) bool {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return true
	}
	if goos != "windows" {
		return false
	}
	if strings.HasPrefix(arg, `\`) {
		return true
	}
	return len(arg) >= 2 && arg[1] == ':' && ('a' <= arg[0]|0x20 && arg[0]|0x20 <= 'z')
}

// checkLocalName refuses a name that the device gave a file before it
// names one here: a device (its SFTP server) that listed "../x" or "a/b",
// or on Windows "..\x", "C:x", "x:stream" or CON, would otherwise have a
// copy write outside its destination, into an alternate data stream, or to
// a device.
func checkLocalName(goos, name string) error {
	bad := "/\x00"
	if goos == "windows" {
		bad = "/\x00\\:"
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, bad) ||
		(goos == "windows" && windowsReservedName(name)) {
		return fmt.Errorf("%q cannot be a file name here", name)
	}
	return nil
}

// windowsReservedName reports whether name is one of the devices Windows
// keeps in every directory (CON, NUL, COM1, …), with or without an
// extension, which a file cannot be called.
func windowsReservedName(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return '1' <= base[3] && base[3] <= '9'
	}
	return false
}

// uploadPerm is the permission a local file or directory gets on the
// device: its own, and on Windows, where Go makes it up from the read-only
// attribute (0666 or 0444, and 0777 for a directory), without write for
// group and others, as a umask of 022 would.
func uploadPerm(goos string, mode fs.FileMode) fs.FileMode {
	if goos == "windows" {
		return mode.Perm() &^ 0o022
	}
	return mode.Perm()
}

// scpPlan is a copy between this machine and one device.
type scpPlan struct {
	device  string
	upload  bool     // sources are local, dst is on the device
	sources []string // paths on their side
	dst     string
}

func planSCP(args []string) (scpPlan, error) {
	dst := parseSCPArg(args[len(args)-1])
	var srcs []scpArg
	for _, a := range args[:len(args)-1] {
		srcs = append(srcs, parseSCPArg(a))
	}
	p := scpPlan{dst: dst.path, upload: dst.device != "", device: dst.device}
	for _, s := range srcs {
		switch {
		case s.device != "" && dst.device != "":
			return scpPlan{}, errors.New("porthole scp copies between this machine and a device, not between two devices: copy to this machine first")
		case s.device == "" && dst.device == "":
			if len(srcs) > 1 && slicesAnyRemote(srcs) {
				return scpPlan{}, errors.New("the sources must all be on the device or all on this machine")
			}
			return scpPlan{}, errors.New("neither source nor destination is on a device: write DEVICE:PATH, for example dev1:/tmp/log.txt")
		case s.device != "" && p.device != "" && s.device != p.device:
			return scpPlan{}, fmt.Errorf("the sources are on two devices, %s and %s: copy from one at a time", p.device, s.device)
		case s.device != "":
			p.device = s.device
		}
		p.sources = append(p.sources, s.path)
	}
	return p, nil
}

func slicesAnyRemote(args []scpArg) bool {
	for _, a := range args {
		if a.device != "" {
			return true
		}
	}
	return false
}

func (a *app) runSCP(ctx context.Context, o reachOptions, plan scpPlan, recursive bool) error {
	// A missing local source is said before any session opens.
	if plan.upload {
		for _, src := range plan.sources {
			fi, err := os.Stat(src)
			if err != nil {
				return localErr(err, src)
			}
			if fi.IsDir() && !recursive {
				return fmt.Errorf("%s is a directory: copy it with -r", src)
			}
		}
	}
	ctx, stop := withSignals(ctx)
	defer stop()
	l, client, err := a.reach(ctx, o)
	if err != nil {
		return err
	}
	defer l.close()
	defer context.AfterFunc(ctx, l.close)() // Ctrl-C cuts a copy short
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return l.lost(ctx, fmt.Errorf("starting SFTP: %w", err))
	}
	defer sc.Close()
	c := &copier{sc: sc, device: l.device.Name, recursive: recursive, errw: a.io.Err,
		tty: terminalFd(a.io.Err) >= 0, now: a.now}
	start := a.now()
	for _, src := range plan.sources {
		if plan.upload {
			err = c.upload(src, plan.dst, len(plan.sources) > 1)
		} else {
			err = c.download(src, plan.dst, len(plan.sources) > 1)
		}
		if werr := c.wait(); err == nil {
			err = werr
		}
		if c.tty && c.files != nil {
			fmt.Fprint(a.io.Err, "\r\033[K")
		}
		c.files = nil // the next source, a single file, has a progress bar of its own
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ue *userError
			if !errors.As(err, &ue) {
				if w := l.why(ctx); w != "" {
					return &userError{msg: w, err: err}
				}
			}
			return err
		}
	}
	dir := "from"
	if plan.upload {
		dir = "to"
	}
	fmt.Fprintf(a.io.Err, "copied %s (%s) %s %s in %s\n", plural(c.nfiles, "file"), formatBytes(c.bytes), dir, l.device.Name,
		elapsed(a.now().Sub(start)))
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// maxDepth bounds how deep -r goes, since symbolic links are followed and
// may loop.
const maxDepth = 64

// copier copies files and directories between this machine and a device.
type copier struct {
	sc        *sftp.Client
	device    string
	recursive bool
	errw      io.Writer
	tty       bool // errw is a terminal: show progress bars
	now       func() time.Time

	// files copies regular files, up to filesAtOnce at a time: with many
	// small files the round trips of opening, writing, closing and
	// checking each one, not the bytes, take the time. Directories are
	// walked (and made) in order; wait joins the copies under way.
	files *errgroup.Group

	mu     sync.Mutex // guards the counts
	nfiles int
	bytes  int64
}

// filesAtOnce is how many files a copy moves at once.
const filesAtOnce = 8

// count adds one copied file of n bytes; during a directory's copy, on a
// terminal, it says how far the copy has got.
func (c *copier) count(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nfiles++
	c.bytes += n
	if c.tty && c.files != nil {
		fmt.Fprintf(c.errw, "\r\033[Kcopied %s (%s)…", plural(c.nfiles, "file"), formatBytes(c.bytes))
	}
}

// goFile copies one file of a directory in the background, up to
// filesAtOnce at a time; the first failure is what wait returns.
func (c *copier) goFile(copy func() error) {
	if c.files == nil {
		c.files = new(errgroup.Group)
		c.files.SetLimit(filesAtOnce)
	}
	c.files.Go(copy)
}

// wait waits for the files under way and returns the first failure.
func (c *copier) wait() error {
	if c.files == nil {
		return nil
	}
	return c.files.Wait()
}

// remote names a path on the device the way the user writes it.
func (c *copier) remote(p string) string { return c.device + ":" + p }

// upload copies the local src to dst on the device.
func (c *copier) upload(src, dst string, many bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return localErr(err, src)
	}
	target := dst
	rfi, err := c.sc.Stat(dst)
	switch {
	case err == nil && rfi.IsDir():
		target = path.Join(dst, filepath.Base(src))
	case err == nil && many:
		return fmt.Errorf("%s is not a directory, so it cannot take several files", c.remote(dst))
	case errors.Is(err, fs.ErrNotExist) && many:
		return fmt.Errorf("there is no directory %s to copy the files into", c.remote(dst))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return c.remoteErr(err, dst)
	}
	if fi.IsDir() {
		if !c.recursive {
			return fmt.Errorf("%s is a directory: copy it with -r", src)
		}
		return c.uploadDir(src, target, fi, 0)
	}
	return c.uploadFile(src, target, fi)
}

func (c *copier) uploadDir(src, target string, fi fs.FileInfo, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s is more than %d directories deep (a symbolic link loop?)", src, maxDepth)
	}
	if err := c.sc.Mkdir(target); err != nil {
		if st, serr := c.sc.Stat(target); serr != nil || !st.IsDir() {
			return c.createErr(err, target)
		}
	}
	_ = c.sc.Chmod(target, uploadPerm(runtime.GOOS, fi.Mode())|0o700) // the owner must still be able to fill it
	entries, err := os.ReadDir(src)
	if err != nil {
		return localErr(err, src)
	}
	for _, e := range entries {
		p := filepath.Join(src, e.Name())
		efi, err := os.Stat(p) // follows symbolic links, as scp does
		switch {
		case err != nil:
			fmt.Fprintf(c.errw, "porthole: skipping %s: %v\n", p, localErr(err, p))
		case efi.IsDir():
			err = c.uploadDir(p, path.Join(target, e.Name()), efi, depth+1)
		case efi.Mode().IsRegular():
			t := path.Join(target, e.Name())
			c.goFile(func() error { return c.uploadFile(p, t, efi) })
		default:
			fmt.Fprintf(c.errw, "porthole: skipping %s: not a regular file or directory\n", p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) uploadFile(src, target string, fi fs.FileInfo) error {
	lf, err := os.Open(src)
	if err != nil {
		return localErr(err, src)
	}
	defer lf.Close()
	rf, err := c.sc.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return c.createErr(err, target)
	}
	_ = rf.Chmod(uploadPerm(runtime.GOOS, fi.Mode()))
	bar := c.bar(filepath.Base(src), fi.Size())
	n, err := rf.ReadFrom(&countingReader{r: lf, size: fi.Size(), bar: bar})
	if cerr := rf.Close(); err == nil {
		err = cerr
	}
	bar.finish()
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, c.remote(target), err)
	}
	st, err := c.sc.Stat(target)
	if err != nil {
		return c.remoteErr(err, target)
	}
	if st.Size() != n {
		return fmt.Errorf("%s has %d bytes after the copy, not the %d sent: the copy is incomplete", c.remote(target), st.Size(), n)
	}
	if n != fi.Size() {
		return fmt.Errorf("%s changed size while it was copied (%d bytes, then %d): copy it again", src, fi.Size(), n)
	}
	c.count(n)
	return nil
}

// download copies src on the device to the local dst.
func (c *copier) download(src, dst string, many bool) error {
	rfi, err := c.sc.Stat(src)
	if err != nil {
		return c.remoteErr(err, src)
	}
	target := dst
	lfi, err := os.Stat(dst)
	switch {
	case err == nil && lfi.IsDir():
		if err := checkLocalName(runtime.GOOS, path.Base(src)); err != nil {
			return fmt.Errorf("%s: %w: name the copy, as in porthole scp %s %s", c.remote(src), err, c.remote(src), filepath.Join(dst, "NAME"))
		}
		target = filepath.Join(dst, path.Base(src))
	case err == nil && many:
		return fmt.Errorf("%s is not a directory, so it cannot take several files", dst)
	case errors.Is(err, fs.ErrNotExist) && many:
		return fmt.Errorf("there is no directory %s to copy the files into", dst)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return localErr(err, dst)
	}
	if rfi.IsDir() {
		if !c.recursive {
			return fmt.Errorf("%s is a directory: copy it with -r", c.remote(src))
		}
		return c.downloadDir(src, target, rfi, 0)
	}
	if !rfi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", c.remote(src))
	}
	return c.downloadFile(src, target, rfi)
}

func (c *copier) downloadDir(src, target string, fi fs.FileInfo, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s is more than %d directories deep (a symbolic link loop?)", c.remote(src), maxDepth)
	}
	if err := os.Mkdir(target, fi.Mode().Perm()|0o700); err != nil {
		if st, serr := os.Stat(target); serr != nil || !st.IsDir() {
			return localErr(err, target)
		}
	}
	entries, err := c.sc.ReadDir(src)
	if err != nil {
		return c.remoteErr(err, src)
	}
	for _, e := range entries {
		p := path.Join(src, e.Name())
		if err := checkLocalName(runtime.GOOS, e.Name()); err != nil {
			fmt.Fprintf(c.errw, "porthole: skipping %s: %v\n", c.remote(p), err)
			continue
		}
		efi := e
		if e.Mode()&fs.ModeSymlink != 0 {
			if efi, err = c.sc.Stat(p); err != nil { // follow it, as scp does
				fmt.Fprintf(c.errw, "porthole: skipping %s: %v\n", c.remote(p), c.remoteErr(err, p))
				continue
			}
		}
		switch {
		case efi.IsDir():
			err = c.downloadDir(p, filepath.Join(target, e.Name()), efi, depth+1)
		case efi.Mode().IsRegular():
			t := filepath.Join(target, e.Name())
			c.goFile(func() error { return c.downloadFile(p, t, efi) })
		default:
			fmt.Fprintf(c.errw, "porthole: skipping %s: not a regular file or directory\n", c.remote(p))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) downloadFile(src, target string, fi fs.FileInfo) error {
	rf, err := c.sc.Open(src)
	if err != nil {
		return c.remoteErr(err, src)
	}
	defer rf.Close()
	lf, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return localErr(err, target)
	}
	bar := c.bar(path.Base(src), fi.Size())
	n, err := rf.WriteTo(&countingWriter{w: lf, bar: bar})
	if cerr := lf.Close(); err == nil {
		err = cerr
	}
	bar.finish()
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", c.remote(src), target, err)
	}
	st, err := os.Stat(target)
	if err != nil {
		return localErr(err, target)
	}
	if st.Size() != n {
		return fmt.Errorf("%s has %d bytes after the copy, not the %d received: the copy is incomplete", target, st.Size(), n)
	}
	if n != fi.Size() {
		return fmt.Errorf("%s had %d bytes but %d arrived (it changed while it was copied?): copy it again", c.remote(src), fi.Size(), n)
	}
	c.count(n)
	return nil
}

// bar is a progress bar for one file on a terminal, else one that draws
// nothing.
func (c *copier) bar(name string, size int64) *fileBar {
	if !c.tty || c.files != nil {
		// Several files at once share the terminal: count tells how far
		// the copy has got instead.
		return &fileBar{}
	}
	return &fileBar{b: newTransferBar(c.errw, c.now, name, size)}
}

// fileBar is a transferBar that may be absent.
type fileBar struct{ b *transferBar }

func (f *fileBar) add(n int) {
	if f.b != nil {
		f.b.add(n)
	}
}

func (f *fileBar) finish() {
	if f.b != nil {
		f.b.finish()
	}
}

// countingReader counts what is read for the progress bar. Size lets the
// SFTP client send a known size with several writes in flight.
type countingReader struct {
	r    io.Reader
	size int64
	bar  *fileBar
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.bar.add(n)
	return n, err
}

func (r *countingReader) Size() int64 { return r.size }

type countingWriter struct {
	w   io.Writer
	bar *fileBar
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.bar.add(n)
	return n, err
}

// remoteErr says what went wrong with path p on the device.
func (c *copier) remoteErr(err error, p string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &userError{msg: "no such file or directory: " + c.remote(p), err: err}
	case errors.Is(err, fs.ErrPermission):
		return &userError{msg: "permission denied: " + c.remote(p), err: err}
	}
	return fmt.Errorf("%s: %w", c.remote(p), err)
}

// createErr says why p could not be created on the device.
func (c *copier) createErr(err error, p string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &userError{msg: fmt.Sprintf("cannot create %s: there is no directory %s", c.remote(p), path.Dir(p)), err: err}
	case errors.Is(err, fs.ErrPermission):
		return &userError{msg: fmt.Sprintf("cannot create %s: permission denied", c.remote(p)), err: err}
	}
	return fmt.Errorf("cannot create %s: %w", c.remote(p), err)
}

// localErr says what went wrong with the local path p.
func localErr(err error, p string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &userError{msg: "no such file or directory: " + p, err: err}
	case errors.Is(err, fs.ErrPermission):
		return &userError{msg: "permission denied: " + p, err: err}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &userError{msg: fmt.Sprintf("%s: %v", p, pe.Err), err: err}
	}
	return err
}
