package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/kubernetes/kubesim/kubeapi"
	"github.com/cessda/runbook/steps/rehearsal"
)

// sandboxCmd starts the simulators as real HTTP servers in this process, seeded from a
// playbook, and writes the connections file a `runbook run --sandbox FILE` uses. The
// world lives as long as the process: a run can be killed and resumed against it, and
// anyone can look at it with ordinary HTTP clients (its GitHub answers the GitHub API,
// its Jenkins the Jenkins API, its clusters the Kubernetes API through a kubeconfig).
func (a *app) sandboxCmd() *cobra.Command {
	var sets []string
	var dir string
	var answers rehearsal.Answers
	cmd := &cobra.Command{
		Use:   "sandbox PLAYBOOK",
		Short: "Start every simulator as a real server on 127.0.0.1 and write a connections file for `run --sandbox`",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, in, err := loadWithInputs(args[0], sets)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = filepath.Join(a.stateDir, "sandbox", pb.Product)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			clock := &engine.OffsetClock{}
			sb, err := rehearsal.New(cmd.Context(), pb, in, answers, rehearsal.WithClock(clock))
			if err != nil {
				return err
			}
			defer sb.Close()
			version, _ := in["version"].(string)
			control, err := rehearsal.ServeControl(clock, func() any { return sb.State(version) })
			if err != nil {
				return err
			}
			defer control.Close()
			control.ServePeople(sb)
			apis := map[string]*kubeapi.Server{} // by connection name
			defer func() {
				for _, s := range apis {
					s.Close()
				}
			}()
			kubeconfig := func(conn string) (string, string, error) {
				cl, ok := sb.Clusters[conn]
				if !ok {
					sb.Connect(&engine.ConnectionDecl{Name: conn, Type: "kubernetes"})
					cl = sb.Clusters[conn]
				}
				srv, err := kubeapi.Serve(cl.Clientset(), kubeapi.WithToken("sandbox-kube-token"))
				if err != nil {
					return "", "", err
				}
				apis[conn] = srv
				ctxName := conn
				for _, d := range pb.Connections {
					if d.Name == conn && d.Settings["context"] != "" {
						ctxName = d.Settings["context"]
					}
				}
				path := filepath.Join(dir, "kubeconfig-"+conn+".yaml")
				return path, ctxName, srv.WriteKubeconfig(path, ctxName)
			}
			file, err := sb.WriteConnections(dir, control, kubeconfig)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "runbook sandbox for %s (%s)\n\n", pb.File, pb.Product)
			rows := map[string]string{"github": sb.GitHub.URL(), "jenkins": sb.Jenkins.URL(), "zenodo": sb.Zenodo.URL(), "smtp": sb.SMTP.URL(),
				"chat": sb.Chat.URL(), "public web": sb.Public.URL(), "clock": control.URL()}
			for conn, s := range apis {
				rows["kubernetes "+conn] = s.URL()
			}
			keys := make([]string, 0, len(rows))
			for k := range rows {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(a.stdout, "  %-22s %s\n", k, rows[k])
			}
			fmt.Fprintf(a.stdout, "\nconnections: %s\n\nIn another terminal:\n  runbook run %s --sandbox %s", file, pb.File, file)
			for _, s := range sets {
				fmt.Fprintf(a.stdout, " --set %s", s)
			}
			fmt.Fprintf(a.stdout, "\n\nCtrl-C stops the sandbox (and forgets its state).\n")
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set an input of the playbook (the world is seeded from its plan)")
	cmd.Flags().StringVar(&dir, "dir", "", "where to write connections.json and kubeconfigs (default STATE_DIR/sandbox/PRODUCT)")
	cmd.Flags().StringVar(&answers.Refuse, "refuse", "", "the service owner refuses the release with this reason")
	cmd.Flags().StringVar(&answers.Revert, "revert", "", "after deploying, the service owner asks for a revert with this reason")
	cmd.Flags().BoolVar(&answers.Broken, "broken-production", false, "the deploy job rolls out a build that never becomes ready")
	cmd.Flags().BoolVar(&answers.Silent, "silent-people", false, "the simulated people answer no gate (no /approve, ticks or closed subtasks): act for them with POST <control>/people/comment, /people/tick, /people/close")
	return cmd
}
