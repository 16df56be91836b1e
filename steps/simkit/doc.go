// Package simkit is what every HTTP simulator of runbook shares: a request log, a write
// counter, and fault injection by method and path pattern, in the way client-go's fake
// clientset takes reactors.
//
// A simulator routes its API with an http.ServeMux ("PATCH /repos/{owner}/{repo}/issues/{n}")
// and wraps the mux with a Kit:
//
//	kit := simkit.New(simkit.WithClock(clock.Now), simkit.WithUser(userOf))
//	srv := httptest.NewServer(kit.Wrap(mux))
//	kit.Inject(simkit.Fault{Method: "POST", Path: "/repos/{owner}/{repo}/releases", Status: 502, Times: 1})
//	kit.Writes() // writes answered with 2xx
//
// Faults are matched with ServeMux patterns, so a fault is written the way the route it
// breaks is written. A fault can answer instead of the simulator (Status, Body, Header or
// Answer), wait first (Delay), close the connection (Drop), or let the request take effect
// and then lose or replace its answer (After): the worst case for a client that retries.
//
// Observe hands every exchange, with both bodies, to a checker: the OpenAPI tests use it
// to check that what runbook sends and what a simulator answers follow the published API
// description.
package simkit
