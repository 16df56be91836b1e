// Package sleep provides the `sleep` step type: wait a fixed time, for example to let
// caches expire or DNS settle between a deployment and its smoke check.
//
// Parameters:
//
//	duration  (duration, required)  how long to wait: "90s", "15m", "7d"
//
// Outputs:
//
//	slept  (string)  the duration waited, as a duration string
//
// The wait goes through the run's clock (StepContext.Sleep), so rehearsals and tests using
// engine.FakeClock finish at once, and it ends early with the context's error when the run
// is cancelled. The step records when it started waiting in its journal; a resumed run
// waits only for what is left, so a crash in the middle does not double the wait.
//
// There is no simulator: the step talks to no service.
package sleep
