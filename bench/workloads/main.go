// Command workloads writes the playbooks of bench/steps.sh (issue 16) and the equivalent
// Taskfiles for go-task, and serves the HTTP endpoint both check.
//
//	go run ./bench/workloads -dir DIR -n 10,100,1000 -url http://127.0.0.1:PORT/
//	go run ./bench/workloads -serve 127.0.0.1:0    # prints the URL, serves 200 "ok"
//
// For each N it writes DIR/<workload>-N.yaml and DIR/<workload>-N/Taskfile.yml:
//
//	noop  N `sleep` steps of 0s (go-task: `sleep 0`)
//	skip  N such steps, every second one skipped by `when: false` (go-task: `if: "false"`)
//	http  N `http.check` GETs of the URL (go-task: `curl -sf URL -o /dev/null`)
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	dir := flag.String("dir", "bench/out/workloads", "where to write the playbooks and Taskfiles")
	sizes := flag.String("n", "10,100,1000,10000", "step counts, comma-separated")
	url := flag.String("url", "http://127.0.0.1:8080/", "the URL the http workload checks")
	serve := flag.String("serve", "", "serve 200 ok on this address instead (127.0.0.1:0: any port)")
	flag.Parse()
	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("http://%s/\n", ln.Addr())
		os.Stdout.Sync()
		log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })))
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-n: bad size %q", s)
		}
		for _, w := range []string{"noop", "skip", "http"} {
			if err := write(*dir, w, n, *url); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func write(dir, workload string, n int, url string) error {
	var pb, tf strings.Builder
	fmt.Fprintf(&pb, "runbook: v1\nproduct: bench%s\nsteps:\n", workload)
	tf.WriteString("version: '3'\ntasks:\n")
	for i := 1; i <= n; i++ {
		skipped := workload == "skip" && i%2 == 0
		fmt.Fprintf(&pb, "  - id: s%05d\n", i)
		fmt.Fprintf(&tf, "  s%05d:\n", i)
		if skipped {
			pb.WriteString("    when: \"false\"\n")
			tf.WriteString("    if: \"false\"\n")
		}
		if workload == "http" {
			fmt.Fprintf(&pb, "    type: http.check\n    with: {url: %q}\n", url)
			fmt.Fprintf(&tf, "    cmds: [\"curl -sf %s -o /dev/null\"]\n", url)
		} else {
			pb.WriteString("    type: sleep\n    with: {duration: 0s}\n")
			tf.WriteString("    cmds: [\"sleep 0\"]\n")
		}
	}
	tf.WriteString("  default:\n    cmds:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&tf, "      - task: s%05d\n", i)
	}
	name := fmt.Sprintf("%s-%d", workload, n)
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(pb.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name, "Taskfile.yml"), []byte(tf.String()), 0o644)
}
