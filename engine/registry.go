package engine

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
)

var (
	registryMu sync.RWMutex
	stepTypes  = map[string]StepType{}
	connTypes  = map[string]ConnectionType{}
)

var typeNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$|^[a-z][a-z0-9_]*$`)

// Register adds a step type to the registry. Step packages call it from init, the way
// Caddy modules register themselves; a duplicate or malformed name is a programming
// error and panics at start-up.
func Register(t StepType) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if !typeNameRE.MatchString(t.Name) {
		panic(fmt.Sprintf("engine.Register: malformed step type name %q", t.Name))
	}
	if t.New == nil {
		panic(fmt.Sprintf("engine.Register: step type %q has no New", t.Name))
	}
	if _, dup := stepTypes[t.Name]; dup {
		panic(fmt.Sprintf("engine.Register: step type %q registered twice", t.Name))
	}
	if _, err := paramsOf(t); err != nil {
		panic(fmt.Sprintf("engine.Register: step type %q: %v", t.Name, err))
	}
	stepTypes[t.Name] = t
}

// LookupStepType returns the registered step type with that name.
func LookupStepType(name string) (StepType, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	t, ok := stepTypes[name]
	return t, ok
}

// StepTypes returns every registered step type, sorted by name.
func StepTypes() []StepType {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]StepType, 0, len(stepTypes))
	for _, t := range stepTypes {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ConnectionType describes a kind of external service a playbook connects to.
type ConnectionType struct {
	// Name is the value of a connection's `type:` ("github", "kubernetes", ...).
	Name string
	// Summary is one line for `runbook steps` and the schema.
	Summary string
	// Settings are the extra keys a connection of this type may carry besides
	// type, url and the secret references, with one line of documentation each.
	Settings map[string]string
	// DefaultURL is used when the playbook gives none (e.g. "https://api.github.com/").
	DefaultURL string
	// DefaultTokenEnv is the environment variable read for the secret when the
	// playbook names none (e.g. "GITHUB_TOKEN").
	DefaultTokenEnv string
}

// RegisterConnectionType adds a connection type. Step packages call it from init.
func RegisterConnectionType(c ConnectionType) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := connTypes[c.Name]; dup {
		panic(fmt.Sprintf("engine.RegisterConnectionType: %q registered twice", c.Name))
	}
	connTypes[c.Name] = c
}

// LookupConnectionType returns the registered connection type with that name.
func LookupConnectionType(name string) (ConnectionType, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	c, ok := connTypes[name]
	return c, ok
}

// ConnectionTypes returns every registered connection type, sorted by name.
func ConnectionTypes() []ConnectionType {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]ConnectionType, 0, len(connTypes))
	for _, c := range connTypes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
