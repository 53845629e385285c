//go:build js && wasm

// Command porthole-webterm is the web console's terminal's SSH client,
// compiled to WebAssembly (GOOS=js GOARCH=wasm) by make web and loaded by
// the terminal page only. It gives the page globalThis.portholeWebterm
// (then calls globalThis.portholeWebtermReady, if the page set it):
//
//	connect({socket, early, helloSent, key, papers, device, size, onOutput, askCode, onStep}): Promise<handle>
//	    socket is the relay's WebSocket (subprotocol
//	    porthole-relay-browser.v2, binaryType "arraybuffer"), open, and
//	    early the messages (ArrayBuffer) that came on it so far and were not
//	    read: the client takes it over in this call. helloSent: the page
//	    has said hello on it and sent webssh.ClientVersion's line
//	    (webssh.Options.HelloSent). key is the session key, which the page
//	    made with WebCrypto (Ed25519, not extractable): {publicKey: the
//	    raw 32 bytes, sign(Uint8Array): Promise<Uint8Array>}. The client
//	    says hello to the relay (unless helloSent), signed with it over the
//	    relay's challenge, and runs the SSH
//	    to the device checked against papers (the API's answer, as JSON),
//	    and a shell in a terminal of size() (a Promise of [cols, rows],
//	    asked for as the shell starts); onOutput
//	    gets the shell's output (Uint8Array), askCode(prompt, why) is asked
//	    for the owner's support code and answers a Promise of it; onStep, if
//	    given, is told the name of each step of the way as it is done
//	    (webssh.Options.Trace), for the page's timings
//	warm(): Promise, runs the client's handshake in memory (webssh.Warm),
//	    which the page does while it is prerendered
//	handle.write(Uint8Array), handle.resize(cols, rows), handle.close(),
//	handle.upload(name, Uint8Array, onProgress(done, size)): Promise of the
//	    path written (a new file in the home directory, over SFTP),
//	handle.download(path, onProgress(done, size)): Promise<Uint8Array>,
//	handle.done: a Promise of how the shell ended, in words ("" when the
//	    connection was lost: the session's close reason says why)
//
// Package webssh does the work; this is only the bridge to JavaScript.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall/js"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/webssh"
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("connect", js.FuncOf(connect))
	api.Set("warm", js.FuncOf(func(js.Value, []js.Value) any {
		return promise(func() (any, error) { return js.Undefined(), webssh.Warm() })
	}))
	js.Global().Set("portholeWebterm", api)
	if ready := js.Global().Get("portholeWebtermReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // serve the page's calls for as long as it lives
}

// promise runs f in a goroutine (it may block, which a call from
// JavaScript must not) and answers a Promise of its result.
func promise(f func() (any, error)) js.Value {
	var exec js.Func
	exec = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer exec.Release()
			v, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(exec)
}

// await waits for the Promise p.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- result{v: args[0]}; return nil })
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "cancelled"
		if len(args) > 0 && args[0].Truthy() {
			msg = args[0].Call("toString").String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

func connect(_ js.Value, args []js.Value) any {
	opts := args[0]
	// Taken now, in the page's call, so that no message is missed.
	relay := takeSocket(opts.Get("socket"), opts.Get("early"))
	key, keyErr := newBrowserKey(opts.Get("key"))
	return promise(func() (any, error) {
		if keyErr != nil {
			relay.Close()
			return nil, keyErr
		}
		var papers apitype.CreateSessionResponse
		if err := json.Unmarshal([]byte(opts.Get("papers").String()), &papers); err != nil {
			relay.Close()
			return nil, errors.New("the server's answer for the session is not readable: " + err.Error())
		}
		device := opts.Get("device").String()
		trace := func(string) {}
		if onStep := opts.Get("onStep"); onStep.Type() == js.TypeFunction {
			trace = func(step string) { onStep.Invoke(step) }
		}
		ctx, cancel := context.WithCancel(context.Background())
		askCode, size := opts.Get("askCode"), opts.Get("size")
		sh, err := webssh.KeyOf(key).Connect(ctx, relay, webssh.Options{
			Papers: &papers, Device: device, Trace: trace,
			HelloSent: opts.Get("helloSent").Truthy(),
			Size: func(ctx context.Context) (int, int, error) {
				v, err := await(ctx, size.Invoke())
				if err != nil {
					return 0, 0, err
				}
				return v.Index(0).Int(), v.Index(1).Int(), nil
			},
			Code: func(ctx context.Context, prompt, why string) (string, error) {
				v, err := await(ctx, askCode.Invoke(prompt, why))
				if err != nil {
					return "", err
				}
				return v.String(), nil
			},
		})
		if err != nil {
			cancel()
			return nil, err
		}
		onOutput := opts.Get("onOutput")
		outputDone := make(chan struct{})
		go func() {
			defer close(outputDone)
			buf := make([]byte, 32<<10)
			for {
				n, err := sh.Output.Read(buf)
				if n > 0 {
					b := js.Global().Get("Uint8Array").New(n)
					js.CopyBytesToJS(b, buf[:n])
					onOutput.Invoke(b)
				}
				if err != nil {
					return
				}
			}
		}()
		// Keystrokes and resizes go out in the order they came, from one
		// goroutine: a call from JavaScript must not block.
		var inputs queue
		go inputs.run(ctx)
		h := js.Global().Get("Object").New()
		h.Set("write", js.FuncOf(func(_ js.Value, a []js.Value) any {
			b := make([]byte, a[0].Get("length").Int())
			js.CopyBytesToGo(b, a[0])
			inputs.add(func() { _, _ = sh.Write(b) })
			return nil
		}))
		h.Set("resize", js.FuncOf(func(_ js.Value, a []js.Value) any {
			cols, rows := a[0].Int(), a[1].Int()
			inputs.add(func() { _ = sh.Resize(cols, rows) })
			return nil
		}))
		h.Set("close", js.FuncOf(func(js.Value, []js.Value) any {
			cancel()
			go sh.Close()
			return nil
		}))
		h.Set("upload", js.FuncOf(func(_ js.Value, a []js.Value) any {
			name, onProgress := a[0].String(), a[2]
			data := make([]byte, a[1].Get("length").Int())
			js.CopyBytesToGo(data, a[1])
			return promise(func() (any, error) {
				return sh.Upload(name, data, func(done int64) { onProgress.Invoke(float64(done), float64(len(data))) })
			})
		}))
		h.Set("download", js.FuncOf(func(_ js.Value, a []js.Value) any {
			p, onProgress := a[0].String(), a[1]
			return promise(func() (any, error) {
				b, err := sh.Download(p, func(done, size int64) { onProgress.Invoke(float64(done), float64(size)) })
				if err != nil {
					return nil, err
				}
				v := js.Global().Get("Uint8Array").New(len(b))
				js.CopyBytesToJS(v, b)
				return v, nil
			})
		}))
		h.Set("done", promise(func() (any, error) {
			err := sh.Wait()
			<-outputDone
			sh.Close()
			cancel()
			return webssh.ExitWords(err, device), nil
		}))
		return h, nil
	})
}

// queue runs functions in the order they were added, in one goroutine;
// adding never blocks.
type queue struct {
	mu    sync.Mutex
	fs    []func()
	ready chan struct{}
	once  sync.Once
}

func (q *queue) init() { q.once.Do(func() { q.ready = make(chan struct{}, 1) }) }

func (q *queue) add(f func()) {
	q.init()
	q.mu.Lock()
	q.fs = append(q.fs, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) run(ctx context.Context) {
	q.init()
	for {
		select {
		case <-q.ready:
		case <-ctx.Done():
			return
		}
		q.mu.Lock()
		fs := q.fs
		q.fs = nil
		q.mu.Unlock()
		for _, f := range fs {
			f()
		}
	}
}
