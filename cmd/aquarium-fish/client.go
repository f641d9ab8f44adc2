package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2/aquariumv2connect"
	"github.com/aquarium-fish/aquarium-fish/internal/auth"
	"github.com/aquarium-fish/aquarium-fish/internal/tlsutil"
)

// clientOptions are the flags shared by the API client commands
// (label, app, task, user, node).
type clientOptions struct {
	Node     string
	Dir      string
	CA       string
	User     string
	Password string
	Token    string
	Output   string
	Timeout  time.Duration
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// addClientFlags registers the client flags on a command group.
func addClientFlags(cmd *cobra.Command, o *clientOptions) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.Node, "node", envOr("AQUARIUM_NODE", "https://127.0.0.1:8001"), "node API URL (env AQUARIUM_NODE); http:// for a node started with --insecure-http")
	f.StringVar(&o.Dir, "dir", envOr("AQUARIUM_DIR", "aquarium-fish-data"), "the node's data directory, to trust its CA (ca.crt) and read the bootstrap admin password (env AQUARIUM_DIR)")
	f.StringVar(&o.CA, "ca", os.Getenv("AQUARIUM_CA"), "CA certificate to trust (default: <dir>/ca.crt) (env AQUARIUM_CA)")
	f.StringVar(&o.User, "user", envOr("AQUARIUM_USER", auth.AdminUser), "user name (env AQUARIUM_USER)")
	f.StringVar(&o.Password, "password", "", "password (env AQUARIUM_PASSWORD; default for admin: <dir>/admin.password)")
	f.StringVar(&o.Token, "token", "", "bearer token instead of a password (env AQUARIUM_TOKEN)")
	f.StringVarP(&o.Output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "timeout of one API call")
}

// clients are the typed API clients of one node.
type clients struct {
	opts  *clientOptions
	label aquariumv2connect.LabelServiceClient
	app   aquariumv2connect.ApplicationServiceClient
	user  aquariumv2connect.UserServiceClient
	node  aquariumv2connect.NodeServiceClient
	auth  aquariumv2connect.AuthServiceClient
}

func (o *clientOptions) connect() (*clients, error) {
	switch o.Output {
	case "table", "json", "yaml":
	default:
		return nil, fmt.Errorf("--output: must be table, json or yaml, got %q", o.Output)
	}
	authz, err := o.authorization()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(o.Node, "https://") {
		ca := o.CA
		if ca == "" {
			if p := filepath.Join(o.Dir, tlsutil.CAFile); fileExists(p) {
				ca = p
			}
		}
		if ca != "" {
			cfg, err := tlsutil.ClientConfig(ca)
			if err != nil {
				return nil, fmt.Errorf("--ca: %w", err)
			}
			tr.TLSClientConfig = cfg
		}
	} else if !strings.HasPrefix(o.Node, "http://") {
		return nil, fmt.Errorf("--node: must start with https:// or http://, got %q", o.Node)
	}
	hc := &http.Client{Transport: tr, Timeout: o.Timeout}
	base := strings.TrimSuffix(o.Node, "/") + "/grpc"
	copts := []connect.ClientOption{connect.WithProtoJSON(), connect.WithInterceptors(headerInterceptor(authz))}
	return &clients{
		opts:  o,
		label: aquariumv2connect.NewLabelServiceClient(hc, base, copts...),
		app:   aquariumv2connect.NewApplicationServiceClient(hc, base, copts...),
		user:  aquariumv2connect.NewUserServiceClient(hc, base, copts...),
		node:  aquariumv2connect.NewNodeServiceClient(hc, base, copts...),
		auth:  aquariumv2connect.NewAuthServiceClient(hc, base, copts...),
	}, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// authorization builds the Authorization header value. Secrets come from
// flags, the environment, or (for admin) the node's data directory.
func (o *clientOptions) authorization() (string, error) {
	tok := o.Token
	if tok == "" {
		tok = os.Getenv("AQUARIUM_TOKEN")
	}
	if tok != "" {
		return "Bearer " + tok, nil
	}
	pw, err := o.password()
	if err != nil {
		return "", err
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(o.User+":"+pw)), nil
}

// password is --password, AQUARIUM_PASSWORD or, for admin, the bootstrap
// password saved in the data directory.
func (o *clientOptions) password() (string, error) {
	pw := o.Password
	if pw == "" {
		pw = os.Getenv("AQUARIUM_PASSWORD")
	}
	if pw == "" && o.User == auth.AdminUser {
		b, err := os.ReadFile(filepath.Join(o.Dir, auth.AdminPasswordFile))
		if err == nil {
			pw = strings.TrimSpace(string(b))
		}
	}
	if pw == "" {
		return "", fmt.Errorf("no credentials: give --password (or AQUARIUM_PASSWORD) or --token (or AQUARIUM_TOKEN); admin's password is read from %s", filepath.Join(o.Dir, auth.AdminPasswordFile))
	}
	return pw, nil
}

func headerInterceptor(authz string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", authz)
			return next(ctx, req)
		}
	}
}

// ctx returns a context bounded by the call timeout.
func (c *clients) ctx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), c.opts.Timeout)
}

// apiErr turns a Connect error into a short CLI error.
func apiErr(what string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: %s: %s", what, ce.Code(), ce.Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// row is one table line.
type row []string

// print writes data (a message or a list of messages) as json/yaml, or
// the table rows under header.
func (c *clients) print(w io.Writer, data any, header row, rows []row) error {
	switch c.opts.Output {
	case "json", "yaml":
		js, err := toJSON(data)
		if err != nil {
			return err
		}
		if c.opts.Output == "json" {
			_, err = fmt.Fprintln(w, string(js))
			return err
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			return err
		}
		out, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// toJSON renders a message or a list of messages as indented JSON with the
// protobuf field order (protojson's own output varies its spacing on purpose,
// so it is re-indented for stable, scriptable output).
func toJSON(data any) ([]byte, error) {
	var compact []byte
	switch d := data.(type) {
	case proto.Message:
		b, err := protojson.Marshal(d)
		if err != nil {
			return nil, err
		}
		compact = b
	default:
		items, ok := asMessages(d)
		if !ok {
			return json.MarshalIndent(d, "", "  ")
		}
		compact = append(compact, '[')
		for i, m := range items {
			if i > 0 {
				compact = append(compact, ',')
			}
			mb, err := protojson.Marshal(m)
			if err != nil {
				return nil, err
			}
			compact = append(compact, mb...)
		}
		compact = append(compact, ']')
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// messages is implemented by the list adapters below.
type messages interface{ msgs() []proto.Message }

type list[T proto.Message] []T

func (l list[T]) msgs() []proto.Message {
	out := make([]proto.Message, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

func asMessages(d any) ([]proto.Message, bool) {
	if m, ok := d.(messages); ok {
		return m.msgs(), true
	}
	return nil, false
}

func fmtTime(t interface{ AsTime() time.Time }, set bool) string {
	if !set {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// run adapts a client command body: it connects to the node and gives the
// body a context bounded by --timeout.
func (o *clientOptions) run(body func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := o.connect()
		if err != nil {
			return err
		}
		ctx, cancel := c.ctx(cmd)
		defer cancel()
		return body(ctx, cmd, args, c)
	}
}
