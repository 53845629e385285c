package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/porthole/porthole/internal/tests3"
	"github.com/porthole/porthole/internal/testwait"
)

// TestUploadS3EndToEnd runs the real binaries with the recordings in S3
// (recordings: s3://..., the secret key in portholed's environment): an
// engineer's command prints a marker on the device, the agent uploads the
// recording into the bucket, `porthole replay` plays the marker from it,
// and the owner link that `porthole-agent status` prints reads a range of
// it. Nothing lands in the data directory's recordings.
func TestUploadS3EndToEnd(t *testing.T) {
	t.Parallel()
	s3 := tests3.Start(t)
	bucket := s3.Bucket(t)
	config := func(data string, apiPort int) string {
		return sessionConfig(t, "15m")(data, apiPort) + fmt.Sprintf(`recordings: s3://%s/porthole/recordings
recordings_s3:
  endpoint: %s
  region: %s
  access_key_id: %s
`, bucket, s3.Endpoint, tests3.Region, tests3.AccessKey)
	}
	srv := newPresenceServerOn(t, "", config, "AWS_SECRET_ACCESS_KEY="+tests3.SecretKey)
	state := srv.enroll(t, "dev1")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentConfig := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(agentConfig, []byte("consent: auto\nsocket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := srv.runAgent(t, state, agentConfig)
	srv.waitPresence(t, "dev1", true, "after the agent started")
	eng := newEngineer(t, srv)

	resp, client := eng.connect(t, "dev1", agent)
	ses := resp.Session.ID
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	const marker = "e2e-recorded-into-s3"
	if out, err := s.CombinedOutput("echo " + marker + "; seq 1 2000"); err != nil || !strings.Contains(string(out), marker) {
		t.Fatalf("the command: %q, %v", out, err)
	}
	if _, err := eng.api.CloseSession(t.Context(), ses); err != nil {
		t.Fatal(err)
	}
	testwait.ForEvery(t, 30*time.Second, 100*time.Millisecond, "the recording complete on the server", func() bool {
		r, err := eng.api.Recording(t.Context(), ses)
		if err != nil {
			t.Fatalf("reading the recording: %v", err)
		}
		return r.Complete
	})

	// In the bucket, under the prefix; not on the server's disk.
	var keys []string
	for o := range s3.Client(t).ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: "porthole/recordings/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if got := strings.Join(keys, "\n"); !strings.Contains(got, "/"+ses+"/0001-exec.cast/00000000000000000000") || !strings.Contains(got, "/"+ses+"/meta.json/") {
		t.Errorf("the bucket holds:\n%s\nwant the session's cast and meta.json", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(srv.config), "recordings")); !os.IsNotExist(err) {
		t.Errorf("the data directory has a recordings directory (%v); the recordings belong in the bucket", err)
	}

	r := MustRun(t, srv.env, "", bins.CLI, "replay", ses, "--exec", "--speed", "100")
	if !strings.Contains(r.Stdout, marker) || !strings.Contains(r.Stdout, "2000") {
		t.Fatalf("porthole replay --exec: stdout %q, stderr %q; want the marker and the output", r.Stdout, r.Stderr)
	}

	// The owner's link, with ranges.
	var link []string
	testwait.ForEvery(t, 20*time.Second, 100*time.Millisecond, "the owner link in porthole-agent status", func() bool {
		r := Run(t, srv.env, "", bins.Agent, "status", "--socket", sock, "--state", state)
		link = regexp.MustCompile(`(https://\S+)/owner/#token=(pho_\S+)`).FindStringSubmatch(r.Stdout)
		return link != nil
	})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	get := func(rng string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", link[1]+"/api/v1/owner/sessions/"+ses+"/recording/files/0001-exec.cast", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Owner "+link[2])
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, whole := get("")
	if code != http.StatusOK || !strings.Contains(whole, marker) {
		t.Fatalf("the owner's copy of the cast: %d %q", code, whole)
	}
	if code, part := get("bytes=10-99"); code != http.StatusPartialContent || part != whole[10:100] {
		t.Errorf("bytes 10 to 99 of the cast: %d %q; want 206 %q", code, part, whole[10:100])
	}
}
