package review_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
	_ "github.com/cessda/runbook/steps/all"
	"github.com/cessda/runbook/steps/rehearsal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// rehearse runs a product's playbook in an in-process rehearsal with a fake clock, a
// fixed seed and run id, and returns its report with the simulators' random ports
// replaced by fixed hosts, so the record rendered from it is the same on every run.
func rehearse(t *testing.T, product, runID string, set map[string]string, ans rehearsal.Answers) *engine.Report {
	t.Helper()
	pb, err := engine.LoadFile("../../playbooks/" + product + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		t.Fatal(err)
	}
	// A Friday afternoon: the release window (Tuesday to Thursday) opens days later, so
	// the timeline spans the days a release takes.
	clock := engine.NewFakeClock(time.Date(2026, 3, 6, 14, 0, 0, 0, time.UTC))
	sb, err := rehearsal.New(context.Background(), pb, in, ans, rehearsal.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	clock.Advance(time.Minute) // staging and production settle
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: clock,
		Connect: sb.Connect, Actor: "operator", Seed: 1, RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for name, u := range map[string]string{"github.example": sb.GitHub.URL(), "jenkins.example": sb.Jenkins.URL(),
		"zenodo.example": strings.TrimSuffix(sb.Zenodo.URL(), "/api/"), "chat.example": sb.Chat.URL(), "public.example": sb.Public.URL()} {
		s = strings.ReplaceAll(s, strings.TrimSuffix(u, "/"), "https://"+name)
	}
	s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "127.0.0.1:PORT")
	var out engine.Report
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatal(err)
	}
	for i := range out.Sessions {
		out.Sessions[i].Host, out.Sessions[i].PID, out.Sessions[i].Command = "host", 0, "runbook run"
	}
	return &out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./engine/review -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		gotFile := filepath.Join(t.TempDir(), name)
		_ = os.WriteFile(gotFile, []byte(got), 0o644)
		t.Errorf("%s differs from the golden file; got is in %s (rerun with -update to accept)", file, gotFile)
	}
}

type recordCase struct {
	name    string
	product string
	set     map[string]string
	ans     rehearsal.Answers
	status  engine.RunStatus
}

var recordCases = []recordCase{
	{"cvs-succeeded", "cvs", map[string]string{"version": "3.7.0"}, rehearsal.Answers{}, engine.RunSucceeded},
	{"cvs-refused", "cvs", map[string]string{"version": "3.7.0"}, rehearsal.Answers{Refuse: "staging search returns no results"}, engine.RunRejected},
	{"cvs-reverted", "cvs", map[string]string{"version": "3.7.0"}, rehearsal.Answers{Revert: "the user guide shows the old version"}, engine.RunRolledBack},
	{"cvs-waiting", "cvs", map[string]string{"version": "3.7.0"}, rehearsal.Answers{OpenSubtasks: true}, engine.RunWaiting},
}

// The other products, in the same four outcomes.
func init() {
	for _, p := range []struct {
		name string
		set  map[string]string
	}{
		{"cdc", map[string]string{"version": "4.3.0"}},
		{"eqb", map[string]string{"version": "1.2.0"}},
		{"elsst", map[string]string{"version": "2026", "vocabulary": "elsst-7"}},
	} {
		recordCases = append(recordCases,
			recordCase{p.name + "-succeeded", p.name, p.set, rehearsal.Answers{}, engine.RunSucceeded},
			recordCase{p.name + "-refused", p.name, p.set, rehearsal.Answers{Refuse: "staging search returns no results"}, engine.RunRejected},
			recordCase{p.name + "-reverted", p.name, p.set, rehearsal.Answers{Revert: "the new version breaks search"}, engine.RunRolledBack},
			recordCase{p.name + "-waiting", p.name, p.set, rehearsal.Answers{OpenSubtasks: true}, engine.RunWaiting})
	}
}

func renderRecord(t *testing.T, rep *engine.Report) (md, page string) {
	t.Helper()
	var b bytes.Buffer
	if err := review.WriteReportHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	return review.ReportMarkdown(rep), b.String()
}

// TestReleaseRecordGolden renders the record of successful, refused, reverted and waiting
// releases of each product, each from a deterministic rehearsal, and compares them with
// testdata/*.md and *.html (go test ./engine/review -run TestReleaseRecordGolden -update).
func TestReleaseRecordGolden(t *testing.T) {
	for _, c := range recordCases {
		t.Run(c.name, func(t *testing.T) {
			rep := rehearse(t, c.product, c.name, c.set, c.ans)
			if rep.Status != c.status {
				t.Fatalf("status %s at %s (%s), want %s", rep.Status, rep.FailedStep, rep.Reason, c.status)
			}
			md, page := renderRecord(t, rep)
			golden(t, c.name+".md", md)
			golden(t, c.name+".html", page)
			checkRecordHTML(t, c, page)
			checkRecordMarkdown(t, c, md)
		})
	}
}

var emojiStatus = regexp.MustCompile(`<td><span class="st [a-z]+">(.*?)</span>`)

// checkRecordHTML: the page's status cells carry no emoji (a machine without an emoji
// font shows them as empty boxes), the per-component table and the timeline are there.
func checkRecordHTML(t *testing.T, c recordCase, page string) {
	t.Helper()
	cells := emojiStatus.FindAllStringSubmatch(page, -1)
	if len(cells) == 0 {
		t.Error("no status cells")
	}
	for _, m := range cells {
		for _, r := range m[1] {
			if isEmoji(r) {
				t.Errorf("emoji %U in a status cell: %s", r, m[1])
				break
			}
		}
		if !strings.Contains(m[1], "<svg") {
			t.Errorf("status cell without its icon: %s", m[1])
		}
	}
	for _, r := range page {
		if isEmoji(r) {
			t.Errorf("emoji %U in the HTML page", r)
			break
		}
	}
	if !strings.Contains(page, "<h2>What was released, component by component</h2>") || !strings.Contains(page, `<table class="components">`) {
		t.Error("no per-component table")
	}
	if !strings.Contains(page, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline"`) {
		t.Error("no timeline")
	}
	if strings.Contains(page, "<script") {
		t.Error("a script in the page")
	}
}

func isEmoji(r rune) bool {
	return r >= 0x1F000 || (r >= 0x2600 && r <= 0x27BF) || r == 0xFE0F || r == 0x2B1C || r == 0x21A9 || r == 0x23F8 || r == 0x23ED
}

func checkRecordMarkdown(t *testing.T, c recordCase, md string) {
	t.Helper()
	want := map[string][]string{
		"cvs-succeeded": {
			"**Released 3.7.0 to production: 3 components, approved by CVS service owner (cvs-service-owner) on 2026-03-06, stable since 2026-03-10 08:04 UTC**",
			"38 steps: 27 done, 2 skipped, 9 not needed.",
			"| ⏭️ skipped: its condition was false<br>`inputs.backup_job != \"\"` |",
			"[cessda.cvs.two 3.7.0 release](<https://github.example/cessda/cessda.cvs.two/releases/tag/3.7.0>)",
			"| approved the release |", "| confirmed stable |",
			"### Preparing", "### Performing", "### Verifying", "### Publishing",
			"Time: people: ",
		},
		"cvs-refused": {
			"Refused 3.7.0: CVS service owner (cvs-service-owner) refused the release on ",
			": staging search returns no results. Production was not changed.",
			"| refused the release |",
			"⬜ not reached",
			"### Reverting",
		},
		"cvs-reverted": {
			"Reverted 3.7.0: CVS service owner (cvs-service-owner) asked for a revert on ",
			"| asked for a revert |",
			"production now (after the revert)",
			"### Reverting",
		},
		"cvs-waiting": {
			"**Waiting for the service owner's pre-release activities since 2026-03-06 14:01 UTC (CVS service owner (cvs-service-owner)): The pre-release activities are concluded",
			"⏸️ waiting",
			"stopped to wait on",
			"⬜ to do",
		},
	}[c.name]
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q", w)
		}
	}
	if strings.Contains(md, "pending") {
		t.Error("markdown says pending")
	}
	if c.status == engine.RunWaiting && strings.Contains(md, "finished") {
		t.Error("a waiting run says finished")
	}
	if c.status != engine.RunWaiting {
		return
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Contains(line, "not needed") && !strings.Contains(line, "(on\\_failure)") {
			t.Errorf("a step of the procedure not needed in a waiting run: %s", line)
		}
	}
}

// TestReleaseRecordInBrowser (RUNBOOK_BROWSER=1): headless Chromium renders the record of
// a successful and a reverted CVS release; the screenshots are kept under
// $RUNBOOK_ARTIFACTS (or the test's temporary directory) and their paths logged.
func TestReleaseRecordInBrowser(t *testing.T) {
	if os.Getenv("RUNBOOK_BROWSER") != "1" {
		t.Skip("set RUNBOOK_BROWSER=1 to render the record in headless Chromium")
	}
	browser := os.Getenv("RUNBOOK_CHROMIUM")
	if browser == "" {
		browser = "chromium"
	}
	if _, err := exec.LookPath(browser); err != nil {
		t.Fatalf("no %s: %v", browser, err)
	}
	dir := os.Getenv("RUNBOOK_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []recordCase{recordCases[0], recordCases[2]} {
		t.Run(c.name, func(t *testing.T) {
			rep := rehearse(t, c.product, c.name, c.set, c.ans)
			_, page := renderRecord(t, rep)
			htmlFile := filepath.Join(dir, "record-"+c.name+".html")
			png := filepath.Join(dir, "record-"+c.name+".png")
			if err := os.WriteFile(htmlFile, []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.Remove(png)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
				"--screenshot="+png, "--window-size=1300,2400", "file://"+htmlFile)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", browser, err, out)
			}
			st, err := os.Stat(png)
			if err != nil {
				t.Fatalf("no screenshot: %v", err)
			}
			// A blank 1300x2400 PNG compresses to a few kilobytes; a rendered record is
			// far larger.
			if st.Size() < 50_000 {
				t.Errorf("screenshot %s is %d bytes: nothing rendered?", png, st.Size())
			}
			t.Logf("screenshot: %s (%d bytes); page: %s", png, st.Size(), htmlFile)
		})
	}
}
