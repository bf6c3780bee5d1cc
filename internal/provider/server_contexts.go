package provider

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// The framework's protocol server (terraform-plugin-framework v1.19.0, the
// newest) keeps the cancel function of every request's context until
// StopProvider, which Terraform sends only on Ctrl-C. Each kept function
// holds the request's whole context: terraform-plugin-go's per-request
// loggers and gRPC's stream. In a plan of 500 backups that was about 50 KB per
// call and 55 MB of live heap by the end. The calls Terraform makes once per
// resource instance therefore reach the framework through a requestContext,
// which lets go of the request's context when the call returns; what the
// framework keeps is then a few hundred bytes per call.

// requestContext stands for a request's context while its call runs: values,
// deadline and cancellation are the request's. After release it keeps only
// the Done channel and deadline, and has no values.
type requestContext struct {
	mu       sync.Mutex
	parent   context.Context // nil once released
	done     <-chan struct{}
	deadline time.Time
	hasDL    bool
}

func newRequestContext(parent context.Context) *requestContext {
	dl, ok := parent.Deadline()
	return &requestContext{parent: parent, done: parent.Done(), deadline: dl, hasDL: ok}
}

func (c *requestContext) release() {
	c.mu.Lock()
	c.parent = nil
	c.mu.Unlock()
}

func (c *requestContext) live() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parent
}

func (c *requestContext) Deadline() (time.Time, bool) { return c.deadline, c.hasDL }

func (c *requestContext) Done() <-chan struct{} { return c.done }

func (c *requestContext) Err() error {
	if p := c.live(); p != nil {
		return p.Err()
	}
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func (c *requestContext) Value(key any) any {
	if p := c.live(); p != nil {
		return p.Value(key)
	}
	return nil
}

// callReleasing runs a unary call with a requestContext and releases it when
// the call returns.
func callReleasing[Req, Resp any](ctx context.Context, req Req, call func(context.Context, Req) (Resp, error)) (Resp, error) {
	rc := newRequestContext(ctx)
	defer rc.release()
	return call(rc, req)
}

// The calls made once per resource or data source instance (ReadResource and
// ReadDataSource, which have fast paths, call callReleasing themselves). The others are
// made a few times per run (schema, configure) or stream after they return
// (actions, list resources), and reach the framework unchanged.

func (s *server) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ValidateResourceConfig)
}

func (s *server) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.UpgradeResourceState)
}

func (s *server) UpgradeResourceIdentity(ctx context.Context, req *tfprotov6.UpgradeResourceIdentityRequest) (*tfprotov6.UpgradeResourceIdentityResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.UpgradeResourceIdentity)
}

func (s *server) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.PlanResourceChange)
}

func (s *server) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ApplyResourceChange)
}

func (s *server) ImportResourceState(ctx context.Context, req *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ImportResourceState)
}

func (s *server) MoveResourceState(ctx context.Context, req *tfprotov6.MoveResourceStateRequest) (*tfprotov6.MoveResourceStateResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.MoveResourceState)
}

func (s *server) ValidateDataResourceConfig(ctx context.Context, req *tfprotov6.ValidateDataResourceConfigRequest) (*tfprotov6.ValidateDataResourceConfigResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ValidateDataResourceConfig)
}

func (s *server) ValidateListResourceConfig(ctx context.Context, req *tfprotov6.ValidateListResourceConfigRequest) (*tfprotov6.ValidateListResourceConfigResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ValidateListResourceConfig)
}

func (s *server) ValidateActionConfig(ctx context.Context, req *tfprotov6.ValidateActionConfigRequest) (*tfprotov6.ValidateActionConfigResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.ValidateActionConfig)
}

func (s *server) PlanAction(ctx context.Context, req *tfprotov6.PlanActionRequest) (*tfprotov6.PlanActionResponse, error) {
	return callReleasing(ctx, req, s.frameworkServer.PlanAction)
}
