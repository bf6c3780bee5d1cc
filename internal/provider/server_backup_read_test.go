package provider

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// configuredServer is a provider process as Terraform starts it for one
// command: a new server, configured for env's simulator.
func configuredServer(t *testing.T, env *acctest.Env) *server {
	t.Helper()
	ctx := context.Background()
	s := NewServer("test")().(*server)
	schema, err := s.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	typ := schema.Provider.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
	}
	vals["endpoint"] = tftypes.NewValue(tftypes.String, env.Sim.Endpoint())
	vals["api_token"] = tftypes.NewValue(tftypes.String, env.Sim.APIToken())
	vals["ca_cert"] = tftypes.NewValue(tftypes.String, string(env.Sim.CAPEM()))
	cfg, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, vals))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.5.7", Config: &cfg})
	if err != nil || len(resp.Diagnostics) > 0 {
		t.Fatalf("configure: %v %v", err, resp.Diagnostics)
	}
	return s
}

// readResult is a ReadResource answer in comparable form.
type readResult struct {
	State    tftypes.Value
	Private  map[string][]byte
	Identity tftypes.Value
}

func decodeRead(t *testing.T, s *server, resp *tfprotov6.ReadResourceResponse) readResult {
	t.Helper()
	for _, d := range resp.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			t.Fatalf("read: %s: %s", d.Summary, d.Detail)
		}
	}
	types := s.backupResourceTypes(context.Background())
	var r readResult
	var err error
	if r.State, err = resp.NewState.Unmarshal(types.state); err != nil {
		t.Fatal(err)
	}
	if len(resp.Private) > 0 {
		if err := json.Unmarshal(resp.Private, &r.Private); err != nil {
			t.Fatal(err)
		}
	}
	if resp.NewIdentity != nil && resp.NewIdentity.IdentityData != nil {
		if r.Identity, err = resp.NewIdentity.IdentityData.Unmarshal(types.identity); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func sameRead(a, b readResult) bool {
	return a.State.Equal(b.State) && reflect.DeepEqual(a.Private, b.Private) && a.Identity.Equal(b.Identity)
}

// A refresh of an unchanged backup is answered without the framework; the
// answer must be the framework's, with and without an identity from
// Terraform. A change made outside Terraform must reach the framework's Read.
func TestBackupReadUnchangedMatchesFramework(t *testing.T) {
	env := acctest.New(t)
	env.RequireSim(t)
	ctx := context.Background()
	c := env.Client(t)
	b := acctest.TakeBackup(t, c, env.VMID, env.Storage, "nightly", false)

	// what Terraform holds after importing the backup and refreshing it
	s := configuredServer(t, env)
	imp, err := s.ImportResourceState(ctx, &tfprotov6.ImportResourceStateRequest{TypeName: backupTypeName, ID: b.Node + "/" + b.VolID})
	if err != nil || len(imp.ImportedResources) != 1 {
		t.Fatalf("import: %v %+v", err, imp)
	}
	in := imp.ImportedResources[0]
	first, err := s.frameworkServer.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: backupTypeName,
		CurrentState: in.State, Private: in.Private, CurrentIdentity: in.Identity})
	if err != nil {
		t.Fatal(err)
	}
	decodeRead(t, s, first)

	for _, identity := range []*tfprotov6.ResourceIdentityData{first.NewIdentity, nil} {
		req := &tfprotov6.ReadResourceRequest{TypeName: backupTypeName, CurrentState: first.NewState, Private: first.Private, CurrentIdentity: identity}
		s := configuredServer(t, env)
		fast := s.readUnchangedBackup(ctx, req)
		if fast == nil {
			t.Fatalf("identity %v: an unchanged backup went to the framework's Read", identity != nil)
		}
		fw, err := s.frameworkServer.ReadResource(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := decodeRead(t, s, fast), decodeRead(t, s, fw); !sameRead(got, want) {
			t.Fatalf("identity %v: the fast read differs from the framework's:\n got %+v\nwant %+v", identity != nil, got, want)
		}
	}

	// changes outside Terraform, one at a time from a state that holds all
	// the earlier ones, each seen by a new provider process
	req := &tfprotov6.ReadResourceRequest{TypeName: backupTypeName, CurrentState: first.NewState, Private: first.Private, CurrentIdentity: first.NewIdentity}
	var before readResult
	changes := []struct {
		name   string
		change func()
		check  func(readResult) bool
	}{
		{"notes edited in the GUI", func() {
			notes := "edited by hand"
			if err := c.UpdateBackup(ctx, b.Node, b.VolID, &notes, nil); err != nil {
				t.Fatal(err)
			}
		}, func(r readResult) bool {
			return stateAttr(r.State, "notes").Equal(tftypes.NewValue(tftypes.String, "edited by hand"))
		}},
		{"protected in the GUI", func() {
			protected := true
			if err := c.UpdateBackup(ctx, b.Node, b.VolID, nil, &protected); err != nil {
				t.Fatal(err)
			}
		}, func(r readResult) bool {
			return stateAttr(r.State, "protected").Equal(tftypes.NewValue(tftypes.Bool, true))
		}},
		{"archive grew", func() {
			f, err := os.OpenFile(env.ArchivePath(b.Node, b.Storage, b.Filename), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(make([]byte, 1000))
			_ = f.Close()
		}, func(r readResult) bool { return !stateAttr(r.State, "size").Equal(stateAttr(before.State, "size")) }},
		{"archive deleted", func() {
			protected := false
			if err := c.UpdateBackup(ctx, b.Node, b.VolID, nil, &protected); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteBackup(ctx, b.Node, b.VolID, nil); err != nil {
				t.Fatal(err)
			}
		}, func(r readResult) bool { return r.State.IsNull() }},
	}
	for _, ch := range changes {
		s := configuredServer(t, env)
		if s.readUnchangedBackup(ctx, req) == nil {
			t.Fatalf("before %s: the state from the last refresh went to the framework's Read", ch.name)
		}
		before = decodeRead(t, s, mustFrameworkRead(t, s, req))
		ch.change()
		s = configuredServer(t, env)
		if s.readUnchangedBackup(ctx, req) != nil {
			t.Fatalf("%s: answered as unchanged", ch.name)
		}
		resp, err := s.ReadResource(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeRead(t, s, resp)
		if !ch.check(got) {
			t.Fatalf("%s: the refresh does not show it: %v", ch.name, got.State)
		}
		want := decodeRead(t, s, mustFrameworkRead(t, configuredServer(t, env), req))
		if !sameRead(got, want) {
			t.Fatalf("%s: differs from the framework's Read", ch.name)
		}
		if got.State.IsNull() {
			break
		}
		req = &tfprotov6.ReadResourceRequest{TypeName: backupTypeName, CurrentState: resp.NewState, Private: resp.Private, CurrentIdentity: resp.NewIdentity}
	}
}

func mustFrameworkRead(t *testing.T, s *server, req *tfprotov6.ReadResourceRequest) *tfprotov6.ReadResourceResponse {
	t.Helper()
	resp, err := s.frameworkServer.ReadResource(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func stateAttr(v tftypes.Value, name string) tftypes.Value {
	var attrs map[string]tftypes.Value
	if v.As(&attrs) != nil {
		return tftypes.Value{}
	}
	return attrs[name]
}
