package jenkins

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine/enginetest"
)

// progressiveServer serves one console through logText/progressiveText in the chunks a
// fuzz input chooses, with X-Text-Size and X-More-Data as Jenkins sends them.
type progressiveServer struct {
	mu   sync.Mutex
	text string
	ends []int // chunk ends, ascending, the last being len(text)
}

func (s *progressiveServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/logText/progressiveText"):
		start, _ := strconv.Atoi(r.URL.Query().Get("start"))
		end := len(s.text)
		for _, e := range s.ends {
			if e > start {
				end = e
				break
			}
		}
		if start > end {
			start = end
		}
		w.Header().Set("X-Text-Size", strconv.Itoa(end))
		if end < len(s.text) {
			w.Header().Set("X-More-Data", "true")
		}
		fmt.Fprint(w, s.text[start:end])
	case strings.HasSuffix(r.URL.Path, "/api/json"):
		fmt.Fprint(w, `{"number":1,"building":false,"result":"SUCCESS"}`)
	default:
		http.NotFound(w, r)
	}
}

// FuzzJenkinsProgressive: however the console arrives in chunks (a chunk may end inside a
// line or inside a UTF-8 character), the lines logged are the console's lines: joined
// with newlines they give the console back, less Jenkins' hidden console notes and
// carriage returns; a last line without a newline is logged too.
func FuzzJenkinsProgressive(f *testing.F) {
	f.Add("Started by user release-bot\nBuilding...\nFinished: SUCCESS\n", []byte{5, 40})
	f.Add("no newline at the end", []byte{3})
	f.Add("crlf\r\nline\r\n\r\n", []byte{1, 1, 1})
	f.Add("a\x1b[8mha:AAAA\x1b[0mb\n\x1b[8mha:", []byte{2, 7})
	f.Add("ünïcødé ✓\n€\n", []byte{1, 2, 3})
	f.Add("", []byte{})
	f.Add("\n\n\n", []byte{0, 0})

	srv := &progressiveServer{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	f.Cleanup(hs.Close)

	f.Fuzz(func(t *testing.T, text string, sizes []byte) {
		if len(text) > 1<<16 {
			t.Skip()
		}
		var ends []int
		at := 0
		for _, n := range sizes {
			at += int(n)
			if at >= len(text) {
				break
			}
			ends = append(ends, at)
		}
		ends = append(ends, len(text))
		srv.mu.Lock()
		srv.text, srv.ends = text, ends
		srv.mu.Unlock()

		c, err := NewClient(hs.URL, "u", "t", hs.Client())
		if err != nil {
			t.Fatal(err)
		}
		sc := enginetest.NewContext(nil, "build")
		c.Sleep = sc.Sleep
		p := &BuildStep{}
		b, _, err := p.follow(context.Background(), sc.StepContext, c, hs.URL+"/job/x/1/", sc.Now().Add(time.Hour))
		if err != nil || b == nil || b.Result != "SUCCESS" {
			t.Fatalf("follow: %v, %+v", err, b)
		}
		var want []string
		if text != "" {
			want = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		}
		for i, w := range want {
			want[i] = strings.TrimRight(consoleNote.ReplaceAllString(w, ""), "\r")
		}
		got := sc.Log()
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Fatalf("console %q in chunks ending %v:\n got %q\nwant %q", text, ends, got, want)
		}
		// With nothing to strip, the lines are the console itself, byte for byte.
		if !strings.ContainsAny(text, "\r\x1b") && text != "" {
			if j := strings.Join(got, "\n"); j != strings.TrimSuffix(text, "\n") {
				t.Fatalf("lines joined %q, console %q", j, text)
			}
		}
	})
}
