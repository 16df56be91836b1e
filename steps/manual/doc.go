// Package manual provides the `manual` step type: a gate where a person does something
// runbook cannot (inspect a deployment in the Kubernetes console, run the Jenkins
// deploy.prod job by hand, sign off a staging test) and confirms it.
//
// Parameters:
//
//	instruction   (string, required)  what the person must do
//	confirm_text  (string)            the yes/no question; default "Done: <instruction>?"
//	role          (string)            the playbook role whose holder must do it
//
// Outputs:
//
//	confirmed_by  (string)  login of the person who confirmed
//	confirmed_at  (string)  when, RFC 3339 on the run's clock
//
// How the answer is obtained, in order:
//
//  1. A confirmation already recorded in the step's journal under "confirmation" (by
//     `runbook resume RUN --confirm STEP` or --refuse, or by an earlier attempt of this
//     step) is used: "yes" succeeds with its by/at, "no" returns engine.Rejected with its
//     reason. A second Run therefore never asks twice.
//  2. On a terminal (StepContext.Prompter set) the operator is asked with Confirm; yes
//     succeeds as StepContext.Actor, no asks for a reason and returns engine.Rejected.
//     The answer is recorded in the journal first, so a crash does not lose it.
//  3. In a rehearsal without a terminal the step confirms itself as the first holder of
//     the role (or the actor) and logs that it did.
//  4. Otherwise it returns engine.Waiting with the command that confirms it.
//
// A confirmation by someone who does not hold the role is accepted (the operator often
// confirms on the role holder's word) but logged as such, so the report shows it.
//
// There is no simulator: the people are simulated by the engine's Prompter and by
// recorded confirmations; tests use a fake Prompter.
package manual
