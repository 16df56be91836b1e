// Package jenkinssim is a stateful Jenkins for tests and rehearsals, on httptest at
// 127.0.0.1, speaking the remote access API's wire contract: jobs in folders with
// parameter definitions, the crumb issuer, API-token basic auth, /build and
// /buildWithParameters answering 201 with Location: /queue/item/N/ (303 when an identical
// item is waiting), a queue with a quiet period whose items get `executable` when the
// build starts and answer 404 five minutes after they left, builds whose console grows
// over time (progressiveText with X-Text-Size, X-More-Data only while running, output
// up to the last complete line), results, and the error answers of the real server (401,
// 403, 404, 405 with Allow: POST, 409 for disabled jobs, 500 "not parameterized", 400
// for /build on a parameterized job). JSON answers honour ?tree= (nested fields and
// {M,N} ranges).
//
// A job's builds run its Script, an arbitrary Go function (Job.Script func(*Build)) that
// writes console lines (Build.Logf, Build.Write), lets simulated time pass (Build.Sleep),
// reads the build's parameters (Build.Param) and sets the result (Build.SetResult); it
// can call other simulators, e.g. set an image in a Kubernetes simulator. Scripts run as
// coroutines of the simulator: they only advance when the simulator's clock has passed
// their wake-up time, which it checks on every request, so builds are deterministic. The
// clock is either given (WithClock, e.g. the run's engine.FakeClock, so a step's polling
// sleeps drive the builds) or runs at WithSpeed (default 1000: a real millisecond is a
// simulated second). Tests never sleep real seconds.
//
// Builds carry a CauseAction: Cause$UserIdCause ("Started by user X") when triggered over
// HTTP, BranchEventCause ("Push event to branch main") when started by BuildCommit. A build
// of a commit also carries the Git plugin's BuildData (lastBuiltRevision SHA1 and branch
// refs/remotes/origin/<branch>, remoteUrls); a Script reads it with Build.Revision and adds
// more, as a shared library's checkout does, with Build.AddBuildData.
//
// Seeding: New(WithUser, WithUsers, WithJobs, ...), AddJob, AddUser, SeedBuild (a running
// or finished build with given parameters), BuildCommit (a push to a multibranch branch
// job: a build of that commit running the job's Script; the job is created when missing),
// SeedCommitBuild (the same, already finished with a result). WithRunParameter gives every
// job a string parameter, such as jenkins.build's RUNBOOK_RUN run marker. WithAutoCreate
// creates a job the first time it is triggered, with the parameters it is called with and
// DefaultScript, so a rehearsal of any playbook works without seeding. Without users, DefaultUser/DefaultToken is accepted.
// WithParamsInActions shows a job's parameter definitions among its "actions" instead of
// under "property", as older Jenkins versions do. GET /whoAmI/api/json answers who the
// credentials are (a wrong token gets 401 first, as on every URL).
// Other options: WithCrumbs (CrumbsExemptAPITokens as Jenkins ≥ 2.96, CrumbsRequired with
// crumbs tied to user and JSESSIONID session, CrumbsOff), WithAnonymousRead,
// WithQuietPeriod, WithLeftItemTTL.
//
// Observing: Requests, Writes, Triggers(job), Builds(job), Build(job, n), QueueItems(job).
// Acting as people: CancelQueueItem, Abort, ExpireCrumbs. Fault injection: Inject(Fault{
// Method, Path prefix, Status, Body, Delay, Drop, AfterEffect, Times}) — AfterEffect lets
// the request take effect and loses only the answer.
package jenkinssim
