// Package shell provides the `shell` step type: run one command, without a shell, and
// check its exit code.
//
// Parameters:
//
//	argv                (list<string>, required)  the command and its arguments; argv[0] is looked up in PATH
//	env                 (map<string>)             variables added to the minimal environment below
//	workdir             (string)                  directory to run in (default: runbook's own)
//	stdin               (string)                  text on standard input (default: none, /dev/null)
//	timeout             (duration)                stop the command after this long (default: only on cancel)
//	kill_grace          (duration, default 10s)   time between SIGTERM and SIGKILL when stopping
//	allowed_exit_codes  (list<int>, default [0])  exit codes that count as success
//	creates             (string)                  a path the command creates; when it exists nothing runs
//
// Outputs:
//
//	exit_code  (int)     the exit code, -1 when killed by a signal
//	stdout     (string)  the last 4 KiB of standard output
//	stderr     (string)  the last 4 KiB of standard error
//	skipped    (bool)    true when `creates` existed
//
// No shell, no injection: argv is executed directly (execve), so a value such as
// "$(rm -rf x)" or "it's; reboot" arrives as one verbatim argument. There is no `sh -c`
// unless the author writes argv: [sh, -c, "..."] themselves; then values from expressions
// belong in env and the script refers to them as "$NAME", never pasted into the script
// text, where the shell would interpret them.
//
// Environment: the command inherits only PATH, HOME and LANG from runbook, plus env (which
// may override them). Tokens runbook holds (GITHUB_TOKEN, ...) are therefore not passed on
// by accident; pass what a command needs through env explicitly. argv[0] without a slash
// is looked up in the command's PATH, absolute entries only; with a slash it is used as
// given, relative to workdir.
//
// Output: each line of stdout and stderr goes to the step log as "stdout| ..." or
// "stderr| ..." as it arrives (lines over 4 KiB are logged in pieces, so memory stays
// bounded); the last 4 KiB of each stream become outputs. The engine redacts secrets in
// both.
//
// Stopping: the command runs in its own process group. When the run is cancelled or
// timeout passes, the group gets SIGTERM, then SIGKILL after kill_grace, so children the
// command started are stopped too.
//
// Idempotency is the command's own: shell steps should run commands that are safe to
// repeat (check-then-act, "mkdir -p", "--if-not-exists"). Two helps: `creates` skips the
// command when the path it makes exists (as in Ansible's command module), and a command
// that succeeded is recorded in the step's journal (keyed by argv, env, workdir and stdin),
// so a resumed run returns the recorded outputs instead of running it again. Failed
// commands are not recorded: a retry runs them again.
//
// Plan runs nothing: it shows argv quoted as a POSIX shell would need it (for reading and
// copy-pasting only), the names (not the values) of env, and whether creates exists.
//
// Preflight runs nothing either: it checks that argv[0] is found (in the command's PATH
// when it has no slash, else relative to workdir) and that this process may execute it.
// An argv[0], PATH or workdir known only after earlier steps is not checked.
//
// There is no simulator: the command is the service. Tests use the test binary itself as
// the command (the os/exec tests' helper-process pattern).
package shell
