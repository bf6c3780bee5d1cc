package provider

import (
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// NewServer returns the provider's protocol server. The framework serves
// everything, except that a Read of the proxmoxapp_backups data source
// answers in Terraform's wire format directly: for 10,000 backups the
// framework's generic path (reflection, a semantic-equality walk that copies
// and compares the whole list, generic msgpack encoding) cost several times
// the CPU and memory of the listing itself. Both paths give the same value
// (TestBackupsDirectMatchesFramework).
func NewServer(version string) func() tfprotov6.ProviderServer {
	return func() tfprotov6.ProviderServer {
		p := &proxmoxappProvider{version: version}
		// The framework's server answers actions and list resources too; the
		// wrapper must expose them, or Terraform 1.14 finds them missing.
		fs, ok := providerserver.NewProtocol6(p)().(frameworkServer)
		if !ok {
			panic("the framework's server does not answer actions and list resources")
		}
		return &server{frameworkServer: fs, p: p}
	}
}

// frameworkServer is every RPC the framework's server answers.
type frameworkServer interface {
	tfprotov6.ProviderServer
	tfprotov6.ActionServer
	tfprotov6.ListResourceServer
}

const backupsTypeName = "proxmoxapp_backups"

type server struct {
	frameworkServer
	p *proxmoxappProvider

	typeOnce    sync.Once
	backupsType tftypes.Object

	backupTypesOnce sync.Once
	backupTypes     backupTypes
}

func (s *server) ReadDataSource(ctx context.Context, req *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	if req.TypeName != backupsTypeName {
		return callReleasing(ctx, req, s.frameworkServer.ReadDataSource)
	}
	data := s.p.configured.Load()
	typ := s.backupsObjectType(ctx)
	opts, ok := directListOptions(req, typ)
	if data == nil || !ok {
		// not configured, or a configuration the framework should judge
		return callReleasing(ctx, req, s.frameworkServer.ReadDataSource)
	}
	list, failure := listForDataSource(ctx, data.client, opts)
	if failure != nil {
		d := &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityError, Summary: failure.summary, Detail: failure.detail}
		if failure.attribute != "" {
			d.Attribute = tftypes.NewAttributePath().WithAttributeName(failure.attribute)
		}
		return &tfprotov6.ReadDataSourceResponse{Diagnostics: []*tfprotov6.Diagnostic{d}}, nil
	}
	return &tfprotov6.ReadDataSourceResponse{State: &tfprotov6.DynamicValue{MsgPack: encodeBackupsState(opts, list)}}, nil
}

func (s *server) backupsObjectType(ctx context.Context) tftypes.Object {
	s.typeOnce.Do(func() {
		var resp datasource.SchemaResponse
		NewBackupsDataSource().Schema(ctx, datasource.SchemaRequest{}, &resp)
		s.backupsType, _ = resp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	})
	return s.backupsType
}

// directListOptions reads vmid, node and storage from the configuration; ok
// is false when they are not plain known values.
func directListOptions(req *tfprotov6.ReadDataSourceRequest, typ tftypes.Object) (pve.ListOptions, bool) {
	if req.Config == nil || typ.AttributeTypes == nil {
		return pve.ListOptions{}, false
	}
	v, err := req.Config.Unmarshal(typ)
	if err != nil || !v.IsFullyKnown() || v.IsNull() {
		return pve.ListOptions{}, false
	}
	var attrs map[string]tftypes.Value
	if err := v.As(&attrs); err != nil {
		return pve.ListOptions{}, false
	}
	var vmid big.Float
	if attrs["vmid"].IsNull() || attrs["vmid"].As(&vmid) != nil {
		return pve.ListOptions{}, false
	}
	id, acc := vmid.Int64()
	if acc != big.Exact || id <= 0 || id > math.MaxInt32 {
		return pve.ListOptions{}, false // the framework's validators say why
	}
	opts := pve.ListOptions{VMID: int(id)}
	for name, dst := range map[string]*string{"node": &opts.Node, "storage": &opts.Storage} {
		var sp *string
		if err := attrs[name].As(&sp); err != nil {
			return pve.ListOptions{}, false
		}
		if sp != nil && *sp == "" {
			return pve.ListOptions{}, false // "" is not null: the framework's validators judge it
		}
		if sp != nil {
			*dst = *sp
		}
	}
	return opts, true
}

// encodeBackupsState writes the data source's state as msgpack, the
// encoding of Terraform's DynamicValue: an object (a map by attribute name)
// holding the configuration, the id, the backups and the latest one.
func encodeBackupsState(opts pve.ListOptions, list []pve.Backup) []byte {
	w := &msgpackWriter{b: make([]byte, 0, 256+300*len(list))}
	w.mapHeader(6)
	w.str("id")
	w.str(listingID(opts))
	w.str("vmid")
	w.int(int64(opts.VMID))
	w.str("node")
	w.strOrNil(opts.Node)
	w.str("storage")
	w.strOrNil(opts.Storage)
	w.str("backups")
	w.arrayHeader(len(list))
	for i := range list {
		w.backup(&list[i])
	}
	w.str("latest")
	if len(list) == 0 {
		w.nil()
	} else {
		w.backup(&list[0])
	}
	return w.b
}

// msgpackWriter appends msgpack values (the subset Terraform's values use).
type msgpackWriter struct{ b []byte }

func (w *msgpackWriter) backup(b *pve.Backup) {
	fields := backupEntryFields(b)
	w.mapHeader(len(fields))
	for _, f := range fields {
		w.str(f.name)
		switch v := f.value.(type) {
		case string:
			w.str(v)
		case int64:
			w.int(v)
		case bool:
			w.bool(v)
		}
	}
}

func (w *msgpackWriter) nil() { w.b = append(w.b, 0xc0) }

func (w *msgpackWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 0xc3)
	} else {
		w.b = append(w.b, 0xc2)
	}
}

func (w *msgpackWriter) int(v int64) {
	switch {
	case v >= 0 && v < 128:
		w.b = append(w.b, byte(v))
	case v < 0 && v >= -32:
		w.b = append(w.b, byte(int8(v)))
	default:
		w.b = append(w.b, 0xd3)
		w.b = binary.BigEndian.AppendUint64(w.b, uint64(v))
	}
}

func (w *msgpackWriter) str(s string) {
	n := len(s)
	switch {
	case n < 32:
		w.b = append(w.b, 0xa0|byte(n))
	case n < 1<<8:
		w.b = append(w.b, 0xd9, byte(n))
	case n < 1<<16:
		w.b = append(w.b, 0xda)
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
	default:
		w.b = append(w.b, 0xdb)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	}
	w.b = append(w.b, s...)
}

func (w *msgpackWriter) strOrNil(s string) {
	if s == "" {
		w.nil()
		return
	}
	w.str(s)
}

func (w *msgpackWriter) mapHeader(n int) {
	if n < 16 {
		w.b = append(w.b, 0x80|byte(n))
		return
	}
	w.b = append(w.b, 0xde)
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
}

func (w *msgpackWriter) arrayHeader(n int) {
	switch {
	case n < 16:
		w.b = append(w.b, 0x90|byte(n))
	case n < 1<<16:
		w.b = append(w.b, 0xdc)
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
	default:
		w.b = append(w.b, 0xdd)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	}
}
