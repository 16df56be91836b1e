// Package window holds the step type `schedule.window`: the release window a playbook
// declares (days, hours, time zone, or the dates the service owner picked). Placed before
// the step that changes production, it lets the run through inside the window; outside it,
// a real run stops in status waiting (resume it in the window) or refuses (`outside: refuse`),
// and a rehearsal or sandbox run waits on its simulated clock. A person may release outside
// the window with `runbook run|resume ... --outside-window --reason R`: the step records who
// allowed it and why, and lets the run through.
package window
