// Command genplaybook writes a playbook of N steps for benchmarks. Every step after the
// first has a `when:` condition and a templated parameter that read an earlier step's
// output, so validation type-checks (and a run evaluates) real expressions, not literals.
//
//	go run ./bench/genplaybook -steps 1000 > /tmp/pb1000.yaml
//	go run ./bench/genplaybook -steps 1000 -type sleep
//	go run ./bench/genplaybook -bomb 9 > /tmp/bomb.yaml
//
// -type shell (the default) makes steps that run `true` with an argument rendered from
// the previous step's exit code; -type sleep makes zero-length sleeps, which a real run
// finishes without starting a process, so a whole-process `runbook run` measures the
// engine and its fsynced journal rather than fork/exec.
// -bomb N writes a YAML alias bomb instead ("billion laughs": N levels of ten aliases
// each, expanding to 10^N values), which validation must refuse quickly.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	steps := flag.Int("steps", 1000, "number of steps")
	typ := flag.String("type", "shell", "step type: shell or sleep")
	bomb := flag.Int("bomb", 0, "write a YAML alias bomb of this many levels instead")
	out := flag.String("o", "", "output file (default: standard output)")
	flag.Parse()

	w := bufio.NewWriter(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		w = bufio.NewWriter(f)
	}
	defer w.Flush()
	if *bomb > 0 {
		writeBomb(w, *bomb)
		return
	}
	if *steps < 1 || (*typ != "shell" && *typ != "sleep") {
		fmt.Fprintln(os.Stderr, "genplaybook: -steps must be at least 1 and -type shell or sleep")
		os.Exit(2)
	}
	writePlaybook(w, *steps, *typ)
}

func writePlaybook(w *bufio.Writer, n int, typ string) {
	fmt.Fprintf(w, "runbook: v1\nproduct: bench\ntitle: %d generated %s steps\n", n, typ)
	fmt.Fprintf(w, "inputs:\n  version: {type: string, pattern: '\\d+\\.\\d+\\.\\d+', default: 1.2.3}\n")
	fmt.Fprintf(w, "steps:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "  - id: s%05d\n    type: %s\n", i, typ)
		prev := fmt.Sprintf("steps.s%05d.outputs", i-1)
		switch {
		case typ == "shell" && i == 0:
			fmt.Fprintf(w, "    with: {argv: [\"true\", \"${{ inputs.version }}\"]}\n")
		case typ == "shell":
			fmt.Fprintf(w, "    when: %s.exit_code == 0\n", prev)
			fmt.Fprintf(w, "    with: {argv: [\"true\", \"%d after ${{ %s.exit_code }}\"]}\n", i, prev)
		case i == 0:
			fmt.Fprintf(w, "    with: {duration: 0s}\n")
		default:
			fmt.Fprintf(w, "    when: %s.slept == \"0s\"\n", prev)
			fmt.Fprintf(w, "    with: {duration: \"${{ %s.slept }}\"}\n", prev)
		}
	}
}

// writeBomb writes levels of anchors, each a list of ten aliases to the one before.
func writeBomb(w *bufio.Writer, levels int) {
	fmt.Fprintf(w, "runbook: v1\nproduct: bomb\nvars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(w, "  l%d: &l%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				w.WriteString(", ")
			}
			fmt.Fprintf(w, "*l%d", i-1)
		}
		w.WriteString("]\n")
	}
	fmt.Fprintf(w, "steps:\n  - id: boom\n    type: sleep\n    with: {duration: 1s}\n")
}
