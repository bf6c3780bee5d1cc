package provider

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

type requestPayloadKey struct{}

// requestPayload stands for what a request's context holds (loggers, the
// gRPC stream): it must be collectable once the call has returned.
type requestPayload struct{ _ [64 << 10]byte }

// callWithPayload makes one call with a context holding a fresh payload and
// returns a weak pointer to it; nothing else refers to the payload.
func callWithPayload(t *testing.T, call func(context.Context)) weak.Pointer[requestPayload] {
	t.Helper()
	p := &requestPayload{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), requestPayloadKey{}, p))
	call(ctx)
	cancel() // gRPC cancels a request's context when the call ends
	return weak.Make(p)
}

func perInstanceCalls(s tfprotov6.ProviderServer) map[string]func(context.Context) {
	return map[string]func(context.Context){
		"ValidateResourceConfig": func(ctx context.Context) {
			_, _ = s.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "proxmoxapp_backup"})
		},
		"UpgradeResourceState": func(ctx context.Context) {
			_, _ = s.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{TypeName: "proxmoxapp_backup"})
		},
		"ReadResource": func(ctx context.Context) {
			_, _ = s.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: "proxmoxapp_backup"})
		},
		"PlanResourceChange": func(ctx context.Context) {
			_, _ = s.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: "proxmoxapp_backup"})
		},
		"ApplyResourceChange": func(ctx context.Context) {
			_, _ = s.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{TypeName: "proxmoxapp_backup"})
		},
		"ReadDataSource": func(ctx context.Context) {
			_, _ = s.ReadDataSource(ctx, &tfprotov6.ReadDataSourceRequest{TypeName: "proxmoxapp_backup_retention"})
		},
	}
}

// The framework keeps every request's cancel function until StopProvider;
// the server must not let that keep the request's context (a plan of 500
// backups grew the live heap by 55 MB).
func TestServerLetsGoOfRequestContexts(t *testing.T) {
	s := NewServer("test")()
	for name, call := range perInstanceCalls(s) {
		w := callWithPayload(t, call)
		runtime.GC()
		if w.Value() != nil {
			t.Errorf("%s: the request's context is still reachable after the call returned", name)
		}
	}
	runtime.KeepAlive(s) // the server lives on between calls, as in a run

	// The framework's server alone, for the record: when a framework release
	// stops keeping contexts, server_contexts.go can go.
	fw := s.(*server).frameworkServer
	w := callWithPayload(t, perInstanceCalls(fw)["PlanResourceChange"])
	runtime.GC()
	t.Logf("the framework's own server keeps request contexts: %v", w.Value() != nil)
	runtime.KeepAlive(fw)
}

// While the call runs, the request's values, deadline and cancellation are
// seen through the requestContext; afterwards only cancellation.
func TestRequestContextDuringAndAfterTheCall(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), requestPayloadKey{}, "v"))
	rc := newRequestContext(parent)
	if rc.Value(requestPayloadKey{}) != "v" || rc.Err() != nil {
		t.Fatalf("during the call: value %v, err %v", rc.Value(requestPayloadKey{}), rc.Err())
	}
	rc.release()
	if rc.Value(requestPayloadKey{}) != nil || rc.Err() != nil {
		t.Fatalf("released, not cancelled: value %v, err %v", rc.Value(requestPayloadKey{}), rc.Err())
	}
	cancel()
	<-rc.Done()
	if rc.Err() != context.Canceled {
		t.Fatalf("released then cancelled: err %v", rc.Err())
	}
}
