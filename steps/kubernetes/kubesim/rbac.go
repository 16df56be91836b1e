package kubesim

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// RoleRule is one rule of a namespaced RBAC Role, as written in a manifest.
type RoleRule struct {
	Namespace     string
	APIGroups     []string `yaml:"apiGroups"`
	Resources     []string `yaml:"resources"`
	Verbs         []string `yaml:"verbs"`
	ResourceNames []string `yaml:"resourceNames"`
}

// ParseRoles reads the Roles' rules from Kubernetes manifests (several YAML documents; other
// kinds are skipped). A ClusterRole or ClusterRoleBinding is an error: runbook's examples
// grant nothing cluster-wide.
func ParseRoles(manifests []byte) ([]RoleRule, error) {
	var out []RoleRule
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string `yaml:"name"`
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
			Rules []RoleRule `yaml:"rules"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		switch doc.Kind {
		case "ClusterRole", "ClusterRoleBinding":
			return nil, fmt.Errorf("%s %s: cluster-wide", doc.Kind, doc.Metadata.Name)
		case "Role":
			for _, r := range doc.Rules {
				r.Namespace = doc.Metadata.Namespace
				out = append(out, r)
			}
		}
	}
}

// GrantOnly makes the simulated RBAC allow exactly what the Roles in manifests allow (as if
// they were bound to the client) and refuse everything else, as a ServiceAccount with those
// Roles would be treated. Discovery and access reviews stay allowed.
func (c *Cluster) GrantOnly(manifests []byte) error {
	rules, err := ParseRoles(manifests)
	if err != nil {
		return err
	}
	c.Deny("*", "*", "*", "*")
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					c.Allow(r.Namespace, v, g, res, r.ResourceNames...)
				}
			}
		}
	}
	return nil
}
