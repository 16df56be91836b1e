package rehearsal

import (
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
)

// productionEnvironment is the value of a kubernetes connection's environment setting
// that says production runs on its cluster (playbooks/site.yaml): the rehearsal starts it
// on the previous release, and the world's deploy and rollback jobs change it.
const productionEnvironment = "production"

// productionConnections are the kubernetes connections production runs on: those whose
// settings say environment: production. A playbook written before that setting says it
// of none: then they are the clusters its on_failure steps act on, since a revert acts
// on production only.
func productionConnections(pb *engine.Playbook, plan *engine.PlanDoc, note func(string, ...any)) map[string]bool {
	out, declared, clusters := map[string]bool{}, false, false
	for _, c := range pb.Connections {
		if c.Type != "kubernetes" {
			continue
		}
		clusters = true
		if env, ok := c.Settings["environment"]; ok {
			declared = true
			out[c.Name] = env == productionEnvironment
		}
	}
	if declared || !clusters {
		return out
	}
	for _, ps := range plan.Steps {
		t, _ := engine.LookupStepType(ps.Type)
		if ps.Section != engine.SectionOnFailure || t.Connection != "kubernetes" {
			continue
		}
		if name := connectionOf(pb, ps.Params, "kubernetes"); name != "" {
			out[name] = true
		}
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	note("no kubernetes connection says environment: %s; production is what the revert steps act on: %s", productionEnvironment, strings.Join(names, ", "))
	return out
}

// connectionOf is the connection a step with these parameters uses: the one it names,
// else the playbook's only one of its type ("" when that is not known).
func connectionOf(pb *engine.Playbook, params map[string]any, typ string) string {
	if n, ok := params["connection"].(string); ok && n != "" && n != engine.KnownAfterRun {
		return n
	}
	var of []string
	for _, c := range pb.Connections {
		if c.Type == typ {
			of = append(of, c.Name)
		}
	}
	if len(of) == 1 {
		return of[0]
	}
	return ""
}

// isProduction reports whether production runs on the cluster of a kubernetes connection.
func (s *Sandbox) isProduction(conn string) bool { return s.production[conn] }
