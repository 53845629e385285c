package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress is one line on stderr saying what porthole is waiting for and
// for how long ("asking dev1 to connect… 0.3 s"). On a terminal the line
// is redrawn in place as time passes and erased when done; otherwise each
// new message is printed once, as a plain line, so logs stay readable.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu      sync.Mutex // guards the fields below and writes to w
	msg     string     // what is being waited for; "" when nothing is shown
	start   time.Time  // when msg was first shown
	shown   bool       // a line is on the terminal (tty) and must be erased
	stopped chan struct{}
	ticker  *time.Ticker
}

// progressTick is how often a terminal's line is redrawn.
const progressTick = 100 * time.Millisecond

func newProgress(w io.Writer, tty bool, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, now: now}
}

// set shows msg, from now on, replacing what was shown.
func (p *progress) set(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if msg == p.msg {
		return
	}
	p.msg, p.start = msg, p.now()
	if !p.tty {
		fmt.Fprintln(p.w, msg)
		return
	}
	p.drawLocked()
	if p.ticker == nil {
		p.ticker = time.NewTicker(progressTick)
		p.stopped = make(chan struct{})
		go p.tick(p.ticker, p.stopped)
	}
}

func (p *progress) tick(t *time.Ticker, stopped chan struct{}) {
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			if p.msg != "" {
				p.drawLocked()
			}
			p.mu.Unlock()
		case <-stopped:
			return
		}
	}
}

func (p *progress) drawLocked() {
	fmt.Fprint(p.w, "\r\x1b[K"+progressLine(p.msg, p.now().Sub(p.start)))
	p.shown = true
}

// clear erases the line and stops redrawing it; set shows it again.
// Anything else written to stderr (a prompt, an error) comes after clear.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ticker != nil {
		p.ticker.Stop()
		close(p.stopped)
		p.ticker = nil
	}
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
	p.msg = ""
}

// progressLine is msg with how long it has been going on: "0.3 s" under
// ten seconds, then whole seconds, then minutes and seconds.
func progressLine(msg string, d time.Duration) string {
	return msg + " " + elapsed(d)
}

func elapsed(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d >= time.Minute:
		return fmt.Sprintf("%d min %02d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d >= 10*time.Second:
		return fmt.Sprintf("%d s", int(d/time.Second))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// transferBar shows a file copy's progress on a terminal: the name, the
// share done, bytes and rate, redrawn at most every progressTick.
type transferBar struct {
	w     io.Writer
	now   func() time.Time
	name  string
	total int64
	start time.Time

	mu   sync.Mutex
	done int64
	last time.Time // of the last redraw
}

func newTransferBar(w io.Writer, now func() time.Time, name string, total int64) *transferBar {
	b := &transferBar{w: w, now: now, name: name, total: total, start: now()}
	b.draw(false)
	return b
}

// add counts n more bytes, redrawing when enough time has passed.
func (b *transferBar) add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += int64(n)
	if b.now().Sub(b.last) >= progressTick {
		b.drawLocked(false)
	}
}

// finish draws the final state and ends the line.
func (b *transferBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drawLocked(true)
}

func (b *transferBar) draw(final bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drawLocked(final)
}

func (b *transferBar) drawLocked(final bool) {
	b.last = b.now()
	line := transferLine(b.name, b.done, b.total, b.last.Sub(b.start))
	if final {
		fmt.Fprint(b.w, "\r\x1b[K"+line+"\n")
		return
	}
	fmt.Fprint(b.w, "\r\x1b[K"+line)
}

// transferLine is one file's progress: "dump.tar  42%  12.0 MiB / 28.5 MiB
// 4.1 MiB/s".
func transferLine(name string, done, total int64, took time.Duration) string {
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	rate := "-"
	if took > 0 {
		rate = formatBytes(int64(float64(done)/took.Seconds())) + "/s"
	}
	return fmt.Sprintf("%s  %3d%%  %s / %s  %s", name, pct, formatBytes(done), formatBytes(total), rate)
}

// formatBytes says a size in binary units: "512 B", "12.0 KiB", "3.4 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
