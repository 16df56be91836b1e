package shell

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"testing"
)

// helperEnv switches the test binary into a stand-in command (the os/exec tests' pattern):
// argv is [os.Args[0], mode, args...] and the step passes helperEnv through its env.
const helperEnv = "RUNBOOK_SHELL_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "helper: no mode")
		return 2
	}
	mode, rest := args[0], args[1:]
	switch mode {
	case "args": // the arguments as received, as JSON
		_ = json.NewEncoder(os.Stdout).Encode(rest)
	case "env": // the environment, sorted, as JSON
		env := os.Environ()
		sort.Strings(env)
		_ = json.NewEncoder(os.Stdout).Encode(env)
	case "stdin":
		_, _ = io.Copy(os.Stdout, os.Stdin)
	case "pwd":
		wd, _ := os.Getwd()
		fmt.Println(wd)
	case "exit":
		n, _ := strconv.Atoi(rest[0])
		fmt.Println("about to fail")
		fmt.Fprintf(os.Stderr, "warming up\nfailing with %d\n", n)
		return n
	case "lines":
		n, _ := strconv.Atoi(rest[0])
		for i := 1; i <= n; i++ {
			fmt.Printf("out line %d\n", i)
			fmt.Fprintf(os.Stderr, "err line %d\n", i)
		}
	case "long": // one line of n bytes, no newline
		n, _ := strconv.Atoi(rest[0])
		b := make([]byte, n)
		for i := range b {
			b[i] = 'x'
		}
		_, _ = os.Stdout.Write(b)
	case "append": // append a line to a file: counts how often the command really ran
		f, err := os.OpenFile(rest[0], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(f, "ran")
		f.Close()
	case "hang": // start a child in the same group, report both pids, block
		child := exec.Command(os.Args[0], "block")
		child.Env = os.Environ()
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("pid %d\nchild %d\n", os.Getpid(), child.Process.Pid)
		select {}
	case "stubborn": // ignore SIGTERM, report pid, block
		signal.Ignore(syscall.SIGTERM)
		fmt.Printf("pid %d\n", os.Getpid())
		select {}
	case "block":
		select {}
	default:
		fmt.Fprintf(os.Stderr, "helper: unknown mode %q\n", mode)
		return 2
	}
	return 0
}
