// Package jenkinssim is a stateful Jenkins for tests and rehearsals, on httptest at
// 127.0.0.1, speaking the remote access API's wire contract: jobs in folders with
// parameter definitions, the crumb issuer, API-token basic auth, /build and
// /buildWithParameters answering 201 with Location: /queue/item/N/ (303 when an identical
// item is waiting), a queue with a quiet period whose items get `executable` when the
// build starts and answer 404 five minutes after they left, builds whose console grows
// over time, results, and the error answers of the real server. JSON answers honour
// ?tree= (nested fields and {M,N} ranges).
//
// # Endpoints
//
// Each endpoint below is a ServeMux route of http.go, written as
// "METHOD path → status content-type" for its answer when it succeeds;
// TestDocumentedEndpoints calls each one and fails when this list and the routes differ.
// {path} is a job's path, folders nesting as A/job/B (/job/A/job/B/...): a pattern cannot
// spell that, so the job is found first and what follows is routed by jobRoutes. {build}
// is a number or a permalink (lastBuild, lastCompletedBuild, lastSuccessfulBuild,
// lastFailedBuild; 404 when there is none). Reads answer any method, as Stapler serves
// them. Sources: "ref" is the project's contract brief /work/shared/reference/apis.md §2;
// "docs" is jenkins.io's remote access API page (jenkins-infra/jenkins.io
// content/doc/book/using/remote-access-api.adoc) and CSRF page
// (content/doc/book/security/csrf-protection.adoc); class names are Jenkins core's
// (jenkinsci/jenkins core/src/main/java/...) unless a plugin is named.
//
//	GET / → 200 application/json
//	GET /api/json → 200 application/json
//	    {"_class":"hudson.model.Hudson","url","useCrumbs","jobs":[{"_class","name","url"}]}
//	    (folders as com.cloudbees.hudson.plugins.folder.Folder). ref §2.1; docs; class
//	    jenkins.model.Jenkins (exported jobs, useCrumbs).
//	GET /whoAmI → 200 application/json
//	GET /whoAmI/api/json → 200 application/json
//	    {"_class":"hudson.security.WhoAmI","name","anonymous","authenticated","authorities"}:
//	    who the credentials are (a wrong token gets 401 first, as on every URL). class
//	    hudson.security.WhoAmI.
//	GET /crumbIssuer/api/json → 200 application/json
//	    {"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb","crumbRequestField":
//	    "Jenkins-Crumb"}; the crumb hashes user and web session, so without a JSESSIONID
//	    cookie the answer sets one (Set-Cookie). 404 WithCrumbs(CrumbsOff). ref §2.3; docs
//	    csrf-protection; classes hudson.security.csrf.CrumbIssuer, DefaultCrumbIssuer.
//	GET /queue/api/json → 200 application/json
//	    {"_class":"hudson.model.Queue","items":[queue items still waiting]}. class
//	    hudson.model.Queue.
//	POST /queue/cancelItem → 204 -
//	    ?id=N (or form field): cancels a waiting item (it leaves with cancelled true);
//	    404 for an unknown id, 403 without Job/Cancel, 405 with Allow: POST for another
//	    method. class hudson.model.Queue (doCancelItem, @RequirePOST).
//	GET /queue/item/{id} → 200 application/json
//	GET /queue/item/{id}/api/json → 200 application/json
//	    {"_class":"hudson.model.Queue$WaitingItem" (quiet period: timestamp, why "In the
//	    quiet period. Expires in N sec") | "$BlockedItem" | "$LeftItem" (cancelled,
//	    executable {"number","url"} once the build started, why null),"id","url",
//	    "inQueueSince","params","task","actions"}; 404 once the item left the queue more
//	    than WithLeftItemTTL ago (5 minutes, Jenkins' leftItems cache). ref §2.4; class
//	    hudson.model.Queue (Item, LeftItem, leftItems).
//	GET /job/{path} → 200 application/json
//	GET /job/{path}/api/json → 200 application/json
//	    The job (org.jenkinsci.plugins.workflow.job.WorkflowJob): name, fullName, url,
//	    buildable, color, inQueue, nextBuildNumber, builds, firstBuild, lastBuild and the
//	    other permalinks, queueItem, and parameter definitions under property (or actions,
//	    WithParamsInActions) as hudson.model.ParametersDefinitionProperty. A folder answers
//	    com.cloudbees.hudson.plugins.folder.Folder with its jobs (cloudbees-folder plugin).
//	    WithAutoCreate an unknown job reads as an empty job. ref §2.1; docs (tree, depth).
//	POST /job/{path}/build → 201 -
//	POST /job/{path}/buildWithParameters → 201 -
//	    Parameters as query or form fields, delay=Nsec; Location: /queue/item/N/ (303 See
//	    Other to the waiting item when an identical one waits). 409 "… is not buildable!"
//	    for a disabled job, 500 "This build is not parameterized!" for buildWithParameters
//	    on a job without parameters, 400 for /build on a parameterized one, 403 without
//	    Job/Build, 405 with Allow: POST for another method, 404 for an unknown job. ref
//	    §2.2; docs (triggering); classes hudson.model.ParametersDefinitionProperty
//	    (buildWithParameters), jenkins.model.ParameterizedJobMixIn (doBuild),
//	    hudson.model.BuildAuthorizationToken (checkPermission: 405 for GET since 2.475).
//	GET /job/{path}/{build} → 200 application/json
//	GET /job/{path}/{build}/api/json → 200 application/json
//	    {"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number","id","url",
//	    "building","result" (null while building; SUCCESS, UNSTABLE, FAILURE, NOT_BUILT,
//	    ABORTED),"duration" (0 until it ends),"estimatedDuration","timestamp","queueId",
//	    "displayName","fullDisplayName","actions" (ParametersAction, CauseAction, the Git
//	    plugin's BuildData)}. ref §2.5; classes hudson.model.Run, hudson.model.Result.
//	GET /job/{path}/{build}/logText/progressiveText → 200 text/plain
//	    ?start=K: the console from byte K (from 0 when K is past the end, "text rolled
//	    over"), up to the last complete line while the build runs; X-Text-Size is the next
//	    start, X-More-Data: true only while the build runs. ref §2.6; stapler
//	    org.kohsuke.stapler.framework.io.LargeText (doProgressText), core
//	    hudson.console.AnnotatedLargeText.
//	GET /job/{path}/{build}/consoleText → 200 text/plain
//	    The whole console. ref §2.6; class hudson.model.Run (doConsoleText).
//	POST /job/{path}/{build}/stop → 302 -
//	    Aborts a running build (it ends ABORTED); Location: the build; 403 without
//	    Job/Cancel, 405 with Allow: POST for another method. workflow-job plugin
//	    org.jenkinsci.plugins.workflow.job.WorkflowRun (doStop).
//
// Every URL: X-Jenkins: <Version>; HTTP Basic user:API-token, a wrong one 401 ("Invalid
// password/token for user: X", WWW-Authenticate: Basic realm="Jenkins"; class
// jenkins.security.BasicHeaderProcessor); no credentials 403 "Authentication required"
// (X-You-Are-Authenticated-As: anonymous) unless WithAnonymousRead lets them read. A POST
// without a valid crumb (Jenkins-Crumb header or form field) is 403 "No valid crumb was
// included in the request" (class hudson.security.csrf.CrumbFilter) unless it came with
// an API token and crumbs are exempt for those (CrumbsExemptAPITokens, Jenkins ≥ 2.96,
// class jenkins.security.ApiCrumbExclusion). Anything else is 404 with Jenkins' HTML
// error page. Paths are routed without a trailing slash. ref §2.1, §2.3.
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
// Observing: Requests (simkit's request log, with the user each request was taken for),
// Writes (the requests that asked for a change, answered or not), Triggers(job),
// Builds(job), Build(job, n), QueueItems(job). Acting as people: CancelQueueItem, Abort,
// ExpireCrumbs. Fault injection (simkit's, underneath): Inject(Fault{Method, Path,
// Status, Body, Delay, Drop, AfterEffect, Times}); Path is a path and everything under it
// (a ServeMux subtree); AfterEffect lets the request take effect and loses only the answer.
package jenkinssim
