package api

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	// The generated client's one dependency. Importing it here keeps it in
	// go.mod and go.sum, so the module cache that built this test builds
	// the client too, without the network.
	_ "github.com/oapi-codegen/runtime"
)

// clientProgram uses the client oapi-codegen generates: it calls a get, a
// creation, lists (one with a repeated query parameter) and an error of
// the server at os.Args[1] with the bearer
// token os.Args[2], trusting the certificate in the PEM file os.Args[3],
// and prints what it read.
const clientProgram = `package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"porthole.test/openapiclient/portholeclient"
)

func main() {
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(url, token, certFile string) error {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	c, err := portholeclient.NewClientWithResponses(url, portholeclient.WithHTTPClient(hc),
		portholeclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	if err != nil {
		return err
	}
	ctx := context.Background()
	me, err := c.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil {
		return fmt.Errorf("GetMe: %v %s", err, me.Body)
	}
	fmt.Println("me", me.JSON200.Email, me.JSON200.Admin)
	created, err := c.PostFleetsWithResponse(ctx, portholeclient.CreateFleetRequest{Name: os.Args[4]})
	if err != nil || created.JSON201 == nil {
		return fmt.Errorf("PostFleets: %v %s", err, created.Body)
	}
	fmt.Println("created", created.JSON201.Name)
	fleets, err := c.GetFleetsWithResponse(ctx)
	if err != nil || fleets.JSON200 == nil {
		return fmt.Errorf("GetFleets: %v %s", err, fleets.Body)
	}
	for _, f := range *fleets.JSON200 {
		if f.Name == os.Args[4] {
			fmt.Println("listed", f.Name, *f.Role)
		}
	}
	recs, err := c.GetRecordingsWithResponse(ctx, &portholeclient.GetRecordingsParams{Session: &[]string{"ses_a", "ses_b"}})
	if err != nil || recs.JSON200 == nil {
		return fmt.Errorf("GetRecordings: %v %s", err, recs.Body)
	}
	fmt.Println("recordings", len(*recs.JSON200))
	missing, err := c.GetDevicesIdWithResponse(ctx, "nothing")
	if err != nil || missing.JSONDefault == nil {
		return fmt.Errorf("GetDevicesId: %v %s", err, missing.Body)
	}
	fmt.Println("error", missing.StatusCode(), missing.JSONDefault.Error.Code)
	return nil
}
`

// TestOpenAPIClient proves the document usable: oapi-codegen (the go.mod
// tool, pinned) generates a Go client of it, go vet passes the client, and
// a program built with it talks to the fixture's server. Its packages come
// from the module cache, so nothing is fetched; it takes a few seconds once
// oapi-codegen is built (the first run builds it too).
func TestOpenAPIClient(t *testing.T) {
	if testing.Short() {
		t.Skip("generates, vets and runs a client: not with -short")
	}
	t.Parallel()
	root, err := filepath.Abs("..") // the module's
	must(t, err)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(content), 0o644))
		return path
	}
	doc := write("openapi.json", string(fx.srv.openapi))
	cert := write("server.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.ts.Certificate().Raw})))
	// A module of its own for the client, in a workspace with this one,
	// which picks the versions of what it imports.
	write("client/go.mod", "module porthole.test/openapiclient\n")
	write("client/main.go", clientProgram)

	work := write("go.work", "go "+strings.TrimPrefix(runtime.Version(), "go")+"\n\nuse (\n\t./client\n\t"+root+"\n)\n")
	client := filepath.Join(dir, "client")

	// goTool runs the go command in dir, in the workspace or (in root) in
	// this module alone.
	goTool := func(in string, args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(t.Context(), "go", args...) // go test puts its own go first in PATH
		cmd.Dir = in
		cmd.Env = append(os.Environ(), "GOWORK="+work)
		if in == root {
			cmd.Env = append(os.Environ(), "GOWORK=off")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s: %s", args[0], time.Since(start).Round(time.Millisecond))
		return string(out)
	}
	goTool(root, "tool", "oapi-codegen", "-generate", "types,client", "-package", "portholeclient",
		"-o", filepath.Join(client, "portholeclient", "client.gen.go"), doc)
	goTool(client, "vet", "./...")
	fleet := fx.name("fleet")
	got := goTool(client, "run", ".", fx.ts.URL, fx.tokens["admin"], cert, fleet)
	want := "me admin@example.com true\ncreated " + fleet + "\nlisted " + fleet + " admin\nrecordings 0\nerror 404 not_found\n"
	if got != want {
		t.Errorf("the program with the generated client printed\n%s\nwant\n%s", got, want)
	}
}
