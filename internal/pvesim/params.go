package pvesim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// pd describes one API parameter (a small subset of PVE's JSON schema).
type pd struct {
	t        string // string | boolean | integer | number | array
	req      bool
	enum     []string
	min, max *int64
	requires string
	format   string // pve-vmid, pve-vmid-list, pve-storage-id, pve-node
	maxLen   int
}

type schema map[string]pd

func i64(v int64) *int64 { return &v }

func pdS() pd               { return pd{t: "string"} }
func pdB() pd               { return pd{t: "boolean"} }
func pdI(lo, hi int64) pd   { return pd{t: "integer", min: i64(lo), max: i64(hi)} }
func pdUint() pd            { return pd{t: "integer", min: i64(0)} } // integer, minimum 0
func pdE(vals ...string) pd { return pd{t: "string", enum: vals} }
func pdVMID(req bool) pd {
	return pd{t: "integer", req: req, format: "pve-vmid", min: i64(100), max: i64(999999999)}
}
func pdStorage() pd            { return pd{t: "string", format: "pve-storage-id"} }
func (p pd) required() pd      { p.req = true; return p }
func (p pd) needs(k string) pd { p.requires = k; return p }

var (
	reStorageID = regexp.MustCompile(`(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$`)
	reNodeName  = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$`)
	reVMIDList  = regexp.MustCompile(`^[1-9][0-9]{2,8}([,;\s]+[1-9][0-9]{2,8})*$`)
	reInt       = regexp.MustCompile(`^[+-]?[0-9]+$`)
	reNumber    = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
)

// params holds validated, normalised values: booleans "1"/"0", integers
// in decimal, arrays in arr.
type params struct {
	m   map[string]string
	arr map[string][]string
}

func (p *params) has(k string) bool {
	_, ok := p.m[k]
	if !ok {
		_, ok = p.arr[k]
	}
	return ok
}
func (p *params) str(k string) string { return p.m[k] }
func (p *params) boolv(k string, def bool) bool {
	v, ok := p.m[k]
	if !ok {
		return def
	}
	return v == "1"
}
func (p *params) intv(k string, def int64) int64 {
	v, ok := p.m[k]
	if !ok {
		return def
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}
func (p *params) numv(k string, def float64) float64 {
	v, ok := p.m[k]
	if !ok {
		return def
	}
	n, _ := strconv.ParseFloat(v, 64)
	return n
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "1", true
		}
		return "0", true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

func (sc schema) validate(raw rawParams, vars map[string]string) (*params, *apiError) {
	p := &params{m: map[string]string{}, arr: map[string][]string{}}
	errs := map[string]string{}
	for k, vs := range raw {
		if k == "_dc" {
			continue
		}
		if pv, ok := vars[k]; ok {
			if s, _ := scalarString(vs[0]); s != pv {
				errs[k] = "duplicate parameter (already defined in URI) with conflicting values!"
			}
			continue
		}
		def, ok := sc[k]
		if !ok {
			errs[k] = "property is not defined in schema and the schema does not allow additional properties"
			continue
		}
		if def.t == "array" {
			var out []string
			for _, v := range vs {
				if a, ok := v.([]any); ok {
					for _, e := range a {
						s, _ := scalarString(e)
						out = append(out, s)
					}
					continue
				}
				s, _ := scalarString(v)
				out = append(out, s)
			}
			p.arr[k] = out
			continue
		}
		v := vs[len(vs)-1]
		norm, msg := def.check(v)
		if msg != "" {
			errs[k] = msg
			continue
		}
		p.m[k] = norm
	}
	for k, v := range vars {
		def := sc[k]
		norm, msg := def.check(v)
		if msg != "" {
			errs[k] = msg
			continue
		}
		p.m[k] = norm
	}
	for k, def := range sc {
		if def.req && !p.has(k) && errs[k] == "" {
			errs[k] = "property is missing and it is not optional"
		}
		if def.requires != "" && p.has(k) && !p.has(def.requires) && errs[def.requires] == "" {
			errs[def.requires] = fmt.Sprintf("missing property required by '%s'", k)
		}
	}
	if len(errs) > 0 {
		return nil, paramErr(errs)
	}
	return p, nil
}

// check validates one scalar value against its type (JSON schema's check_type,
// then the format) and returns its normalised form or the error text.
func (def pd) check(v any) (string, string) {
	switch def.t {
	case "boolean":
		return checkBoolean(v)
	case "integer":
		return def.checkInteger(v)
	case "number":
		return def.checkNumber(v)
	}
	return def.checkString(v)
}

// checkBoolean accepts 1/0 as JSON numbers or strings and JSON true/false.
func checkBoolean(v any) (string, string) {
	switch x := v.(type) {
	case bool:
		if x {
			return "1", ""
		}
		return "0", ""
	case json.Number:
		if x.String() == "1" || x.String() == "0" {
			return x.String(), ""
		}
		return "", fmt.Sprintf("type check ('boolean') failed - got '%s'", x.String())
	case string:
		if x == "1" || x == "0" {
			return x, ""
		}
		return "", fmt.Sprintf("type check ('boolean') failed - got '%s'", x)
	}
	s, _ := scalarString(v)
	return "", fmt.Sprintf("type check ('boolean') failed - got '%s'", s)
}

func (def pd) checkInteger(v any) (string, string) {
	s, ok := scalarString(v)
	if _, isBool := v.(bool); !ok || isBool || !reInt.MatchString(s) {
		return "", fmt.Sprintf("type check ('integer') failed - got '%s'", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", fmt.Sprintf("type check ('integer') failed - got '%s'", s)
	}
	if def.format == "pve-vmid" && (n < 100 || n > 999999999) {
		return "", "invalid format - value does not look like a valid VM ID"
	}
	if def.min != nil && n < *def.min {
		return "", fmt.Sprintf("value must have a minimum value of %d", *def.min)
	}
	if def.max != nil && n > *def.max {
		return "", fmt.Sprintf("value must have a maximum value of %d", *def.max)
	}
	return strconv.FormatInt(n, 10), ""
}

func (def pd) checkNumber(v any) (string, string) {
	s, ok := scalarString(v)
	if _, isBool := v.(bool); !ok || isBool || !reNumber.MatchString(s) {
		return "", fmt.Sprintf("type check ('number') failed - got '%s'", s)
	}
	f, _ := strconv.ParseFloat(s, 64)
	if def.min != nil && f < float64(*def.min) {
		return "", fmt.Sprintf("value must have a minimum value of %d", *def.min)
	}
	return s, ""
}

// checkString checks a string's length, enumeration and format.
func (def pd) checkString(v any) (string, string) {
	s, ok := scalarString(v)
	if !ok {
		return "", fmt.Sprintf("type check ('string') failed - got %s", describeJSON(v))
	}
	if def.maxLen > 0 && len(s) > def.maxLen {
		return "", fmt.Sprintf("value may only be %d characters long", def.maxLen)
	}
	if len(def.enum) > 0 && !slices.Contains(def.enum, s) {
		return "", fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", s, strings.Join(def.enum, ", "))
	}
	switch def.format {
	case "pve-storage-id":
		if !reStorageID.MatchString(s) {
			return "", fmt.Sprintf("invalid format - storage ID '%s' contains illegal characters", s)
		}
	case "pve-node":
		if !reNodeName.MatchString(s) {
			return "", "invalid format - value does not look like a valid node name"
		}
	case "pve-vmid-list":
		if !reVMIDList.MatchString(s) {
			return "", "invalid format - value does not look like a valid VM ID"
		}
	}
	return s, ""
}

func describeJSON(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}
