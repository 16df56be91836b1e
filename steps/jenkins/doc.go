// Package jenkins runs Jenkins jobs from a playbook: CESSDA's production deployments
// (`cessda.<product>.deploy.prod`), rollbacks (`cessda.<product>.rollback`) and backups
// (`cessda.cdc.es.backup`) are Jenkins jobs, and a release has to start them, watch them
// and know for sure that they ran once.
//
// No maintained Go client of the Jenkins remote access API exists, so Client is a small
// hand-written one: API-token basic auth, crumbs (fetched from /crumbIssuer/api/json
// before the first POST when the server issues them, refetched once on 403 "No valid
// crumb", with a cookie jar because a crumb is bound to the web session), triggering
// (/build or /buildWithParameters, 201 or 303 with the queue item in Location), queue
// items, builds and the progressive console (X-Text-Size, X-More-Data).
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
//   - match_parameters (list<string>, default all given parameters): the parameters that
//     identify "this release's" build.
//   - accept (list<string>, default [SUCCESS]): results counted as success.
//
// Outputs: number (int), url (string), result (string; "" when wait is false and the
// build still runs), duration (int, whole seconds; 0 while running), queue_url (string;
// "" when an existing build was followed).
//
// Idempotency: Run first looks in its journal (the queue item URL is recorded right after
// the trigger, before any waiting; the build URL once known). Without a journal entry it
// looks at the job's last 50 builds for one whose parameters (match_parameters) equal
// this step's and which is running or ended with an accepted result, then at the queue
// for a waiting item with those parameters; only then does it trigger. A queue item that
// expired (Jenkins forgets left items after five minutes) is traced to its build by
// queueId. A job without parameters cannot tell releases apart: only a running build, or
// one started since this step first ran, is followed.
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
// The simulator is in the jenkinssim subpackage.
package jenkins
