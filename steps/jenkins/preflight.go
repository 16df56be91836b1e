package jenkins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// preflightTimeout bounds a step's checks: the connection's HTTP client may have no
// timeout, and a hung Jenkins must not hold up the start of a run.
const preflightTimeout = 2 * time.Minute

// Preflight checks, reading only, that the connection's API token is there and accepted,
// that the job exists and can be built, and that it takes every parameter the step
// passes: the keys of parameters (known even when their values come from earlier steps)
// and the run marker.
func (p *BuildStep) Preflight(ctx context.Context, sc *engine.StepContext) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	c, conn, err := checkLogin(ctx, sc, p.Connection)
	if err != nil || sc.Unknown("job") {
		return err
	}
	j, err := checkJob(ctx, sc, c, conn, p.job())
	if err != nil {
		return err
	}
	// Keys are only unknown when the whole map comes from an expression (rendered empty).
	var names []string
	if !sc.Unknown("parameters") || len(p.Parameters) > 0 {
		names = sortedKeys(p.Parameters)
	}
	key := fmt.Sprintf("jenkins params %s %s %s|%s", conn.Name, p.job(), strings.Join(names, ","), p.runParam())
	return sc.Once(key, func() error {
		if j == nil { // another step made the job check: read the definitions again
			if j, err = c.Job(ctx, p.job(), 0); err != nil {
				return fmt.Errorf("jenkins connection %q: reading job %s: %w", conn.Name, p.job(), err)
			}
		}
		return p.checkParams(j, conn.Name, names)
	})
}

// checkParams reports every parameter name the job does not define at once, and a job
// without the run parameter. Such a job still builds, but an attempt that stops between
// posting the trigger and Jenkins' answer cannot find its build again and must wait for a
// person: that loses the step's crash safety, so it is a problem to fix before the run
// (define the parameter, or name one the job has in run_parameter), not a warning.
func (p *BuildStep) checkParams(j *Job, connName string, names []string) error {
	var errs []error
	if j.Buildable != nil && !*j.Buildable {
		errs = append(errs, fmt.Errorf("jenkins: job %s on connection %q is disabled (not buildable): Jenkins would refuse the trigger (409); enable the job", p.job(), connName))
	}
	defs := j.ParamDefs()
	have := map[string]ParamDef{}
	takes := make([]string, 0, len(defs))
	for _, d := range defs {
		have[d.Name] = d
		takes = append(takes, d.Name)
	}
	var unknown []string
	for _, n := range names {
		if _, ok := have[n]; !ok {
			unknown = append(unknown, n)
		}
	}
	switch {
	case len(unknown) > 0 && len(defs) == 0:
		errs = append(errs, fmt.Errorf("jenkins: job %s on connection %q takes no parameters, but the step passes %s: remove them from the step's parameters, or define them in the job (This project is parameterized)",
			p.job(), connName, strings.Join(unknown, ", ")))
	case len(unknown) > 0:
		s := ""
		if len(unknown) > 1 {
			s = "s"
		}
		errs = append(errs, fmt.Errorf("jenkins: job %s on connection %q does not take parameter%s %s; it takes: %s. Jenkins would drop %s silently: correct the step's parameters, or define %s in the job",
			p.job(), connName, s, strings.Join(unknown, ", "), strings.Join(takes, ", "), them(len(unknown)), them(len(unknown))))
	}
	rp := p.runParam()
	if d, ok := have[rp]; !ok {
		errs = append(errs, fmt.Errorf("jenkins: job %s on connection %q has no %s parameter, so a run that stops right after triggering it cannot find its build again and waits for a person: "+
			"add a String parameter %s (no default needed) to the job, or set run_parameter to a string parameter it has", p.job(), connName, rp, rp))
	} else if !p.hasRunParam(j) {
		errs = append(errs, fmt.Errorf("jenkins: parameter %s of job %s on connection %q is a %s, not a string parameter, so it cannot carry runbook's run marker: make it a String parameter, or set run_parameter to a string parameter the job has",
			rp, p.job(), connName, d.Type))
	}
	return errors.Join(errs...)
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// Preflight checks, reading only, that the connection's API token is there and accepted
// and that the CI job exists.
func (p *CommitBuildStep) Preflight(ctx context.Context, sc *engine.StepContext) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	c, conn, err := checkLogin(ctx, sc, p.Connection)
	if err != nil || sc.Unknown("job") {
		return err
	}
	_, err = checkJob(ctx, sc, c, conn, p.job())
	return err
}

// checkLogin builds the connection's client and asks Jenkins who its credentials are,
// once per connection. The secret's value never appears in a message, only where it comes
// from.
func checkLogin(ctx context.Context, sc *engine.StepContext, name string) (*Client, *engine.Connection, error) {
	conn, err := sc.Connection(name, "jenkins")
	if err != nil {
		return nil, nil, fmt.Errorf("jenkins: %w", err)
	}
	c, err := client(sc, name)
	if err != nil {
		return nil, conn, err
	}
	err = sc.Once("jenkins login "+conn.Name, func() error {
		w, err := c.WhoAmI(ctx)
		switch StatusOf(err) {
		case 0:
		case http.StatusUnauthorized:
			return fmt.Errorf("jenkins connection %q: %s refused the API token of user %s (401 Unauthorized): the token in %s is wrong, revoked or not %s's; "+
				"create one (Jenkins: %s > Security > API Token) and put it in %s", conn.Name, c.base, c.user, conn.SecretSource("JENKINS_TOKEN"), c.user, c.user, conn.SecretSource("JENKINS_TOKEN"))
		case http.StatusForbidden:
			return fmt.Errorf("jenkins connection %q: user %s may not read %s (403 Forbidden): grant it Overall/Read, and Job/Read and Job/Build on the jobs runbook runs", conn.Name, c.user, c.base)
		}
		if err != nil {
			return fmt.Errorf("jenkins connection %q: cannot check the login at %s: %w", conn.Name, c.base, err)
		}
		if w.Anonymous || !w.Authenticated {
			return fmt.Errorf("jenkins connection %q: %s took the requests for anonymous, not user %s: check the connection's url (a proxy may drop the Authorization header)", conn.Name, c.base, c.user)
		}
		sc.Identify(conn.Name, w.Name)
		return nil
	})
	return c, conn, err
}

// checkJob reads the job once per connection and job: it must exist and not be a folder.
// It returns the job when this call read it, nil when another step's check did.
func checkJob(ctx context.Context, sc *engine.StepContext, c *Client, conn *engine.Connection, job string) (*Job, error) {
	var j *Job
	err := sc.Once("jenkins job "+conn.Name+" "+job, func() error {
		var err error
		j, err = c.Job(ctx, job, 0)
		switch {
		case errors.Is(err, ErrJobNotFound):
			return fmt.Errorf("jenkins: job %s not found on connection %q (%s answered 404): check the job's full path (folders separated by /, as in cessda.cdc.deploy/main) and that user %s may see it",
				job, conn.Name, c.JobURL(job), c.user)
		case err != nil:
			return fmt.Errorf("jenkins connection %q: reading job %s: %w", conn.Name, job, err)
		case j.IsFolder():
			return fmt.Errorf("jenkins: %s on connection %q is a folder, not a job: name a job inside it (such as %s/main)", job, conn.Name, job)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}
