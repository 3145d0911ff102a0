package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkSyncInProcess runs the sync scenario against an in-process
// scimd (client and server share the process, so -cpuprofile shows both).
// One op is a whole sync of 2,000 users, 20 groups and 6,000 memberships;
// run it with -benchtime=1x.
func BenchmarkSyncInProcess(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := startServer(b)
		b.StartTimer()
		var out bytes.Buffer
		err := run(context.Background(), []string{"sync", "--url", s.base, "--token", s.token,
			"--users", "2000", "--groups", "20", "--memberships", "6000", "--concurrency", "8", "--prefix", fmt.Sprint("b", b.N)},
			&out, &out)
		if err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkReadInProcess runs the read scenario (userName eq lookups, 16
// in flight, for 5 s) against an in-process scimd holding 2,000 users; with
// -cpuprofile it shows where a lookup's time goes, client included. Run it
// with -benchtime=1x.
func BenchmarkReadInProcess(b *testing.B) {
	s := startServer(b)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sync", "--url", s.base, "--token", s.token,
		"--users", "2000", "--groups", "20", "--memberships", "2000"}, &out, &out); err != nil {
		b.Fatalf("%v\n%s", err, out.String())
	}
	for b.Loop() {
		out.Reset()
		if err := run(context.Background(), []string{"read", "--url", s.base, "--token", s.token,
			"--concurrency", "16", "--duration", "5s"}, &out, &out); err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
	}
	b.Log(out.String())
}

// BenchmarkChurnInProcess runs the churn scenario as fast as 32 clients go
// for 5 s against an in-process scimd holding 2,000 users in 20 groups;
// with -cpuprofile it shows where a SCIM write's time goes, client
// included. Run it with -benchtime=1x.
func BenchmarkChurnInProcess(b *testing.B) {
	s := startServer(b)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sync", "--url", s.base, "--token", s.token,
		"--users", "2000", "--groups", "20", "--memberships", "6000"}, &out, &out); err != nil {
		b.Fatalf("%v\n%s", err, out.String())
	}
	for b.Loop() {
		out.Reset()
		if err := run(context.Background(), []string{"churn", "--url", s.base, "--token", s.token,
			"--concurrency", "32", "--duration", "5s"}, &out, &out); err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
	}
	b.Log(out.String())
}
