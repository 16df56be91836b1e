// Package jenkins runs Jenkins jobs from a playbook: CESSDA's production deployments
// (`cessda.<product>.deploy.prod`), rollbacks (`cessda.<product>.rollback`) and backups
// (`cessda.cdc.es.backup`) are Jenkins jobs, and a release has to start them, watch them
// and know for sure that they ran once. Before that, the image to promote is the one CI
// built from the tagged commit: jenkins.commit_build finds that build.
//
// No maintained Go client of the Jenkins remote access API exists, so Client is a small
// hand-written one: API-token basic auth, crumbs (fetched from /crumbIssuer/api/json
// before the first POST when the server issues them, refetched once on 403 "No valid
// crumb", with a cookie jar because a crumb is bound to the web session), triggering
// (/build or /buildWithParameters, 201 or 303 with the queue item in Location), queue
// items, builds (with their Git BuildData and causes) and the progressive console
// (X-Text-Size, X-More-Data).
//
// # Connection type "jenkins"
//
// url (default https://jenkins.cessda.eu/); settings.user, the Jenkins login; the secret
// is that user's API token (default environment variable JENKINS_TOKEN). In rehearsals
// the simulator's account (jenkinssim.DefaultUser/DefaultToken) is used when none is set.
//
// # Step type jenkins.build
//
// Params:
//   - connection: the jenkins connection.
//   - job (required): the job's full path, folders separated by "/": "cessda.cdc.deploy/main"
//     is /job/cessda.cdc.deploy/job/main/.
//   - parameters (map<string>): build parameters; none posts to /build. A name the job does
//     not define is refused (Jenkins would drop it silently).
//   - wait (bool, default true): wait for the result; false returns once the build started.
//   - poll_interval (duration, default 5s): how often the queue, console and build are polled
//     (through the run's clock).
//   - timeout (duration, default 2h): give up waiting; the build is not aborted.
//   - run_parameter (string, default RUNBOOK_RUN): when the job defines a string parameter
//     of that name, runbook sets it to RUN_ID/STEP_ID (plus the foreach item: itself when
//     a short scalar, else a hash of it).
//   - accept (list<string>, default [SUCCESS]): results counted as success.
//
// Outputs: number (int), url (string), result (string; "" when wait is false and the
// build still runs), duration (int, whole seconds; 0 while running), queue_url (string;
// "" when an interrupted attempt's build was found by its run marker).
//
// Idempotency is by run, not by parameters: a build belongs to the step only if this run
// triggered it. Before posting the trigger the step journals its intent (the time and the
// run marker it passes), right after it the queue item's URL, and once known the build's
// URL. A later attempt follows the recorded build or queue item (an item Jenkins already
// forgot, five minutes after it left the queue, is traced to its build by queueId; a
// cancelled one is triggered anew). An intent without a queue item means the process
// stopped between the trigger and its answer: the step looks for its run marker in the
// queue and in the job's last 50 builds started since the intent, follows what carries it,
// and triggers only when nothing does. A job without the run parameter cannot tell: the
// step waits for a person, who looks at the job and continues with `runbook resume RUN
// --skip STEP --reason "..."` (it ran) or `--confirm STEP` (trigger again; a confirmation
// allows one trigger). A trigger Jenkins refused (an HTTP error other than 502/504, or
// one never sent) is known not to have queued anything. A build with the same parameters
// from another run or a person is never followed, so two releases with identical
// parameters get two builds. (Jenkins itself merges a trigger into an identical item still
// waiting in the queue, 303; the step logs it.) CESSDA's jobs should define RUNBOOK_RUN.
//
// Results: SUCCESS (or any accepted result) is success; UNSTABLE, FAILURE, NOT_BUILT and
// ABORTED fail the step with the last 30 console lines in the error. The console is
// streamed into the step's log line by line, complete lines only, each once.
//
// Errors: 401 says "jenkins: 401 Unauthorized from URL: check the user (U) and
// JENKINS_TOKEN"; 403 names the missing permission; a missing job says "job "a/b" not
// found at URL (404)"; 5xx and connection failures are engine.Transient (reads are retried
// three times first); a cancelled queue item is a clear, permanent error (running the step
// again triggers anew). The token only ever travels in the Authorization header.
//
// # Step type jenkins.commit_build
//
// The CI build of a commit, read-only (plan.NoChange). The Git plugin records on each build
// a hudson.plugins.git.util.BuildData action per repository checked out (lastBuiltRevision
// SHA1, remoteUrls); the step reads only those and the causes
// (builds[number,url,building,result,duration,timestamp,actions[lastBuiltRevision[SHA1,branch[name]],remoteUrls,causes[...]]]).
//
// Params: connection; job (required: the component's CI branch job, cessda.cvs.two/main);
// commit (required: the release commit, 7 to 40 hex digits; a short one matches as a
// prefix, case-insensitively); repo (owner/name: only the BuildData whose remoteUrls are
// that repository counts, for builds that also check out shared libraries; without it any
// BuildData may match); build (an explicit build: a number or an image tag whose trailing
// digits are the number, main-950); image_tag_format (default "{branch}-{number}";
// {branch} is the job's last path element, also {commit}); accept (default [SUCCESS]);
// timeout (default 1h); poll_interval (default 30s).
//
// Without build, Run waits for the newest of the job's last 50 builds that built the commit:
// none yet logs "waiting for CI to build commit X" and polls until the timeout (an error
// naming the job, the commit and what the newest build built); a running one is waited
// for; a finished one that is not accepted fails the step (not transient) with its URL.
// With build, that build is read; if it built another commit the step fails for good
// ("build main-950 (job #950) built commit A, but the release commit is B: it is not the
// build of the tagged commit; ..."), and Plan already reports it.
//
// Outputs: number (int), url (string), commit (string, the full SHA from BuildData),
// image_tag (string), result (string), job (string). The build is linked as
// "CI build JOB #N".
//
// # Preflight
//
// Both step types check before a run, reading only: the API token is there (the error
// names the environment variable or file, never the value) and accepted (GET
// /whoAmI/api/json: 401 says the token is wrong, 403 that the user may not read), once per
// connection; the job exists and is not a folder, once per job. jenkins.build also
// checks that the job is buildable and defines every parameter the step passes, the keys
// of parameters (known even when their values come from earlier steps) listed all at
// once with the ones the job takes, reading the definitions from property and, as older
// Jenkins shows them, actions; and that it has the run parameter as a string. A job
// without it is reported as a problem, with the fix: it builds, but the step would lose
// its crash safety (an interrupted trigger waits for a person).
//
// The simulator is in the jenkinssim subpackage.
package jenkins
