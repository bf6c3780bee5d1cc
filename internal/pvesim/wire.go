package pvesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// apiError is an error answered the way PVE's HTTP server formats it.
type apiError struct {
	status int
	msg    string            // full message (status line gets the first line)
	errors map[string]string // 400 parameter errors
	empty  bool              // no body at all (auth 401, 595)
}

func (e *apiError) Error() string { return e.msg }

func errf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func err500(format string, args ...any) *apiError { return errf(500, format, args...) }

func paramErr(errs map[string]string) *apiError {
	return &apiError{status: 400, msg: "Parameter verification failed.", errors: errs}
}

func paramErr1(k, v string) *apiError { return paramErr(map[string]string{k: v}) }

func permErr(path string, privs ...string) *apiError {
	return errf(403, "Permission check failed (%s, %s)", path, strings.Join(privs, "|"))
}

// withTotal is a handler result carrying PVE's "total" field.
type withTotal struct {
	data  any
	total int
}

type handlerFunc func(rq *request) (any, error)

type route struct {
	method string
	tmpl   string
	parts  []string
	schema schema
	// perm is the method's declarative permission check (its
	// "permissions => { check => ... }"), which PVE's rest_handler runs
	// before proxying to the node and before the parameter schema.
	perm func(rq *request) error
	// noProxy: the route has a {node} var but is not proxied (nothing here).
	h handlerFunc
}

type request struct {
	s      *Sim
	r      *http.Request
	w      http.ResponseWriter
	method string
	path   string // relative to /api2/json, unescaped
	rt     *route
	vars   map[string]string
	p      *params
	auth   *authInfo
}

func (s *Sim) routes() []*route {
	s.routesOnce.Do(func() { s.routeTable = buildRoutes() })
	return s.routeTable
}

func buildRoutes() []*route {
	var rs []*route
	add := func(method, tmpl string, sc schema, h handlerFunc) *route {
		rt := &route{method: method, tmpl: tmpl, parts: splitPath(tmpl), schema: sc, h: h}
		if rt.schema == nil {
			rt.schema = schema{}
		}
		for _, p := range rt.parts {
			if strings.HasPrefix(p, "{") {
				name := strings.Trim(p, "{}")
				if _, ok := rt.schema[name]; !ok {
					rt.schema[name] = pathParam(name)
				}
			}
		}
		rs = append(rs, rt)
		return rt
	}
	registerRoutes(add)
	return rs
}

func pathParam(name string) pd {
	switch name {
	case "vmid":
		return pdVMID(true)
	case "node":
		return pd{t: "string", req: true, format: "pve-node"}
	case "storage":
		return pd{t: "string", req: true, format: "pve-storage-id"}
	}
	return pd{t: "string", req: true}
}

var reSlashes = regexp.MustCompile(`/+`)

func splitPath(p string) []string {
	p = reSlashes.ReplaceAllString(p, "/")
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match returns the vars if parts match the route.
func (rt *route) match(parts []string) (map[string]string, bool) {
	vars := map[string]string{}
	for i, tp := range rt.parts {
		if i >= len(parts) {
			return nil, false
		}
		if tp == "{volume}" && i == len(rt.parts)-1 {
			vars["volume"] = strings.Join(parts[i:], "/")
			return vars, true
		}
		if strings.HasPrefix(tp, "{") {
			vars[strings.Trim(tp, "{}")] = parts[i]
			continue
		}
		if tp != parts[i] {
			return nil, false
		}
	}
	if len(parts) != len(rt.parts) {
		return nil, false
	}
	return vars, true
}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/_sim/") || path == "/_sim" {
		s.serveControl(w, r)
		return
	}
	s.logf("pvesim: %s %s", r.Method, r.URL.RequestURI())
	if !strings.HasPrefix(path, "/api2/json/") && path != "/api2/json" {
		writeError(w, errf(501, "Method '%s %s' not implemented", r.Method, path))
		return
	}
	rel := "/" + strings.Join(splitPath(strings.TrimPrefix(path, "/api2/json")), "/")

	if d := s.latency(); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}

	parts := splitPath(rel)
	var rt *route
	var vars map[string]string
	for _, cand := range s.routes() {
		if cand.method != r.Method {
			continue
		}
		if v, ok := cand.match(parts); ok {
			rt, vars = cand, v
			break
		}
	}
	key := r.Method + " (unmatched)"
	if rt != nil {
		key = r.Method + " " + rt.tmpl
		if s.takeDrop(r.Method, rt.tmpl) {
			s.count(key)
			dropConn(w)
			return
		}
		if fe := s.takeHTTPFault(r.Method, rt.tmpl); fe != nil {
			s.count(key)
			writeError(w, fe)
			return
		}
	}
	s.count(key)
	rq := &request{s: s, r: r, w: w, method: r.Method, path: rel, rt: rt, vars: vars}
	if rt == nil {
		rq.rt = &route{method: r.Method}
	}
	data, err := s.dispatch(rq)
	s.observeRequest(rq)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = err500("%s", err.Error())
		}
		if ae.status == 401 && ae.empty {
			if d := time.Duration(s.cfg.AuthFailureDelayMS) * time.Millisecond; d > 0 {
				time.Sleep(d)
			}
		}
		writeError(w, ae)
		return
	}
	writeData(w, data)
}

// dispatch answers in the order of PVE's HTTP server: authentication
// (auth_handler, before the path is looked up), then routing (501), then
// the method's declarative permission check, then the node (proxying), then
// the parameter schema, then the method's code.
func (s *Sim) dispatch(rq *request) (any, error) {
	if !authExempt(rq.method, rq.path) {
		a, err := s.authenticate(rq.r)
		if err != nil {
			return nil, err
		}
		rq.auth = a
	}
	if rq.rt.h == nil {
		return nil, errf(501, "Method '%s %s' not implemented", rq.method, rq.path)
	}
	raw, err := readParams(rq.r)
	if err != nil {
		return nil, err
	}
	if rq.rt.perm != nil {
		if err := rq.rt.perm(rq); err != nil {
			return nil, err
		}
	}
	if n, ok := rq.vars["node"]; ok {
		s.mu.Lock()
		nd := s.nodes[n]
		off := nd != nil && nd.offline
		s.mu.Unlock()
		if nd == nil {
			return nil, err500("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", n, n)
		}
		if off {
			return nil, &apiError{status: 595, msg: "Errors during connection establishment, proxy handshake: No route to host", empty: true}
		}
	}
	p, perr := rq.rt.schema.validate(raw, rq.vars)
	if perr != nil {
		return nil, perr
	}
	rq.p = p
	return rq.rt.h(rq)
}

// authExempt is auth_handler's list of calls allowed without a ticket or
// token (those this simulator serves).
func authExempt(method, rel string) bool {
	switch rel {
	case "/access/ticket":
		return method == http.MethodGet || method == http.MethodPost
	case "/access/domains":
		return method == http.MethodGet
	}
	return false
}

// rawParams holds parameter values as received: strings (form/query) or
// decoded JSON values (json.Number, bool, string, []any, ...).
type rawParams map[string][]any

func readParams(r *http.Request) (rawParams, error) {
	raw := rawParams{}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			raw[k] = append(raw[k], v)
		}
	}
	if r.Method == http.MethodGet || r.Body == nil {
		return raw, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return nil, errf(400, "unable to read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return raw, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, errf(400, "malformed JSON string")
		}
		for k, v := range m {
			if v == nil {
				continue
			}
			raw[k] = append(raw[k], v)
		}
		return raw, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errf(400, "unable to parse request body")
	}
	for k, vs := range vals {
		for _, v := range vs {
			raw[k] = append(raw[k], v)
		}
	}
	return raw, nil
}

// --- responses -------------------------------------------------------------

func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func commonHeaders(h http.Header) {
	h.Set("Cache-Control", "max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Server", "pve-api-daemon/3.0")
	h.Set("Expires", time.Now().UTC().Format(http.TimeFormat))
}

func writeData(w http.ResponseWriter, data any) {
	env := map[string]any{"data": data}
	if wt, ok := data.(withTotal); ok {
		env["data"] = wt.data
		if wt.total != 0 {
			env["total"] = wt.total
		}
	}
	b := marshalJSON(env)
	commonHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(200)
	_, _ = w.Write(b)
}

// reasonPhrase is the first line of msg, as PVE's send_response keeps it.
func reasonPhrase(msg string, status int) string {
	line, _, _ := strings.Cut(msg, "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		line = http.StatusText(status)
	}
	return line
}

// writeError hijacks the connection to write a PVE-style status line
// (Go's net/http always writes its own reason phrase) and closes it.
func writeError(w http.ResponseWriter, e *apiError) {
	var body []byte
	if !e.empty {
		env := map[string]any{"data": nil, "message": strings.TrimRight(e.msg, "\n") + "\n"}
		if len(e.errors) > 0 {
			env["errors"] = e.errors
		}
		body = marshalJSON(env)
	}
	writeRaw(w, e.status, reasonPhrase(e.msg, e.status), body)
}

func writeRaw(w http.ResponseWriter, status int, reason string, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	h := http.Header{}
	commonHeaders(h)
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Connection", "close")
	if body != nil {
		h.Set("Content-Type", "application/json;charset=UTF-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", status, reason)
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(body)
	_ = buf.Flush()
}

func dropConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}
